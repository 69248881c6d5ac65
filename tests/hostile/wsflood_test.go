package hostile

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/host"
)

// testSocketFlood: a class that accepts every WebSocket. 2,000 sockets are opened to one object
// with WSMaxSockets 1,000: exactly 1,000 are accepted, the rest are refused with the guest's
// error for LIMIT_EXCEEDED (500) and their events rolled back. Then one client floods another
// object of the class with 64 KiB messages, each an event with a storage write and a commit: the
// host reads a socket's next message only after the previous one's event, so what is in flight
// stays within the TCP buffers and the host's memory stays bounded. The tenant answers
// throughout.
func testSocketFlood(t *testing.T) {
	const maxSockets, dials = 1000, 2000
	e := newEnv(t, host.Config{WSMaxSockets: maxSockets})
	e.load("wsflood", assemble(t, "wsflood.wat"))
	wsURL := "ws" + strings.TrimPrefix(e.url, "http")
	m := e.startTenant()
	rss := watchRSS(t)

	// ---- 2,000 sockets to one object ----
	var mu sync.Mutex
	var conns []*websocket.Conn
	var refused atomic.Int64
	var refusals []string
	jobs := make(chan int)
	var wg sync.WaitGroup
	dialStart := time.Now()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				c, resp, err := websocket.Dial(ctx, wsURL+"/wsflood/crowd/", nil)
				cancel()
				if err == nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					continue
				}
				refused.Add(1)
				msg := err.Error()
				if resp != nil {
					b, _ := io.ReadAll(resp.Body)
					msg = fmt.Sprintf("%d %s", resp.StatusCode, b)
				}
				mu.Lock()
				refusals = append(refusals, msg)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < dials; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	dialTook := time.Since(dialStart)
	t.Logf("%d dials in %s: %d accepted, %d refused", dials, dialTook.Round(time.Millisecond), len(conns), refused.Load())
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	if len(conns) != maxSockets || refused.Load() != dials-maxSockets {
		t.Errorf("accepted %d and refused %d of %d sockets, want %d and %d (WSMaxSockets %d)", len(conns), refused.Load(), dials, maxSockets, dials-maxSockets, maxSockets)
	}
	hex := e.objectHex("wsflood", "crowd")
	for i, msg := range refusals {
		// the guest fails the event with ws_accept's status as its code: -16 is LIMIT_EXCEEDED
		want := []string{"500 ", hex, "fetch returned error code -16: ws_accept refused"}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("refusal %d: %q does not contain %q", i, msg, w)
				break
			}
		}
		if i == 0 {
			t.Logf("a refused socket gets: %s", strings.TrimSpace(msg))
		}
	}
	if n := e.rt.Stats().WebSockets; n != maxSockets {
		t.Errorf("the host counts %d open sockets, want %d", n, maxSockets)
	}
	accepted, _ := counters(t, e, "crowd")
	if accepted != maxSockets {
		t.Errorf("the object counted %d accepts, want %d: the refused events' writes were not rolled back", accepted, maxSockets)
	}

	// ---- one client flooding another object ----
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flood, _, err := websocket.Dial(ctx, wsURL+"/wsflood/flooded/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.CloseNow()
	const msgSize = 64 << 10
	var sent atomic.Int64
	stopFlood := make(chan struct{})
	floodDone := make(chan error, 1)
	go func() {
		msg := make([]byte, msgSize)
		for {
			select {
			case <-stopFlood:
				floodDone <- nil
				return
			default:
			}
			if err := flood.Write(ctx, websocket.MessageBinary, msg); err != nil {
				floodDone <- err
				return
			}
			sent.Add(1)
		}
	}()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var maxInFlight int64
	var maxHeap uint64
	floodStart := time.Now()
	for time.Since(floodStart) < 2*time.Second {
		time.Sleep(100 * time.Millisecond)
		s := sent.Load()
		_, handled := counters(t, e, "flooded")
		maxInFlight = max(maxInFlight, s-int64(handled))
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		maxHeap = max(maxHeap, ms.HeapInuse)
	}
	close(stopFlood)
	if err := <-floodDone; err != nil {
		t.Fatalf("flooding client: %v", err)
	}
	total := sent.Load()
	waitFor(t, "the flooded object to handle every message", func() bool {
		_, handled := counters(t, e, "flooded")
		return int64(handled) == total
	})
	floodTook := time.Since(floodStart)
	heapGrowth := float64(maxHeap) - float64(ms0.HeapInuse)
	t.Logf("flood: %d messages of %d KiB sent in 2 s, all handled after %s; at most %d (%.1f MiB) sent but not yet handled; host heap in use grew by at most %.1f MiB",
		total, msgSize>>10, floodTook.Round(time.Millisecond), maxInFlight, float64(maxInFlight*msgSize)/(1<<20), heapGrowth/(1<<20))
	// What is sent but not handled sits in the client's and the server's TCP buffers (tens of
	// MiB at most on loopback) plus one message in the host: never the whole flood.
	if float64(maxInFlight*msgSize) > 64<<20 {
		t.Errorf("%.0f MiB sent but not yet handled: the host buffers a socket's messages without bound", float64(maxInFlight*msgSize)/(1<<20))
	}
	if heapGrowth > 64<<20 {
		t.Errorf("the host's heap grew by %.0f MiB during the flood", heapGrowth/(1<<20))
	}

	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	flood.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "every socket to end", func() bool { return e.rt.Stats().WebSockets == 0 })
	grew := rss.end()
	st := m.finish()
	t.Logf("peak resident memory +%.0f MiB over the case", grew)
	if grew > 500 {
		t.Errorf("the socket flood grew the host's resident memory by %.0f MiB (limit 500 MiB)", grew)
	}
	record(resultRow{Case: "socket flood", Stop: fmt.Sprintf("%d dials in %s: %d accepted, %d refused; %d × 64 KiB messages flooded in 2 s", dials, dialTook.Round(time.Millisecond), maxSockets, dials-maxSockets, total),
		Outcome: fmt.Sprintf("refused: 500 `fetch returned error code -16 (LIMIT_EXCEEDED)`, rolled back; flood: at most %.1f MiB in flight, heap +%.1f MiB; peak RSS +%.0f MiB", float64(maxInFlight*msgSize)/(1<<20), heapGrowth/(1<<20), grew), Tenant: st})
}

// counters asks a wsflood object for its two counters: sockets accepted and messages handled.
func counters(t *testing.T, e *env, name string) (accepted, handled uint32) {
	t.Helper()
	r := e.must("POST", "/wsflood/"+name+"/", 200)
	if len(r.body) != 8 {
		t.Fatalf("counters of %s: %q", name, r.body)
	}
	return binary.LittleEndian.Uint32([]byte(r.body)), binary.LittleEndian.Uint32([]byte(r.body[4:]))
}
