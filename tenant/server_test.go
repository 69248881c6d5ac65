package tenant

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/toolchain"
)

const adminToken = "test-admin-token"

// module is the guest in dir built with TinyGo (instances start in ~0.1 ms).
func module(t testing.TB, dir string) []byte {
	t.Helper()
	return testutil.Guest(t, dir, toolchain.TinyGo)
}

type env struct {
	t    *testing.T
	data string
	srv  *Server
	http *httptest.Server
}

func start(t *testing.T, data string) *env {
	t.Helper()
	s, err := Open(context.Background(), Config{Data: data, AdminToken: adminToken})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, data: data, srv: s, http: httptest.NewServer(s)}
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	if e.http == nil {
		return
	}
	e.http.Close()
	if err := e.srv.Close(context.Background()); err != nil {
		e.t.Errorf("close: %v", err)
	}
	e.http = nil
}

// req sends a request with a bearer token and returns status and body.
func (e *env) req(method, path, token string, body []byte) (int, string) {
	e.t.Helper()
	r, err := http.NewRequest(method, e.http.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) expect(method, path, token string, body []byte, status int, want string) string {
	e.t.Helper()
	st, got := e.req(method, path, token, body)
	if st != status || (want != "" && !strings.Contains(got, want)) {
		e.t.Errorf("%s %s: %d %q, want %d containing %q", method, path, st, got, status, want)
	}
	return got
}

// newTenant creates a tenant and returns a token for it.
func (e *env) newTenant(name, limits string) string {
	e.t.Helper()
	body := `{"name":"` + name + `"` + limits + `}`
	e.expect("POST", "/_admin/tenants", adminToken, []byte(body), 201, `"name":"`+name+`"`)
	got := e.expect("POST", "/_admin/tenants/"+name+"/tokens", adminToken, nil, 201, `"token":"dwt_`)
	var out struct{ Token string }
	json.Unmarshal([]byte(got), &out)
	return out.Token
}

// Two tenants with classes of the same name: each token reaches only its own tenant's objects,
// IDs and classes; another tenant's class is a plain 404; tokens are stored only as hashes.
func TestTenantsAreIsolated(t *testing.T) {
	e := start(t, t.TempDir())
	counter := module(t, "examples/counter/go")
	a := e.newTenant("alpha", "")
	b := e.newTenant("beta", "")
	e.expect("PUT", "/_api/classes/counter", a, counter, 201, `"replaced":false`)
	e.expect("PUT", "/_api/classes/counter", b, counter, 201, "")
	e.expect("PUT", "/_api/classes/secret", b, counter, 201, "")

	// Authentication.
	e.expect("POST", "/counter/x/increment", "", nil, 401, "missing bearer token")
	e.expect("POST", "/counter/x/increment", "dwt_forged", nil, 401, "invalid bearer token")
	e.expect("POST", "/counter/x/increment", adminToken, nil, 401, "invalid bearer token")
	e.expect("GET", "/_api/classes", "", nil, 401, "")
	e.expect("POST", "/_admin/tenants", a, []byte(`{"name":"evil"}`), 401, "admin token")

	// Same names, separate objects.
	e.expect("POST", "/counter/x/increment", a, nil, 200, "1")
	e.expect("POST", "/counter/x/increment", a, nil, 200, "2")
	e.expect("POST", "/counter/x/increment", b, nil, 200, "1")

	// Another tenant's class answers exactly like a class that does not exist.
	_, other := e.req("POST", "/secret/x/increment", a, nil)
	_, none := e.req("POST", "/nonexistent/x/increment", a, nil)
	if strings.ReplaceAll(other, "secret", "C") != strings.ReplaceAll(none, "nonexistent", "C") {
		t.Errorf("another tenant's class and a missing one answer differently:\n%s\n%s", other, none)
	}
	e.expect("POST", "/secret/x/increment", a, nil, 404, "unknown class")

	// An ID minted for alpha's counter is not an ID of beta's counter.
	got := e.expect("POST", "/_dowasm/counter/new-id", a, nil, 200, `"id"`)
	var minted struct{ ID string }
	json.Unmarshal([]byte(got), &minted)
	e.expect("POST", "/counter/id/"+minted.ID+"/increment", a, nil, 200, "1")
	e.expect("POST", "/counter/id/"+minted.ID+"/increment", b, nil, 400, "")

	// Calls between objects stay inside the tenant: alpha's object calling beta's class finds
	// no such class, and an ID minted by beta is not an ID of alpha's class.
	probe := module(t, "tests/guests/probe")
	e.expect("PUT", "/_api/classes/p", a, probe, 201, "")
	e.expect("PUT", "/_api/classes/q", b, probe, 201, "")
	e.expect("POST", "/q/y/incr", b, nil, 200, "1")
	e.expect("POST", "/p/x/call-rpc?class=q&name=y&method=incr", a, nil, 200, "err 1 ")
	got = e.expect("POST", "/_dowasm/q/new-id", b, nil, 200, `"id"`)
	var betaID struct{ ID string }
	json.Unmarshal([]byte(got), &betaID)
	e.expect("POST", "/p/x/call-rpc?class=p&name=id:"+betaID.ID+"&method=incr", a, nil, 200, "err 6 ")
	e.expect("POST", "/p/id/"+betaID.ID+"/incr", a, nil, 400, "")

	// Each tenant's data is in its own directory.
	for _, ten := range []string{"alpha", "beta"} {
		if _, err := os.Stat(filepath.Join(e.data, "tenants", ten, "objects", "counter")); err != nil {
			t.Errorf("tenant %s has no data directory of its own: %v", ten, err)
		}
	}
	// Tokens are stored hashed: the database does not contain them.
	e.stop()
	for _, f := range []string{"tenants.sqlite", "tenants.sqlite-wal"} {
		raw, _ := os.ReadFile(filepath.Join(e.data, f))
		if bytes.Contains(raw, []byte(a)) || bytes.Contains(raw, []byte(b)) {
			t.Errorf("%s contains a token in plain text", f)
		}
	}
}

// The class API: deploy, replace, list, delete; bad modules and parameters are refused with the
// reason; class limits stay within the tenant's; everything survives a restart.
func TestClassAPIAndRestart(t *testing.T) {
	data := t.TempDir()
	e := start(t, data)
	probe := module(t, "tests/guests/probe")
	counter := module(t, "examples/counter/go")
	tok := e.newTenant("gamma", `,"limits":{"event_timeout_ms":5000,"max_body_size":1024}`)

	e.expect("PUT", "/_api/classes/c", tok, probe, 201, `"event_timeout_ms":5000`)
	e.expect("POST", "/c/o/incr", tok, nil, 200, "1")
	// Replace with the counter: same data ("n" is the probe's key, "value" the counter's).
	e.expect("POST", "/c/o/put?k=value&v=10", tok, nil, 200, "0")
	e.expect("PUT", "/_api/classes/c", tok, counter, 200, `"replaced":true`)
	e.expect("POST", "/c/o/increment", tok, nil, 200, "11")
	// A class asking for more than its tenant allows gets the tenant's limit; less is kept.
	e.expect("PUT", "/_api/classes/p?event_timeout_ms=99999", tok, probe, 201, `"event_timeout_ms":5000`)
	e.expect("PUT", "/_api/classes/q?event_timeout_ms=200", tok, probe, 201, `"event_timeout_ms":200`)
	e.expect("POST", "/q/o/loop", tok, nil, 500, "exceeded the event time limit of 200ms")
	// CPU per event: the tenant's default (5 s), or less for a class; a class computing past it
	// is stopped with the CPU limit named, while its event timeout is still far away.
	e.expect("PUT", "/_api/classes/r?event_cpu_ms=150", tok, probe, 201, `"event_cpu_ms":150`)
	e.expect("POST", "/r/o/sleep?ms=3000", tok, nil, 500, "fetch exceeded the CPU time limit of 150ms per event")
	e.expect("GET", "/_api/classes", tok, nil, 200, `"event_cpu_ms":5000`)
	// The tenant's body limit.
	e.expect("POST", "/p/o/incr", tok, bytes.Repeat([]byte("x"), 2000), 413, "request body exceeds 1024 bytes")

	// Refusals name the problem.
	e.expect("PUT", "/_api/classes/bad", tok, []byte("not wasm at all"), 400, "not a WebAssembly module")
	e.expect("PUT", "/_api/classes/bad", tok, append([]byte("\x00asm\x01\x00\x00\x00"), 0x01, 0xff), 400, "invalid WebAssembly")
	e.expect("PUT", "/_api/classes/Bad", tok, probe, 400, "class name")
	e.expect("PUT", "/_api/classes/x?memory=1", tok, probe, 400, "unknown parameter")
	e.expect("PUT", "/_api/classes/x?max_queue=-1", tok, probe, 400, "positive integer")
	e.expect("GET", "/_api/classes", tok, nil, 200, `{"classes":[{"name":"c"`)

	e.expect("DELETE", "/_api/classes/p", tok, nil, 204, "")
	e.expect("DELETE", "/_api/classes/p", tok, nil, 404, "no class")
	e.expect("POST", "/p/o/incr", tok, nil, 404, "unknown class")

	// Restart: tenants, tokens, classes and data are all back.
	e.stop()
	e = start(t, data)
	e.expect("POST", "/c/o/increment", tok, nil, 200, "12")
	e.expect("POST", "/q/o/loop", tok, nil, 500, "200ms")
	e.expect("POST", "/r/o/sleep?ms=3000", tok, nil, 500, "CPU time limit of 150ms")
	e.expect("POST", "/p/o/incr", tok, nil, 404, "")
	got := e.expect("GET", "/_admin/tenants", adminToken, nil, 200, `"name":"gamma"`)
	if !strings.Contains(got, `"classes":["c","q","r"]`) {
		t.Errorf("admin listing after restart: %s", got)
	}
	e.expect("POST", "/_admin/tenants", adminToken, []byte(`{"name":"gamma"}`), 409, "already exists")
	e.expect("POST", "/_admin/tenants", adminToken, []byte(`{"name":"Gamma!"}`), 400, "tenant name")
	e.expect("POST", "/_admin/tenants/nobody/tokens", adminToken, nil, 404, "no tenant")
}

// Tokens are listed by ID (never by value) and revoked at once; a revocation survives a
// restart and touches neither the tenant's other tokens nor its data.
func TestTokenRevocation(t *testing.T) {
	data := t.TempDir()
	e := start(t, data)
	counter := module(t, "examples/counter/go")
	old := e.newTenant("delta", "")
	got := e.expect("POST", "/_admin/tenants/delta/tokens", adminToken, nil, 201, `"id":"`)
	var fresh struct{ Token, ID string }
	if err := json.Unmarshal([]byte(got), &fresh); err != nil || fresh.ID == "" {
		t.Fatalf("new token: %s (%v)", got, err)
	}
	e.expect("PUT", "/_api/classes/counter", old, counter, 201, "")
	e.expect("POST", "/counter/x/increment", old, nil, 200, "1")

	list := e.expect("GET", "/_admin/tenants/delta/tokens", adminToken, nil, 200, `"id":"`+fresh.ID+`"`)
	var toks struct {
		Tokens []struct{ ID string }
	}
	json.Unmarshal([]byte(list), &toks)
	if len(toks.Tokens) != 2 || strings.Contains(list, "dwt_") {
		t.Fatalf("token listing: %s (want 2 IDs, no token values)", list)
	}
	oldID := toks.Tokens[0].ID
	if oldID == fresh.ID {
		oldID = toks.Tokens[1].ID
	}
	e.expect("GET", "/_admin/tenants/delta/tokens", old, nil, 401, "admin token") // tenants cannot list

	e.expect("DELETE", "/_admin/tenants/delta/tokens/"+oldID, adminToken, nil, 204, "")
	e.expect("POST", "/counter/x/increment", old, nil, 401, "invalid bearer token")
	e.expect("GET", "/_api/classes", old, nil, 401, "invalid bearer token")
	e.expect("POST", "/counter/x/increment", fresh.Token, nil, 200, "2")
	e.expect("DELETE", "/_admin/tenants/delta/tokens/"+oldID, adminToken, nil, 404, "has no token")
	e.expect("DELETE", "/_admin/tenants/delta/tokens/zz", adminToken, nil, 404, "has no token")
	e.expect("DELETE", "/_admin/tenants/nobody/tokens/"+fresh.ID, adminToken, nil, 404, "no tenant")
	// Another tenant's token ID does not revoke anything here.
	other := e.newTenant("epsilon", "")
	e.expect("DELETE", "/_admin/tenants/delta/tokens/"+idOf(t, e, "epsilon"), adminToken, nil, 404, "has no token")
	e.expect("GET", "/_api/classes", other, nil, 200, "")

	e.stop()
	e = start(t, data)
	e.expect("POST", "/counter/x/increment", old, nil, 401, "invalid bearer token")
	e.expect("POST", "/counter/x/increment", fresh.Token, nil, 200, "3")
}

// idOf returns the ID of the tenant's only token.
func idOf(t *testing.T, e *env, tenant string) string {
	t.Helper()
	var toks struct {
		Tokens []struct{ ID string }
	}
	json.Unmarshal([]byte(e.expect("GET", "/_admin/tenants/"+tenant+"/tokens", adminToken, nil, 200, "")), &toks)
	if len(toks.Tokens) != 1 {
		t.Fatalf("%s has %d tokens", tenant, len(toks.Tokens))
	}
	return toks.Tokens[0].ID
}

// Deleting a tenant: its tokens stop working, its classes and objects are gone from the server,
// its directory is kept aside (or purged), and a new tenant of the same name starts empty.
func TestTenantDeletion(t *testing.T) {
	data := t.TempDir()
	e := start(t, data)
	counter := module(t, "examples/counter/go")
	tok := e.newTenant("zeta", "")
	keep := e.newTenant("eta", "")
	e.expect("PUT", "/_api/classes/counter", tok, counter, 201, "")
	e.expect("PUT", "/_api/classes/counter", keep, counter, 201, "")
	e.expect("POST", "/counter/x/increment", tok, nil, 200, "1")
	e.expect("POST", "/counter/x/increment", tok, nil, 200, "2")
	e.expect("POST", "/counter/x/increment", keep, nil, 200, "1")

	e.expect("DELETE", "/_admin/tenants/zeta?purge=maybe", adminToken, nil, 400, "want true or false")
	e.expect("DELETE", "/_admin/tenants/zeta", tok, nil, 401, "admin token")
	got := e.expect("DELETE", "/_admin/tenants/zeta", adminToken, nil, 200, `"deleted":"zeta"`)
	var out struct{ Data string }
	json.Unmarshal([]byte(got), &out)
	if fi, err := os.Stat(filepath.Join(out.Data, "objects")); err != nil || !fi.IsDir() || !strings.HasPrefix(out.Data, filepath.Join(data, "deleted")) {
		t.Errorf("the deleted tenant's data should be kept under %s/deleted: %q (%v)", data, out.Data, err)
	}
	e.expect("POST", "/counter/x/increment", tok, nil, 401, "invalid bearer token")
	e.expect("DELETE", "/_admin/tenants/zeta", adminToken, nil, 404, "no tenant")
	if l := e.expect("GET", "/_admin/tenants", adminToken, nil, 200, `"eta"`); strings.Contains(l, `"zeta"`) {
		t.Errorf("deleted tenant still listed: %s", l)
	}
	e.expect("POST", "/counter/x/increment", keep, nil, 200, "2") // the other tenant is untouched

	// The same name again: a new, empty tenant.
	tok2 := e.newTenant("zeta", "")
	e.expect("GET", "/_api/classes", tok2, nil, 200, `"classes":[]`)
	e.expect("PUT", "/_api/classes/counter", tok2, counter, 201, "")
	e.expect("POST", "/counter/x/increment", tok2, nil, 200, "1")
	e.expect("POST", "/_admin/tenants", adminToken, []byte(`{"name":"zeta"}`), 409, "already exists")

	// purge removes the directory.
	got = e.expect("DELETE", "/_admin/tenants/zeta?purge=true", adminToken, nil, 200, `"deleted":"zeta"`)
	if strings.Contains(got, `"data"`) {
		t.Errorf("purge kept data: %s", got)
	}
	if _, err := os.Stat(filepath.Join(data, "tenants", "zeta")); !os.IsNotExist(err) {
		t.Errorf("purged tenant directory still there: %v", err)
	}
	// A directory left without a record (a crash in the middle of a delete) is set aside when a
	// tenant of that name is created.
	stale := filepath.Join(data, "tenants", "theta", "objects", "stale")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil || os.WriteFile(stale, []byte("x"), 0o644) != nil {
		t.Fatal(err)
	}
	e.newTenant("theta", "")
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a new tenant found a stale directory's files: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(data, "deleted", "theta-*", "objects", "stale")); len(m) != 1 {
		t.Errorf("the stale directory was not kept under deleted/: %v", m)
	}

	e.stop()
	e = start(t, data)
	e.expect("POST", "/counter/x/increment", tok2, nil, 401, "invalid bearer token")
	e.expect("POST", "/counter/x/increment", keep, nil, 200, "3")
}

// What a tenant's objects use together is bounded by the tenant's limits (here its objects with
// data), and the error names the limit; other tenants are not affected.
func TestTenantTotalLimits(t *testing.T) {
	e := start(t, t.TempDir())
	counter := module(t, "examples/counter/go")
	small := e.newTenant("small", `,"limits":{"max_objects":2}`)
	other := e.newTenant("other", "")
	e.expect("PUT", "/_api/classes/counter", small, counter, 201, "")
	e.expect("PUT", "/_api/classes/counter", other, counter, 201, "")
	e.expect("POST", "/counter/a/increment", small, nil, 200, "1")
	e.expect("POST", "/counter/b/increment", small, nil, 200, "1")
	e.expect("POST", "/counter/c/increment", small, nil, 500, "limit of 2 objects")
	e.expect("POST", "/counter/a/increment", small, nil, 200, "2")
	for _, n := range []string{"a", "b", "c"} {
		e.expect("POST", "/counter/"+n+"/increment", other, nil, 200, "1")
	}
}
