package hostile

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/host"
)

// testSendFlood: one upgrade whose handler sends 1 MiB 1,500 times (distinct messages), ignoring
// every failure. What an event sends is held until its commit, so the host must refuse the sends
// past the socket's send buffer (LIMIT_EXCEEDED) when they are made: before that bound, this one
// request took the server from 64 MB to 1.58 GB of resident memory.
func testSendFlood(t *testing.T) {
	e := newEnv(t, host.Config{})
	e.load("wssendflood", assemble(t, "wssendflood.wat"))
	m := e.startTenant()
	rss := watchRSS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/wssendflood/x/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(2 << 20)
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(msg) != 1<<20 || binary.LittleEndian.Uint32(msg) != 0 {
		t.Errorf("first message: %d bytes starting %x, want the first 1 MiB message", len(msg), msg[:min(4, len(msg))])
	}
	r := e.must("POST", "/wssendflood/x/", 200)
	sent, status := int32(binary.LittleEndian.Uint32([]byte(r.body))), int32(binary.LittleEndian.Uint32([]byte(r.body[4:])))
	if sent != 1 || status != -16 {
		t.Errorf("%d sends succeeded, first failure %d; want 1 and -16 (LIMIT_EXCEEDED: the 1 MiB send buffer is full)", sent, status)
	}
	c.Close(websocket.StatusNormalClosure, "")
	grew := rss.end()
	st := m.finish()
	t.Logf("1,500 sends of 1 MiB in one event: %d accepted, the rest LIMIT_EXCEEDED; peak RSS +%.0f MiB", sent, grew)
	if grew > 200 {
		t.Errorf("one request grew the host's resident memory by %.0f MiB", grew)
	}
	record(resultRow{Case: "send flood (1,500 × 1 MiB in one event)", Stop: fmt.Sprintf("ws_send past the 1 MiB send buffer: LIMIT_EXCEEDED at once (upgrade answered in %s)", took.Round(time.Millisecond)),
		Outcome: fmt.Sprintf("%d send held, 1,499 refused; peak RSS +%.0f MiB", sent, grew), Tenant: st})
}
