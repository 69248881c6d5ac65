package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	url, admin := startServe(t)
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

// startServe starts `dowasm serve` on a free port with a fresh data directory and extra
// arguments, and returns its URL and admin token.
func startServe(t *testing.T, args ...string) (url, admin string) {
	t.Helper()
	bin := testutil.Dowasm(t)
	admin = "e2e-admin-token-0123456789"
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, args...)...)
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
	select {
	case url = <-urlc:
	case <-time.After(2 * time.Minute):
		t.Fatalf("dowasm serve did not start\n%s", stderr)
	}
	return url, admin
}

// `dowasm serve`'s connection limits from its flags: a connection that got a 401 does not stay
// open past --http-idle-timeout, and a deploy whose module is trickled is cut at
// --http-body-timeout (408) without deploying anything.
func TestServeConnectionLimits(t *testing.T) {
	url, admin := startServe(t, "--http-idle-timeout", "300ms", "--http-body-timeout", "500ms")
	addr := strings.TrimPrefix(url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "POST /counter/x/increment HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("without a token: %v %v, want 401", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("the connection that got a 401 is still open after 3 s (idle timeout 300ms): %v", err)
	}

	r, _ := http.NewRequest("POST", url+"/_admin/tenants", strings.NewReader(`{"name":"acme"}`))
	r.Header.Set("Authorization", "Bearer "+admin)
	if resp, err := client.Do(r); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create tenant: %v %v", resp, err)
	}
	r, _ = http.NewRequest("POST", url+"/_admin/tenants/acme/tokens", nil)
	r.Header.Set("Authorization", "Bearer "+admin)
	resp, err = client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "PUT /_api/classes/counter HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n", tok.Token)
	go func() {
		for range 1000 {
			if _, err := slow.Write([]byte{0}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("a trickled deploy got no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(b), "not received within 500ms") {
		t.Errorf("a trickled deploy: %d %s, want 408 naming the body timeout", resp.StatusCode, b)
	}
	r, _ = http.NewRequest("GET", url+"/_api/classes", nil)
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	if resp, err := client.Do(r); err != nil {
		t.Fatal(err)
	} else if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), `"classes":[]`) {
		t.Errorf("after a cut deploy: %s, want no classes", b)
	}
}
