package tenant

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawPut sends a deploy's headers with a Content-Length of n and the first bytes of body, and
// leaves the connection open for the caller.
func rawPut(t *testing.T, addr, path, token string, n int, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", path, token, n, body)
	return conn
}

// answer reads the response on conn within d: its status and body, or status 0 if none came.
func answer(t *testing.T, conn net.Conn, d time.Duration) (int, string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Deploys in progress are capped across tenants (each holds its module in memory): past the cap
// a deploy is refused with 503 at once, before its body is read (these never send theirs), and
// a body announced larger than the module limit is refused unread too.
func TestDeployCap(t *testing.T) {
	data := t.TempDir()
	s, err := Open(context.Background(), Config{Data: data, AdminToken: adminToken, MaxDeploys: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, data: data, srv: s, http: httptest.NewServer(s)}
	t.Cleanup(e.stop)
	addr := e.http.Listener.Addr().String()
	a := e.newTenant("uploader", "")
	b := e.newTenant("other", "")

	// A deploy whose client sends 10 bytes of 1,000 and stalls holds the only slot.
	slow := rawPut(t, addr, "/_api/classes/slow", a, 1000, "\x00asm\x01\x00\x00\x00ab")
	defer slow.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A complete (bad) module is read and refused with 400 while the slot is free.
		c := rawPut(t, addr, "/_api/classes/probe", b, 4, "junk")
		st, body := answer(t, c, 5*time.Second)
		c.Close()
		if st == 503 {
			break
		}
		if st != 400 || time.Now().After(deadline) {
			t.Fatalf("while another deploy holds the only slot: %d %s, want 503", st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Refused without reading: this client sends headers only, and gets its answer.
	c := rawPut(t, addr, "/_api/classes/second", b, 1<<20, "")
	st, body := answer(t, c, 2*time.Second)
	c.Close()
	if st != 503 || !strings.Contains(body, "deploys are in progress on this server") || !strings.Contains(body, "class second not deployed") {
		t.Errorf("a deploy past the cap: %d %s, want 503 naming the cap", st, body)
	}
	c = rawPut(t, addr, "/_api/classes/huge", b, 1<<30, "")
	st, body = answer(t, c, 2*time.Second)
	c.Close()
	if st != 413 || !strings.Contains(body, "at most 67108864") {
		t.Errorf("a deploy announcing 1 GiB: %d %s, want 413 before reading it", st, body)
	}

	// The stalled client goes away: its slot is free again.
	slow.Close()
	counter := module(t, "examples/counter/go")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, got := e.req("PUT", "/_api/classes/counter", b, counter)
		if st == 201 {
			break
		}
		if st != 503 || time.Now().After(deadline) {
			t.Fatalf("deploy after the slot was freed: %d %s", st, got)
		}
	}
	e.expect("GET", "/_api/classes", a, nil, 200, `"classes":[]`) // nothing of the stalled deploy
}

// The API's errors keep <, > and & as they are.
func TestAPIErrorsNotHTMLEscaped(t *testing.T) {
	e := start(t, t.TempDir())
	got := e.expect("GET", "/_admin/nothing", adminToken, nil, 404, "DELETE /_admin/tenants/<name>[?purge=true]")
	if strings.Contains(got, `\u003c`) {
		t.Errorf("HTML-escaped: %s", got)
	}
	tok := e.newTenant("kappa", "")
	e.expect("GET", "/_api/classes/x", tok, nil, 404, "PUT and DELETE /_api/classes/<name>")
	e.expect("POST", "/nothing", tok, nil, 404, `unknown class \"nothing\"`)
}
