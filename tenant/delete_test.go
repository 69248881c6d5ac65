package tenant

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A deletion whose admin client disconnects mid-way still stops the tenant's runtime completely
// before its directory moves: afterwards no descriptor of this process points into the
// tenant's files (its databases, its classes' alarm indexes). The runtime's close is slowed by a
// WebSocket client that does not answer the close handshake, so the disconnect lands while it
// runs.
func TestDeleteTenantClientGone(t *testing.T) {
	data := t.TempDir()
	e := start(t, data)
	tok := e.newTenant("gone", "")
	e.expect("PUT", "/_api/classes/p", tok, module(t, "tests/guests/probe"), 201, "")
	e.expect("PUT", "/_api/classes/ws", tok, module(t, "tests/guests/wsprobe"), 201, "")
	for i := range 4 {
		e.expect("POST", fmt.Sprintf("/p/o%d/incr", i), tok, nil, 200, "1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.http.URL, "http")+"/ws/room/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, msg, err := ws.Read(ctx); err != nil || !strings.HasPrefix(string(msg), "welcome") {
		t.Fatalf("websocket: %q %v", msg, err)
	}
	// From here the client reads nothing, so it never answers the runtime's close frame.
	if open := openUnder(t, data, "gone"); len(open) == 0 {
		t.Fatal("the tenant has no open files before its deletion: the test would check nothing")
	}

	conn, err := net.Dial("tcp", e.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "DELETE /_admin/tenants/gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", adminToken)
	time.Sleep(300 * time.Millisecond) // the runtime is closing its sockets
	conn.Close()

	// Tenant creation waits for a deletion in flight (one lifecycle change at a time).
	e.newTenant("after", "")
	if open := openUnder(t, data, "gone"); len(open) > 0 {
		t.Errorf("%d descriptors still point into the deleted tenant's files, e.g. %s", len(open), open[0])
	}
	if _, err := os.Stat(filepath.Join(data, "tenants", "gone")); !os.IsNotExist(err) {
		t.Errorf("the deleted tenant's directory is still in place: %v", err)
	}
	e.expect("POST", "/p/o0/incr", tok, nil, 401, "invalid bearer token")
}

// openUnder lists the files this process has open in tenant's directory, where it is or where a
// deletion moved it (<data>/deleted/<tenant>-<ns>).
func openUnder(t *testing.T, data, tenant string) []string {
	t.Helper()
	data, err := filepath.EvalSymlinks(data)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, filepath.Join(data, "tenants", tenant)+"/") || strings.HasPrefix(target, filepath.Join(data, "deleted", tenant)+"-") {
			out = append(out, target)
		}
	}
	return out
}

// A runtime that does not stop within StopTimeout: the deletion answers 500 saying so, and
// leaves the tenant's records and directory in place (files may still be open in it); a retry
// and a new tenant of the same name are refused until a restart, which brings the tenant back.
func TestDeleteTenantStopTimeout(t *testing.T) {
	data := t.TempDir()
	s, err := Open(context.Background(), Config{Data: data, AdminToken: adminToken, StopTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, data: data, srv: s, http: httptest.NewServer(s)}
	t.Cleanup(e.stop)
	tok := e.newTenant("slow", "")
	e.expect("PUT", "/_api/classes/ws", tok, module(t, "tests/guests/wsprobe"), 201, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.http.URL, "http")+"/ws/room/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.Read(ctx) // then nothing: the close handshake waits

	st, body := e.req("DELETE", "/_admin/tenants/slow", adminToken, nil)
	if st == 200 {
		t.Skip("the runtime stopped within 1ns after all: nothing to check")
	}
	if st != 500 || !strings.Contains(body, "did not stop within 1ns") || !strings.Contains(body, "records and directory are kept") {
		t.Fatalf("deletion past the stop timeout: %d %s", st, body)
	}
	if _, err := os.Stat(filepath.Join(data, "tenants", "slow", "objects")); err != nil {
		t.Errorf("the directory moved although the runtime did not stop: %v", err)
	}
	e.expect("POST", "/ws/room/x", tok, nil, 401, "invalid bearer token")
	e.expect("DELETE", "/_admin/tenants/slow", adminToken, nil, 409, "did not stop")
	e.expect("POST", "/_admin/tenants", adminToken, []byte(`{"name":"slow"}`), 409, "did not stop")
	e.expect("GET", "/_admin/tenants", adminToken, nil, 200, `"name":"slow"`)
}
