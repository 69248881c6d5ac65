package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dowasm/dowasm/host"
	"github.com/dowasm/dowasm/toolchain"
)

// The gateway's own errors say what was wrong in words a person reads: routes appear as
// /<class>/<name> (not \u003cclass\u003e), a class that does not exist is named as such, the
// reserved name "id" is explained, and an over-long name is refused with the limit.
func TestRouteErrors(t *testing.T) {
	rt := probeRuntime(t, host.Config{}, toolchain.TinyGo)
	srv := httptest.NewServer(New(rt, nil))
	defer srv.Close()
	expect := func(path string, status int, want ...string) string {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body := string(b)
		if resp.StatusCode != status {
			t.Errorf("POST %.80s: %d %.300s, want %d", path, resp.StatusCode, body, status)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("POST %.80s: %.300s\n  want it to contain %.80s", path, body, w)
			}
		}
		if strings.Contains(body, `\u003c`) || strings.Contains(body, `\u003e`) {
			t.Errorf("POST %.80s: %.300s: < and > escaped for HTML", path, body)
		}
		return body
	}

	// A missing name in an existing class's route: the route spelled out as it is.
	expect("/probe", 404, "missing object name: use /probe/<name>/... or /probe/id/<64 hex digits>/...")
	// No class foo: say so, as for /foo/x/.
	expect("/foo", 404, `unknown class \"foo\"`)
	expect("/foo/", 404, `unknown class \"foo\"`)
	expect("/foo/x/y", 404, `unknown class \"foo\"`)
	expect("/foo/"+strings.Repeat("n", 2000), 404, `unknown class \"foo\"`)

	// "id" is reserved: the errors say so and how to reach an object named "id".
	expect("/probe/id", 404, `the name \"id\" is reserved for /probe/id/<64 hex digits>/...`, "/probe/%69d/")
	expect("/probe/id/", 404, `the name \"id\" is reserved`)
	expect("/probe/id/not-an-id/incr", 400, "malformed object ID", `the name \"id\" is reserved`, "/probe/%69d/")
	if got := expect("/probe/%69d/name", 200); got != "id" {
		t.Errorf("/probe/%%69d/name reached the object named %q, want \"id\"", got)
	}

	// Names: up to 1,024 bytes (after percent-decoding), then a 400 naming the limit.
	expect("/probe/"+strings.Repeat("n", 1024)+"/name", 200, strings.Repeat("n", 1024))
	expect("/probe/"+strings.Repeat("%C3%A9", 512)+"/name", 200) // 512 two-byte characters
	expect("/probe/"+strings.Repeat("n", 1025)+"/name", 400, "object name too long: 1025 bytes, at most 1024")
	expect("/probe/"+strings.Repeat("%C3%A9", 513)+"/incr", 400, "1026 bytes, at most 1024")
	expect("/probe/"+strings.Repeat("n", 20000)+"/incr", 400, "20000 bytes, at most 1024")
}
