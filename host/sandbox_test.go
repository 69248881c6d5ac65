package host

import (
	"context"
	"strings"
	"testing"
)

// Guests reach the host only through the dowasm ABI: WASI gives them clocks, random bytes and
// stdout/stderr (into the log), but no file system (no preopened directory: path_open and
// fd_prestat_get fail with EBADF), no sockets, an empty environment, and proc_exit ends only the
// guest's own event.
func TestWASISandbox(t *testing.T) {
	rt := newTestRuntime(t, Config{})
	const (
		wasi   = "wasi_snapshot_preview1"
		ebadf  = 8
		i32    = 0x7f
		i64    = 0x7e
		opEqz  = 0x45
		opLoad = 0x28
	)
	imports := []wimport{
		{module: wasi, name: "path_open", params: []byte{i32, i32, i32, i32, i32, i64, i64, i32, i32}, results: []byte{i32}},
		{module: wasi, name: "fd_prestat_get", params: []byte{i32, i32}, results: []byte{i32}},
		{module: wasi, name: "environ_sizes_get", params: []byte{i32, i32}, results: []byte{i32}},
		{module: wasi, name: "sock_accept", params: []byte{i32, i32, i32}, results: []byte{i32}},
		{module: wasi, name: "random_get", params: []byte{i32, i32}, results: []byte{i32}},
	}
	fail := cat(opIf, opUnreachable, opEnd)
	body := cat(
		// path_open(fd 3, 0, "/etc/passwd" at 0 (any bytes), 11, ...) == EBADF
		i32const(3), i32const(0), i32const(0), i32const(11), i32const(0), i64const(-1), i64const(-1), i32const(0), i32const(200),
		call(0), i32const(ebadf), opI32Ne, fail,
		// fd_prestat_get(3, 200) == EBADF: there is no preopened directory
		i32const(3), i32const(200), call(1), i32const(ebadf), opI32Ne, fail,
		// environ_sizes_get(100, 104) == 0 and the count is 0
		i32const(100), i32const(104), call(2), fail, // (if takes any non-zero errno as true)
		i32const(100), []byte{opLoad, 0x02, 0x00}, i32const(0), opI32Ne, fail,
		// sock_accept(3, 0, 200) fails
		i32const(3), i32const(0), i32const(200), call(3), []byte{opEqz}, fail,
		// random_get(300, 16) works
		i32const(300), i32const(16), call(4), fail,
		i32const(0),
	)
	c, err := rt.LoadClass(context.Background(), "sandbox", "sandbox.wasm", minimalGuest(imports, body).encode())
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := do(c, "a", "/"); err != nil || st != 204 {
		t.Fatalf("a WASI call reached something it should not (the guest traps on any unexpected answer): %d %v", st, err)
	}

	exit := minimalGuest([]wimport{{module: wasi, name: "proc_exit", params: []byte{i32}}}, cat(i32const(3), call(0), i32const(0)))
	ex, err := rt.LoadClass(context.Background(), "exiter", "exit.wasm", exit.encode())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := do(ex, "a", "/"); err == nil || !strings.Contains(err.Error(), "exit_code(3)") {
			t.Fatalf("proc_exit: %v, want the event failed with exit_code(3)", err)
		}
	}
	if st, _, err := do(c, "a", "/"); err != nil || st != 204 {
		t.Fatalf("the runtime after a guest's proc_exit: %d %v", st, err)
	}
}
