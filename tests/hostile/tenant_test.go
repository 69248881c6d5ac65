package hostile

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/host"
)

// Limits on what a tenant's objects use together (issue 12): each object stays within its own
// limits, yet many of them added up to the host's memory or descriptors.

// testTenantMemory: 8 memory bombs at once, each allowed 256 pages (16 MiB) on its own, under a
// tenant budget of 8 MiB for all live instances (the well-behaved tenant class included): every
// bomb stops at the budget, and its error names it.
func testTenantMemory(t *testing.T) {
	const budget = 8 << 20
	e := newEnv(t, host.Config{MemoryLimitPages: 256, MaxMemoryBytes: budget, EventTimeout: 10 * time.Second})
	e.load("membomb", assemble(t, "membomb.wat"))
	const bombs = 8
	for i := 0; i < bombs; i++ {
		e.must("PUT", fmt.Sprintf("/membomb/v%d/", i), 204)
	}
	m := e.startTenant()
	rss := watchRSS(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for i := 0; i < bombs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.do("POST", fmt.Sprintf("/membomb/v%d/", i))
			if err != nil {
				t.Error(err)
				return
			}
			if r.status != 500 {
				t.Errorf("bomb %d: status %d", i, r.status)
				return
			}
			if strings.Contains(r.err.Error, "max_memory_bytes") {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	grew := rss.end()
	st := m.finish()
	t.Logf("%d bombs of 16 MiB at once under an 8 MiB budget: %d told the budget refused them; peak RSS +%.0f MiB", bombs, refused, grew)
	if refused != bombs {
		t.Errorf("only %d of %d bombs were refused by the tenant's memory budget", refused, bombs)
	}
	if grew > 150 {
		t.Errorf("peak RSS +%.0f MiB with an 8 MiB budget", grew)
	}
	for i := 0; i < bombs; i++ {
		e.expectRolledBack("membomb", fmt.Sprintf("v%d", i))
	}
	record(resultRow{Case: "memory bombs together (8 × 16 MiB allowed each, tenant budget 8 MiB)", Stop: "memory.grow -1 at the tenant's budget (max_memory_bytes)",
		Outcome: fmt.Sprintf("500 naming `max_memory_bytes` (%d of %d), rolled back; peak RSS +%.0f MiB", refused, bombs, grew), Tenant: st})
}

// testTenantSockets: sockets to many objects, each far below the per-object limit, stop at the
// tenant's total.
func testTenantSockets(t *testing.T) {
	const total = 20
	e := newEnv(t, host.Config{MaxSockets: total})
	e.load("wsflood", assemble(t, "wsflood.wat"))
	m := e.startTenant()
	wsURL := "ws" + strings.TrimPrefix(e.url, "http")
	var conns []*websocket.Conn
	refused := 0
	for i := 0; i < 2*total; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, resp, err := websocket.Dial(ctx, fmt.Sprintf("%s/wsflood/room%d/", wsURL, i%8), nil)
		cancel()
		if err == nil {
			conns = append(conns, c)
			continue
		}
		if resp == nil || resp.StatusCode != 500 {
			t.Fatalf("dial %d: %v", i, err)
		}
		refused++
	}
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	st := m.finish()
	if len(conns) != total || refused != total {
		t.Errorf("%d accepted and %d refused of %d sockets to 8 objects, want %d and %d (MaxSockets %d)", len(conns), refused, 2*total, total, total, total)
	}
	record(resultRow{Case: "sockets spread over objects (tenant total 20)", Stop: "ws_accept LIMIT_EXCEEDED past the tenant's total (max_sockets)",
		Outcome: fmt.Sprintf("%d accepted, %d refused (500, rolled back)", len(conns), refused), Tenant: st})
}
