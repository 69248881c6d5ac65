package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/id"
	"github.com/dowasm/dowasm/storage"
)

// Fuzzing the host functions through their real implementations:
//
//	go test -run '^$' -fuzz '^FuzzHostFuncs$' -fuzztime 60s ./host/
//	go test -run '^$' -fuzz '^FuzzDecodeTarget$' -fuzztime 60s ./host/
//
// FuzzHostFuncs loads one hand-assembled guest whose fetch handler copies its request into memory
// and calls the host function the request body names, with the arguments the body holds, 1 to 32
// times, recording each result; it then answers them as its response. Pointers in the arguments
// are raw guest addresses: the fuzzer aims them at the data it supplies, at the guest's own
// request and results, or outside memory. Every result must be >= 0 or -status with a status
// listed in that function's abi.Func.Statuses, and every event must complete (a host panic, a
// trap or a failed event fails the target). One runtime, one object and (when an input asks for
// it) one connected WebSocket are shared by all the iterations of a fuzzing process, so state
// carries over between them as it does in a live object.

// Guest memory layout (one 64 KiB page). The fetch request is staged as
// method "POST", path "/", empty query, no headers, then the body, so the body starts at byte 25.
const (
	fzBody    = 25                     // request body: the call description
	fzIdx     = fzBody                 // u32: index into abi.HostFuncs
	fzReps    = fzBody + 4             // u32: repetitions - 1 (the guest uses the low 5 bits)
	fzSlots   = fzBody + 8             // 6 x u64: the arguments (i32 ones use the low half)
	fzData    = fzSlots + 6*8          // free data the arguments may point at
	fzMaxData = 32 << 10               // data bytes per input
	fzResults = 65536 - 12*fzMaxReps   // per repetition: function, second argument, result
	fzResp    = fzResults - 12         // the response encoding: status, 0 headers, body length
	fzMaxReps = 32                     // calls per event, at most
	fzClass   = "fz"                   // the class name
	fzObject  = "fuzz"                 // the object every iteration reaches
	fzSockArg = 1 << 0                 // flag: replace the first argument with the live socket's ID
	fzUpgrade = 1 << 1                 // flag: deliver the fetch as a WebSocket upgrade request
	fzRepBits = 3                      // flags >> fzRepBits: repetitions - 1
	fzReqSize = fzData + fzMaxData + 4 // upper bound of the staged request
)

// Extra instructions the helpers in wasm_test.go lack.
var (
	opI32Load   = []byte{0x28, 0x00, 0x00} // i32.load align=1 offset=0
	opI64Load   = []byte{0x29, 0x00, 0x00}
	opI32Store  = []byte{0x36, 0x00, 0x00}
	opI32Store4 = []byte{0x36, 0x00, 0x04} // i32.store offset=4
	opI32Store8 = []byte{0x36, 0x00, 0x08} // i32.store offset=8
	opI32Eq     = []byte{0x46}
	opI32Eqz    = []byte{0x45}
	opI32Sub    = []byte{0x6b}
	opI32Mul    = []byte{0x6c}
	opI32And    = []byte{0x71}
	opReturn    = []byte{0x0f}
	opLocal0    = []byte{0x20, 0x00} // local.get 0
)

func hostFuncIndex(name string) int {
	for i, f := range abi.HostFuncs {
		if f.Name == name {
			return i
		}
	}
	panic(name)
}

// fuzzGuest returns the guest module: every host function imported (import i is abi.HostFuncs[i]),
// a fetch that runs step(reps), and step(n) that dispatches one call, records it at results[n-1]
// and recurses with n-1 (a parameter is the only local the writer supports). A record is the
// index of the function called, its second argument (the length of result_read) and its result:
// the function is recorded because the arguments and the index live in guest memory, which a call
// (result_read) may overwrite, so a later repetition may call another function.
func fuzzGuest() []byte {
	var imports []wimport
	for _, f := range abi.HostFuncs {
		imports = append(imports, abiImport(f.Name))
	}
	n := len(imports)
	rr, rs := hostFuncIndex("result_read"), hostFuncIndex("response_set")
	step := n + 5 // after dowasm_abi_v1, dowasm_init, dowasm_fetch, dowasm_alarm, dowasm_rpc

	var dispatch []byte
	for k, f := range abi.HostFuncs {
		// if (load(fzIdx) == k) { rec = &results[n-1]; rec.fn = k; rec.arg1 = slot1; rec.result = k(args...) }
		rec := cat(opLocal0, i32const(1), opI32Sub, i32const(12), opI32Mul, i32const(fzResults), opI32Add)
		dispatch = append(dispatch, cat(i32const(fzIdx), opI32Load, i32const(int32(k)), opI32Eq, opIf,
			rec, i32const(int32(k)), opI32Store,
			rec, i32const(fzSlots+8), opI32Load, opI32Store4,
			rec)...)
		for j, p := range f.Params {
			if p.Type == abi.I64 {
				dispatch = append(dispatch, cat(i32const(int32(fzSlots+8*j)), opI64Load)...)
			} else {
				dispatch = append(dispatch, cat(i32const(int32(fzSlots+8*j)), opI32Load)...)
			}
		}
		dispatch = append(dispatch, cat(call(k), opI32Store8, opEnd)...)
	}
	stepBody := cat(
		opLocal0, opI32Eqz, opIf, opReturn, opEnd,
		dispatch,
		opLocal0, i32const(1), opI32Sub, call(step),
	)
	fetchBody := cat(
		// result_read(0, req_len): the request (a larger one is refused and nothing is read)
		i32const(0), opLocal0, call(rr), opDrop,
		// step((load(fzReps) & 31) + 1)
		i32const(fzReps), opI32Load, i32const(fzMaxReps-1), opI32And, i32const(1), opI32Add, call(step),
		// the response: 200, no headers, the results as the body
		i32const(fzResp), i32const(200), opI32Store,
		i32const(fzResp+4), i32const(0), opI32Store,
		i32const(fzResp+8), i32const(12*fzMaxReps), opI32Store,
		i32const(fzResp), i32const(12+12*fzMaxReps), call(rs),
		i32const(0), opI32Ne, opIf, opUnreachable, opEnd,
		i32const(0),
	)
	m := minimalGuest(imports, fetchBody)
	m.funcs = append(m.funcs,
		wfunc{params: []byte{i32, i32}, results: []byte{i32}, body: i32const(0)}, // dowasm_alarm
		wfunc{params: []byte{i32, i32}, results: []byte{i32}, body: i32const(0)}, // dowasm_rpc
		wfunc{params: []byte{i32}, body: stepBody},                               // step
	)
	m.exports["dowasm_alarm"] = n + 3
	m.exports["dowasm_rpc"] = n + 4
	return m.encode()
}

// fuzzCall is one input: which function, how often, its arguments and the data they may point at.
type fuzzCall struct {
	idx, flags uint8
	args       [6]uint64
	data       []byte
}

func (c fuzzCall) body(sock uint32) []byte {
	fn := int(c.idx) % len(abi.HostFuncs)
	b := binary.LittleEndian.AppendUint32(nil, uint32(fn))
	b = binary.LittleEndian.AppendUint32(b, uint32(c.flags>>fzRepBits))
	for j, a := range c.args {
		if j == 0 && c.flags&fzSockArg != 0 {
			a = uint64(sock)
		}
		b = binary.LittleEndian.AppendUint64(b, a)
	}
	data := c.data
	if len(data) > fzMaxData {
		data = data[:fzMaxData]
	}
	return append(b, data...)
}

// fuzzEnv is the runtime, class and live socket shared by the iterations of one process.
type fuzzEnv struct {
	rt    *Runtime
	class *Class
	objID id.ID
	srv   *httptest.Server

	accepted chan *Socket // the upgrade endpoint's sockets

	mu     sync.Mutex
	sock   *Socket
	client *websocket.Conn
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	rt := newTestRuntime(f, Config{DataDir: f.TempDir(), Durability: storage.Relaxed, EventTimeout: 10 * time.Second})
	c, err := rt.LoadClass(context.Background(), fzClass, "fz.wasm", fuzzGuest())
	if err != nil {
		f.Fatal(err)
	}
	e := &fuzzEnv{rt: rt, class: c, objID: c.Namespace().FromName(fzObject), accepted: make(chan *Socket, 1)}
	// The upgrade endpoint: the object accepts with ws_accept(tags "t"), the socket connects.
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tags := abi.EncodeKeys(nil, [][]byte{[]byte("t")})
		call := fuzzCall{idx: uint8(hostFuncIndex("ws_accept")), args: [6]uint64{fzData, uint64(len(tags))}, data: tags}
		_, sock, err := c.FetchWebSocket(e.objID, fzObject, fuzzRequest(call.body(0)))
		if err != nil || sock == nil {
			http.Error(w, fmt.Sprintf("not accepted: %v", err), 500)
			return
		}
		e.accepted <- sock
		sock.Accept(w, r)
	}))
	// A first event, so that every input runs in an instance that has served one (as the
	// inputs of a fuzzing process do): inputs then behave the same alone as in a run.
	warm := fuzzCall{idx: uint8(hostFuncIndex("object_id"))}
	if _, err := c.Fetch(context.Background(), e.objID, fzObject, fuzzRequest(warm.body(0))); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		e.mu.Lock()
		if e.client != nil {
			e.client.CloseNow()
		}
		e.mu.Unlock()
		e.srv.Close()
	})
	return e
}

func fuzzRequest(body []byte) *abi.Request {
	return &abi.Request{Method: "POST", Path: "/", Body: body}
}

// liveSocket returns the ID of a connected socket of the object, connecting a new one if the
// previous one ended (an input closed it, say).
func (e *fuzzEnv) liveSocket(t *testing.T) uint32 {
	e.mu.Lock()
	s := e.sock
	e.mu.Unlock()
	if s != nil {
		s.mu.Lock()
		gone := s.gone
		s.mu.Unlock()
		if !gone {
			return s.id
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("connecting the live socket: %v", err)
	}
	conn.SetReadLimit(-1)
	go func() { // a client that reads everything, so sends never pile up
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	var s2 *Socket
	select {
	case s2 = <-e.accepted:
	case <-ctx.Done():
		t.Fatal("the upgrade did not produce a socket")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		e.client.CloseNow()
	}
	e.client, e.sock = conn, s2
	return s2.id
}

// checkResult fails unless r is a valid result of f: >= 0, or -status with status in f.Statuses.
func checkResult(t *testing.T, f abi.Func, c fuzzCall, r int32) {
	t.Helper()
	if r >= 0 {
		return
	}
	st := abi.Status(-r)
	if !slices.Contains(f.Statuses, st) {
		in := abi.HostFuncs[int(c.idx)%len(abi.HostFuncs)]
		t.Fatalf("%s returned %d (%v), not a status listed for it (%v); input %s%v x%d, flags %#x, data %q",
			f.Name, r, st, f.Statuses, in.Name, c.args[:len(in.Params)], int(c.flags>>fzRepBits)+1, c.flags, c.data)
	}
}

func FuzzHostFuncs(f *testing.F) {
	e := newFuzzEnv(f)
	fn := func(name string) uint8 { return uint8(hostFuncIndex(name)) }
	now := uint64(time.Now().UnixMilli())
	add := func(name string, flags uint8, data []byte, args ...uint64) {
		var a [6]uint64
		copy(a[:], args)
		f.Add(fn(name), flags, a[0], a[1], a[2], a[3], a[4], a[5], data)
	}
	const D = fzData
	resp := abi.EncodeResponse(nil, &abi.Response{Status: 201, Headers: []abi.Header{{Name: "A", Value: "b"}}, Body: []byte("x")})
	keys := abi.EncodeKeys(nil, [][]byte{[]byte("k"), []byte("x"), {}})
	tags := abi.EncodeKeys(nil, [][]byte{[]byte("k"), []byte("x")})
	tooMany := abi.EncodeKeys(nil, make([][]byte, abi.MaxBatch+1))
	entries := abi.EncodeEntries(nil, []abi.Entry{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k2"), Value: nil}})
	list := abi.EncodeListOptions(nil, &abi.ListOptions{HasPrefix: true, Prefix: []byte("k"), Limit: 10})
	listRev := abi.EncodeListOptions(nil, &abi.ListOptions{Reverse: true, HasStartAfter: true, StartAfter: []byte("a"), HasEnd: true, End: []byte("z")})
	target := func(class string, kind uint32, value string) []byte {
		w := abi.Writer{}
		w.String(class)
		w.U32(kind)
		w.String(value)
		return w.B
	}
	req := abi.EncodeRequest(nil, &abi.Request{Method: "GET", Path: "/"})
	other := target(fzClass, abi.TargetName, "other")
	self := target(fzClass, abi.TargetName, fzObject)

	add("result_read", 0, nil, 0, 16)
	add("result_read", 0, nil, 0x10000, 1)
	add("result_read", 0, nil, 0xffffffff, 0xffffffff)
	add("response_set", 0, resp, D, uint64(len(resp)))
	add("response_set", 0, resp[:5], D, 5)
	add("error_set", 0, []byte("boom"), D, 4)
	add("object_id", 0, nil)
	add("object_name", 0, nil)
	add("log", 0, []byte("hello"), 1, D, 5)
	add("log", 0, []byte("hello"), 7, D, 5)
	add("storage_put", 0, []byte("kvalue"), D, 1, D+1, 5)
	add("storage_put", 0, nil, D, abi.MaxKeySize+1, D, 0)
	add("storage_get", 0, []byte("k"), D, 1)
	add("storage_delete", 0, []byte("k"), D, 1)
	add("storage_get_batch", 0, keys, D, uint64(len(keys)))
	add("storage_get_batch", 0, tooMany, D, uint64(len(tooMany)))
	add("storage_put_batch", 0, entries, D, uint64(len(entries)))
	add("storage_delete_batch", 0, keys, D, uint64(len(keys)))
	add("storage_list", 0, list, D, uint64(len(list)))
	add("storage_list", 0, listRev, D, uint64(len(listRev)))
	add("storage_delete_all", 0, nil)
	add("txn_begin", 16<<fzRepBits, nil) // 17 begins: the last is TOO_DEEP
	add("txn_commit", 0, nil)
	add("txn_rollback", 0, nil)
	add("alarm_set", 0, nil, now+60_000)
	add("alarm_set", 0, nil, 1<<63)
	add("alarm_get", 0, nil)
	add("alarm_delete", 0, nil)
	add("call_fetch", 0, append(other, req...), D, uint64(len(other)), D+uint64(len(other)), uint64(len(req)))
	add("call_fetch", 0, append(self, req...), D, uint64(len(self)), D+uint64(len(self)), uint64(len(req)))
	add("call_fetch", 0, target("nope", 9, ""), D, 16, D, 0)
	add("call_rpc", 0, append(other, "mx"...), D, uint64(len(other)), D+uint64(len(other)), 1, D+uint64(len(other))+1, 1)
	add("rpc_return", 0, []byte("r"), D, 1)
	add("ws_accept", fzUpgrade, tags, D, uint64(len(tags)))
	add("ws_accept", fzUpgrade, keys, D, uint64(len(keys)))
	add("ws_accept", 0, nil, 0, 0)
	add("ws_send", fzSockArg, []byte("hello"), 0, abi.WSText, D, 5)
	add("ws_send", fzSockArg, []byte("hello"), 0, 3, D, 5)
	add("ws_close", fzSockArg, []byte("bye"), 0, 1000, D, 3)
	add("ws_close", fzSockArg, []byte("\xff"), 0, 4000, D, 1)
	add("ws_list", 0, []byte("t"), D, 1)
	add("ws_list", 0, nil, 0, 0)
	add("ws_tags", fzSockArg, nil)
	add("ws_attachment_set", fzSockArg, []byte("att"), 0, D, 3)
	add("ws_attachment_get", fzSockArg, nil)
	add("ws_auto_response", 0, []byte("pingpong"), D, 4, D+4, 4)
	add("ws_auto_response_time", fzSockArg, nil)

	f.Fuzz(func(t *testing.T, idx, flags uint8, a0, a1, a2, a3, a4, a5 uint64, data []byte) {
		c := fuzzCall{idx: idx, flags: flags, args: [6]uint64{a0, a1, a2, a3, a4, a5}, data: data}
		hf := abi.HostFuncs[int(idx)%len(abi.HostFuncs)]
		var sock uint32
		if flags&fzSockArg != 0 {
			sock = e.liveSocket(t)
		}
		reps := int(flags>>fzRepBits) + 1
		req := fuzzRequest(c.body(sock))
		var resp *abi.Response
		var err error
		if flags&fzUpgrade != 0 {
			var s *Socket
			resp, s, err = e.class.FetchWebSocket(e.objID, fzObject, req)
			if err == nil && s != nil {
				// Accepted (only ws_accept can): never connected, so end it as the gateway does.
				if hf.Name != "ws_accept" || s.id == 0 {
					t.Fatalf("%s accepted an upgrade (socket %d)", hf.Name, s.id)
				}
				s.Abort("fuzz: not connected")
				return
			}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			resp, err = e.class.Fetch(ctx, e.objID, fzObject, req)
			cancel()
		}
		if err != nil {
			var ee *EventError
			if errors.As(err, &ee) && strings.Contains(err.Error(), "panic") {
				t.Fatalf("%s with %v: the host panicked: %v", hf.Name, c.args[:len(hf.Params)], err)
			}
			t.Fatalf("%s%v (x%d, data %q): the event failed: %v", hf.Name, c.args[:len(hf.Params)], reps, c.data, err)
		}
		if resp == nil || resp.Status != 200 || len(resp.Body) != 12*fzMaxReps {
			t.Fatalf("%s: unexpected response %+v", hf.Name, resp)
		}
		type record struct {
			fn         abi.Func
			arg1       uint32
			result     int32
			overwrites bool // a later call may have overwritten this record
		}
		// Record n-1 holds call number reps-n+1: record 0 is the last call's and always intact.
		// Only result_read writes guest memory, so the records before (above) the last
		// result_read call may be its overwritten bytes: they are not checked.
		var recs []record
		for i := 0; i < reps; i++ {
			b := resp.Body[12*i:]
			k := binary.LittleEndian.Uint32(b)
			if int(k) >= len(abi.HostFuncs) {
				t.Fatalf("%s: record %d names function %d", hf.Name, i, k)
			}
			rec := record{fn: abi.HostFuncs[k], arg1: binary.LittleEndian.Uint32(b[4:]), result: int32(binary.LittleEndian.Uint32(b[8:]))}
			recs = append(recs, rec)
			if rec.fn.Name == "result_read" {
				break
			}
		}
		if testing.Verbose() {
			var out []string
			for _, r := range recs {
				out = append(out, fmt.Sprintf("%s=%d", r.fn.Name, r.result))
			}
			t.Logf("%s%v (socket %d) x%d -> %v", hf.Name, c.args[:len(hf.Params)], sock, reps, out)
		}
		for _, r := range recs {
			checkResult(t, r.fn, c, r.result)
			switch r.fn.Name {
			case "object_id":
				if r.result != 64 {
					t.Fatalf("object_id returned %d", r.result)
				}
			case "result_read":
				if r.result > int32(r.arg1) && r.arg1 <= 1<<30 {
					t.Fatalf("result_read(ptr, %d) copied %d bytes (input: %s%v x%d, socket %d)", r.arg1, r.result, hf.Name, c.args[:len(hf.Params)], reps, sock)
				}
			}
		}
	})
}

// decodeTarget never panics; what it accepts re-encodes to the same bytes.
func FuzzDecodeTarget(f *testing.F) {
	enc := func(class string, kind uint32, value string) []byte {
		w := abi.Writer{}
		w.String(class)
		w.U32(kind)
		w.String(value)
		return w.B
	}
	f.Add(enc("counter", abi.TargetName, "a"))
	f.Add(enc("counter", abi.TargetID, strings.Repeat("0", 64)))
	f.Add(enc("", 7, ""))
	f.Add(append(enc("c", 0, "x"), 0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(enc("c", 0, "x")[:9])
	f.Fuzz(func(t *testing.T, b []byte) {
		class, kind, value, err := decodeTarget(b)
		if err != nil {
			if !errors.Is(err, abi.ErrMalformed) {
				t.Fatalf("decodeTarget error %v does not wrap abi.ErrMalformed", err)
			}
			if class != "" || kind != 0 || value != "" {
				t.Fatalf("decodeTarget failed (%v) but returned %q %d %q", err, class, kind, value)
			}
			return
		}
		if got := enc(class, kind, value); !bytes.Equal(got, b) {
			t.Fatalf("decodeTarget(%x) = %q %d %q, which encodes as %x", b, class, kind, value, got)
		}
	})
}
