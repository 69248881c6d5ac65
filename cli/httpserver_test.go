package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

// startRun runs `dowasm run` in this process with the probe and wsprobe classes and the given
// http section, and returns its address (host:port). It stops when the test ends.
func startRun(t *testing.T, httpSection string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\ndata: %s\n%s\nclasses:\n  - name: probe\n    module: %s\n  - name: wsprobe\n    module: %s\n",
		filepath.Join(dir, "data"), httpSection,
		testutil.GuestPath(t, "tests/guests/probe", toolchain.TinyGo), testutil.GuestPath(t, "tests/guests/wsprobe", toolchain.TinyGo))
	p := filepath.Join(dir, "dowasm.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	errb := &testutil.LockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dowasm", "run", "--config", p, "--log-level", "warn"}, w, errb)
		w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Errorf("dowasm run did not stop\n%s", errb)
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := testutil.ListenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- strings.TrimPrefix(m[1], "http://")
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case code := <-done:
		t.Fatalf("dowasm run exited with %d\n%s", code, errb)
	case <-time.After(time.Minute):
		t.Fatalf("dowasm run did not start\n%s", errb)
	}
	return ""
}

// roundTrip sends a request on conn and reads its response within d (status 0: none came).
func roundTrip(t *testing.T, conn net.Conn, br *bufio.Reader, method, path string, d time.Duration) (int, string) {
	t.Helper()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", method, path)
	return readAnswer(conn, br, d)
}

func readAnswer(conn net.Conn, br *bufio.Reader, d time.Duration) (int, string) {
	conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// closedWithin reports whether the server closes conn within d (the client has nothing more to
// read from it).
func closedWithin(conn net.Conn, br *bufio.Reader, d time.Duration) error {
	conn.SetReadDeadline(time.Now().Add(d))
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("the connection is still open after %s (read: %v)", d, err)
	}
	return nil
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// A keep-alive connection without a request is closed after http.idle_timeout.
func TestIdleConnectionClosed(t *testing.T) {
	addr := startRun(t, "http:\n  idle_timeout: 300ms")
	conn, br := dial(t, addr)
	if st, body := roundTrip(t, conn, br, "GET", "/_dowasm/stats", 5*time.Second); st != 200 {
		t.Fatalf("stats: %d %s", st, body)
	}
	start := time.Now()
	if err := closedWithin(conn, br, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed after %s, before the idle timeout", d)
	}
}

// A body trickled a byte at a time is cut at http.body_timeout: the request fails with 408 and
// its event never runs (nothing is committed).
func TestTrickledBodyCut(t *testing.T) {
	addr := startRun(t, "http:\n  body_timeout: 300ms")
	conn, br := dial(t, addr)
	fmt.Fprintf(conn, "POST /probe/t/put?k=a&v=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
	go func() {
		for range 100 {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	st, body := readAnswer(conn, br, 3*time.Second)
	if st != http.StatusRequestTimeout || !strings.Contains(body, "request body not received within 300ms") {
		t.Fatalf("trickled body: %d %s, want 408 naming the body timeout", st, body)
	}
	if err := closedWithin(conn, br, 3*time.Second); err != nil {
		t.Error(err)
	}
	resp, err := http.Get("http://" + addr + "/probe/t/get?k=a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("the cut request's write is visible: %d, want 404", resp.StatusCode)
	}
}

// Past http.max_connections, a new connection waits (in the kernel's accept queue) until one
// of the open ones closes, then it is served.
func TestConnectionCap(t *testing.T) {
	addr := startRun(t, "http:\n  max_connections: 2\n  idle_timeout: 30s")
	var served []net.Conn
	for range 2 {
		conn, br := dial(t, addr)
		if st, body := roundTrip(t, conn, br, "GET", "/_dowasm/stats", 5*time.Second); st != 200 {
			t.Fatalf("stats: %d %s", st, body)
		}
		served = append(served, conn)
	}
	third, br := dial(t, addr) // connects: the kernel accepts it on the server's behalf
	if st, body := roundTrip(t, third, br, "GET", "/_dowasm/stats", 500*time.Millisecond); st != 0 {
		t.Fatalf("a third connection past a cap of 2 was served: %d %s", st, body)
	}
	served[0].Close()
	if st, body := readAnswer(third, br, 5*time.Second); st != 200 {
		t.Fatalf("the waiting connection once another closed: %d %s, want 200", st, body)
	}
}

// A client that stops reading its response is dropped at http.write_timeout (counted from the
// response's first byte), so it cannot hold a connection and a handler forever.
func TestWriteTimeoutDropsNonReader(t *testing.T) {
	files := t.TempDir()
	const size = 64 << 20 // far more than the kernel buffers between the two ends
	f, err := os.Create(filepath.Join(files, "big"))
	if err != nil || f.Truncate(size) != nil || f.Close() != nil {
		t.Fatal(err)
	}
	addr := startRun(t, "http:\n  write_timeout: 300ms\nassets:\n  - path: /files/\n    dir: "+files)
	conn, br := dial(t, addr)
	fmt.Fprintf(conn, "GET /files/big HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(1500 * time.Millisecond) // not reading
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, br)
	if n >= size {
		t.Fatalf("the whole %d-byte response arrived (%v): the server waited for a client that did not read", n, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("after %d bytes the connection is still open: %v", n, err)
	}
}

// Neither the body timeout nor the write timeout limits an event's run time, and neither
// affects a WebSocket, which lives on past every timeout once upgraded.
func TestTimeoutsSpareLongEventsAndWebSockets(t *testing.T) {
	addr := startRun(t, "http:\n  body_timeout: 200ms\n  write_timeout: 200ms\n  idle_timeout: 200ms\n  header_timeout: 200ms")
	resp, err := http.Post("http://"+addr+"/probe/slow/sleep?ms=700", "text/plain", strings.NewReader("a body"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "slept" {
		t.Fatalf("an event longer than the body and write timeouts: %d %s", resp.StatusCode, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/wsprobe/room/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, msg, err := ws.Read(ctx); err != nil || !strings.HasPrefix(string(msg), "welcome") {
		t.Fatalf("websocket: %q %v", msg, err)
	}
	time.Sleep(time.Second) // five times every timeout
	for i := 1; i <= 2; i++ {
		if err := ws.Write(ctx, websocket.MessageText, []byte("count")); err != nil {
			t.Fatalf("send after the timeouts: %v", err)
		}
		if _, msg, err := ws.Read(ctx); err != nil || string(msg) != fmt.Sprint("count=", i) {
			t.Fatalf("answer after the timeouts: %q %v, want count=%d", msg, err, i)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
