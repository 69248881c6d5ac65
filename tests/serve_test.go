package tests

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dowasm/dowasm/internal/testutil"
)

// `dowasm serve` end to end with the CLI: an admin creates a tenant and a token over HTTP, the
// tenant deploys a class from source with `dowasm deploy`, lists it with `dowasm classes`, uses
// its objects with its token, and deletes it.
func TestServeDeployClasses(t *testing.T) {
	bin := testutil.Dowasm(t)
	data := t.TempDir()
	const admin = "e2e-admin-token-0123456789"
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", data)
	cmd.Env = append(os.Environ(), "DOWASM_ADMIN_TOKEN="+admin)
	stdout, _ := cmd.StdoutPipe()
	stderr := &testutil.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := testutil.ListenRE.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-urlc:
	case <-time.After(2 * time.Minute):
		t.Fatalf("dowasm serve did not start\n%s", stderr)
	}
	req := func(method, path, token, body string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := req("POST", "/_admin/tenants", admin, `{"name":"acme"}`); st != 201 {
		t.Fatalf("create tenant: %d %s", st, body)
	}
	st, body := req("POST", "/_admin/tenants/acme/tokens", admin, "")
	var tok struct{ Token string }
	if json.Unmarshal([]byte(body), &tok); st != 201 || tok.Token == "" {
		t.Fatalf("create token: %d %s", st, body)
	}
	cli := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), "DOWASM_SERVER="+url, "DOWASM_TOKEN="+tok.Token)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("dowasm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli("deploy", "--name", "counter", "--toolchain", "tinygo", "--limit", "event_timeout_ms=2000", testutil.Path("examples/counter/go")); !strings.Contains(out, "deployed class counter") {
		t.Errorf("deploy: %s", out)
	}
	if out := cli("deploy", "--name", "counter", "--toolchain", "tinygo", testutil.Path("examples/counter/go")); !strings.Contains(out, "replaced class counter") {
		t.Errorf("deploy again: %s", out)
	}
	if out := cli("classes"); !strings.Contains(out, "counter") {
		t.Errorf("classes: %s", out)
	}
	if st, body := req("POST", "/counter/c/increment", tok.Token, ""); st != 200 || body != "1" {
		t.Errorf("increment with the token: %d %q", st, body)
	}
	if st, _ := req("POST", "/counter/c/increment", "", ""); st != 401 {
		t.Errorf("increment without a token: %d, want 401", st)
	}
	if out := cli("classes", "--delete", "counter"); !strings.Contains(out, "deleted class counter") {
		t.Errorf("classes --delete: %s", out)
	}
	if st, _ := req("POST", "/counter/c/increment", tok.Token, ""); st != 404 {
		t.Errorf("after delete: %d, want 404", st)
	}
	// A bad token is refused with the server's message.
	c := exec.Command(bin, "classes", "--server", url, "--token", "dwt_wrong")
	if out, err := c.CombinedOutput(); err == nil || !strings.Contains(string(out), "invalid bearer token") {
		t.Errorf("classes with a bad token: %v %s", err, out)
	}
}
