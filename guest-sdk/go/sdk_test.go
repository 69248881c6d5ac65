package dowasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// These tests run with the native toolchain (go test): they cover the pure parts of the SDK.
// The host calls themselves only exist in a WebAssembly build.

func encodeRequest(method, path, query string, headers []Header, body []byte) []byte {
	b := appendString(nil, method)
	b = appendString(b, path)
	b = appendString(b, query)
	b = appendU32(b, uint32(len(headers)))
	for _, h := range headers {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	return appendBytes(b, body)
}

func TestDecodeRequest(t *testing.T) {
	// The example of abi/ABI.md: GET /counter/a/x?y=1
	want := []byte{3, 0, 0, 0, 'G', 'E', 'T', 2, 0, 0, 0, '/', 'x', 3, 0, 0, 0, 'y', '=', '1', 0, 0, 0, 0, 0, 0, 0, 0}
	if got := encodeRequest("GET", "/x", "y=1", nil, nil); !bytes.Equal(got, want) {
		t.Fatalf("encoding %v, want %v", got, want)
	}
	q, ok := decodeRequest(want)
	if !ok || q.Method != "GET" || q.Path != "/x" || q.Query != "y=1" || len(q.Headers) != 0 || q.Body != nil {
		t.Fatalf("decoded %+v %v", q, ok)
	}
	b := encodeRequest("BREW", "/", "", []Header{{"Content-Type", "a"}, {"X-Multi", "1"}, {"X-Multi", "2"}}, []byte("body"))
	q, ok = decodeRequest(b)
	if !ok || q.Method != "BREW" || q.Header("content-type") != "a" || len(q.Headers.Values("X-MULTI")) != 2 || string(q.Body) != "body" {
		t.Fatalf("decoded %+v %v", q, ok)
	}
	for i := range b {
		if _, ok := decodeRequest(b[:i]); ok {
			t.Fatalf("truncated request (%d of %d bytes) decoded", i, len(b))
		}
	}
	if _, ok := decodeRequest(append(b, 0)); ok {
		t.Fatal("trailing byte accepted")
	}
	huge := encodeRequest("GET", "/", "", nil, nil)
	binary.LittleEndian.PutUint32(huge[len(huge)-8:], 1<<30) // header count
	if _, ok := decodeRequest(huge); ok {
		t.Fatal("header count beyond the input accepted")
	}
}

func TestResponseEncoding(t *testing.T) {
	r := Text(201, "hi").WithHeader("X-A", "1").WithHeader("X-A", "2").SetHeader("Content-Type", "text/x")
	got := r.encode(nil)
	want := appendU32(nil, 201)
	want = appendU32(want, 3)
	for _, kv := range [][2]string{{"X-A", "1"}, {"X-A", "2"}, {"Content-Type", "text/x"}} {
		want = appendString(want, kv[0])
		want = appendString(want, kv[1])
	}
	want = appendString(want, "hi")
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %q, want %q", got, want)
	}
	if m := MethodNotAllowed("GET, POST"); m.Status != 405 || m.Headers.Get("allow") != "GET, POST" {
		t.Fatalf("MethodNotAllowed: %+v", m)
	}
}

func TestQueryParam(t *testing.T) {
	q := &Request{Query: "a=1&b=x%20y&c=a+b&flag&a=2&bad=%zz&e%3Dq=v&empty="}
	for name, want := range map[string]string{"a": "1", "b": "x y", "c": "a b", "flag": "", "bad": "%zz", "e=q": "v", "empty": "", "none": ""} {
		if got := q.QueryParam(name); got != want {
			t.Errorf("QueryParam(%q) = %q, want %q", name, got, want)
		}
	}
	if _, ok := q.LookupQueryParam("flag"); !ok {
		t.Error("flag not present")
	}
	if _, ok := q.LookupQueryParam("none"); ok {
		t.Error("none present")
	}
	if v, err := q.QueryInt("a", 7); v != 1 || err != nil {
		t.Errorf("QueryInt(a) = %d, %v", v, err)
	}
	if v, err := q.QueryInt("none", 7); v != 7 || err != nil {
		t.Errorf("QueryInt(none) = %d, %v", v, err)
	}
	if _, err := q.QueryInt("b", 7); err == nil {
		t.Error("QueryInt(b) accepted \"x y\"")
	}
}

func TestHeaders(t *testing.T) {
	var h Headers
	h.Add("A", "1")
	h.Add("b", "2")
	h.Add("a", "3")
	if h.Get("a") != "1" || len(h.Values("A")) != 2 {
		t.Fatalf("%v", h)
	}
	h.Set("A", "4")
	if len(h) != 2 || h.Get("a") != "4" || h.Get("B") != "2" {
		t.Fatalf("after Set: %v", h)
	}
	h.Del("B")
	if len(h) != 1 || h.Get("b") != "" {
		t.Fatalf("after Del: %v", h)
	}
	// ASCII case only, as HTTP header names are ASCII (and no Unicode tables get linked)
	for _, c := range []struct {
		a, b string
		eq   bool
	}{
		{"Content-Type", "content-type", true}, {"X-A", "x-a", true}, {"", "", true},
		{"X-A", "X-B", false}, {"ab", "abc", false}, {"[", "{", false}, {"@", "`", false},
		{"K", "\u212a", false},
	} {
		if got := equalFoldASCII(c.a, c.b); got != c.eq {
			t.Errorf("equalFoldASCII(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func TestStatusAndErrors(t *testing.T) {
	if StatusOK.String() != "OK" || StatusEventCancelled.String() != "EVENT_CANCELLED" || Status(99).String() != "STATUS_99" {
		t.Fatal("status names")
	}
	_, err := check("storage_put", -int32(StatusKeyTooLarge))
	if !errors.Is(err, ErrKeyTooLarge) || errors.Is(err, ErrValueTooLarge) || err.Error() != "dowasm: storage_put: KEY_TOO_LARGE" {
		t.Fatalf("%v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusKeyTooLarge || e.Op != "storage_put" {
		t.Fatalf("errors.As: %+v", e)
	}
	if n, err := check("x", 5); n != 5 || err != nil {
		t.Fatal("success value")
	}
	// Off WebAssembly every host call fails with NOT_ALLOWED.
	if _, _, err := (&Storage{}).Get([]byte("k")); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("native Get: %v", err)
	}
}

func TestKeys(t *testing.T) {
	if got := string(PaddedKey("ticket:", 42)); got != "ticket:00000000000000000042" {
		t.Fatal(got)
	}
	if got := string(PaddedKey("", 1<<64-1)); got != "18446744073709551615" {
		t.Fatal(got)
	}
	if bytes.Compare(PaddedKey("t:", 9), PaddedKey("t:", 10)) >= 0 || bytes.Compare(Uint64Key("t:", 255), Uint64Key("t:", 256)) >= 0 {
		t.Fatal("keys do not sort numerically")
	}
	if v, ok := KeyUint64(Uint64Key("t:", 1234), "t:"); !ok || v != 1234 {
		t.Fatal("KeyUint64")
	}
	if _, ok := KeyUint64([]byte("t:1"), "t:"); ok {
		t.Fatal("KeyUint64 of a short key")
	}
}

func TestFormat(t *testing.T) {
	got := string(appendf(nil, "n=%d s=%s q=%q x=%x X=%x b=%t e=%v %% m=%d", []any{42, "str", `a"b`, []byte{1, 255}, 255, true, errors.New("boom")}))
	want := `n=42 s=str q="a\"b" x=01ff X=ff b=true e=boom % m=%!d(MISSING)`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(appendf(nil, "x", []any{1, "a"})); got != "x%!(EXTRA 1 a)" {
		t.Fatal(got)
	}
}

func TestResponseCheck(t *testing.T) {
	for _, c := range []struct {
		r    *Response
		want string
	}{
		{Text(200, "ok"), ""},
		{Text(99, ""), "status 99 is not 200-599"}, {Text(101, ""), "status 101 is not 200-599"},
		{Bytes(200, make([]byte, MaxBodySize+1)), "body is 33554433 bytes; the limit is 32 MiB"},
		{Bytes(200, nil).SetHeader("X", string(make([]byte, MaxHeaderSize))), "headers total 65537 bytes; the limit is 64 KiB"},
	} {
		if got := c.r.check(); got != c.want {
			t.Errorf("check() = %q, want %q", got, c.want)
		}
	}
}

type plainClass struct{}

func (plainClass) Fetch(*Request) (*Response, error) { return nil, nil }

type alarmClass struct {
	plainClass
	got []AlarmInfo
	err error
}

func (a *alarmClass) Alarm(info AlarmInfo) error {
	a.got = append(a.got, info)
	return a.err
}

// withClass runs fn with c as the instance's class, then restores the instance.
func withClass(t *testing.T, c Class, fn func()) {
	t.Helper()
	saved := inst
	defer func() { inst = saved }()
	inst.class = c
	fn()
}

func TestSetAlarm(t *testing.T) {
	s := &Storage{}
	// A class without an Alarm method cannot set alarms; the host is not asked.
	for _, c := range []Class{nil, plainClass{}} {
		withClass(t, c, func() {
			err := s.SetAlarm(1000)
			var e *Error
			if !errors.Is(err, ErrNotAllowed) || !errors.As(err, &e) || e.Op != "alarm_set" ||
				err.Error() != "dowasm: alarm_set: the class has no Alarm method; implement dowasm.Alarmer to use alarms (NOT_ALLOWED)" {
				t.Errorf("SetAlarm with class %T: %v", c, err)
			}
		})
	}
	withClass(t, &alarmClass{}, func() {
		// A negative time is refused before calling the host.
		err := s.SetAlarm(-5)
		if !errors.Is(err, ErrInvalidArgument) || err.Error() != "dowasm: alarm_set: alarm time -5 ms is negative (INVALID_ARGUMENT)" {
			t.Errorf("SetAlarm(-5): %v", err)
		}
		// Otherwise the host is called (off WebAssembly it answers NOT_ALLOWED).
		if err := s.SetAlarm(0); !errors.Is(err, ErrNotAllowed) || err.Error() != "dowasm: alarm_set: NOT_ALLOWED" {
			t.Errorf("SetAlarm(0) natively: %v", err)
		}
	})
	// In the constructor the class does not exist yet: the call goes through and is noted.
	saved := inst
	defer func() { inst = saved }()
	inst = instance{construct: func(*Object) (Class, error) {
		if err := s.SetAlarm(1); !errors.Is(err, ErrNotAllowed) || err.Error() != "dowasm: alarm_set: NOT_ALLOWED" {
			t.Errorf("SetAlarm in the constructor: %v", err)
		}
		return plainClass{}, nil
	}}
	if rc := runInit(); rc == 0 || inst.class != nil || !inst.alarmSetInConstruct {
		t.Errorf("a constructor of a class without Alarm that set an alarm succeeded (rc %d)", rc)
	}
	inst = instance{construct: func(*Object) (Class, error) {
		_ = s.SetAlarm(1)
		return &alarmClass{}, nil
	}}
	if rc := runInit(); rc != 0 || inst.class == nil {
		t.Errorf("a constructor of an Alarmer that set an alarm failed (rc %d)", rc)
	}
}

func TestGetDeleteAlarm(t *testing.T) {
	for _, c := range []struct {
		b  []byte
		ms int64
		ok bool
	}{
		{[]byte{0xe8, 0x03, 0, 0, 0, 0, 0, 0}, 1000, true},
		{[]byte{0x00, 0x5c, 0xb1, 0x9f, 0x94, 0x01, 0, 0}, 1737845988352, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 1<<63 - 1, true},
		{[]byte{0, 0, 0, 0, 0, 0, 0, 0}, 0, true},
		{[]byte{1, 2, 3, 4, 5, 6, 7}, 0, false},
		{[]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, 0, false},
		{nil, 0, false},
	} {
		if ms, ok := decodeAlarmTime(c.b); ms != c.ms || ok != c.ok {
			t.Errorf("decodeAlarmTime(%x) = %d, %v; want %d, %v", c.b, ms, ok, c.ms, c.ok)
		}
	}
	s := &Storage{}
	if _, ok, err := s.GetAlarm(); ok || !errors.Is(err, ErrNotAllowed) || err.Error() != "dowasm: alarm_get: NOT_ALLOWED" {
		t.Errorf("native GetAlarm: %v %v", ok, err)
	}
	if existed, err := s.DeleteAlarm(); existed || !errors.Is(err, ErrNotAllowed) || err.Error() != "dowasm: alarm_delete: NOT_ALLOWED" {
		t.Errorf("native DeleteAlarm: %v %v", existed, err)
	}
}

func TestAlarmHandler(t *testing.T) {
	withClass(t, nil, func() {
		if rc := alarm(0, 0); rc == 0 {
			t.Error("dowasm_alarm before init succeeded")
		}
	})
	withClass(t, plainClass{}, func() {
		if rc := alarm(0, 0); rc == 0 {
			t.Error("dowasm_alarm of a class without Alarm succeeded")
		}
	})
	a := &alarmClass{}
	withClass(t, a, func() {
		if rc := alarm(0, 0); rc != 0 {
			t.Errorf("alarm(0, 0) = %d", rc)
		}
		if rc := alarm(3, 1); rc != 0 {
			t.Errorf("alarm(3, 1) = %d", rc)
		}
		a.err = errors.New("boom")
		if rc := alarm(4, 1); rc == 0 {
			t.Error("a failing Alarm succeeded")
		}
	})
	want := []AlarmInfo{{0, false}, {3, true}, {4, true}}
	if len(a.got) != len(want) {
		t.Fatalf("Alarm calls %v, want %v", a.got, want)
	}
	for i := range want {
		if a.got[i] != want[i] {
			t.Errorf("Alarm call %d: %+v, want %+v", i, a.got[i], want[i])
		}
	}
	if now := Now(); now < 1_600_000_000_000 {
		t.Errorf("Now() = %d", now)
	}
}

func TestCallEncodings(t *testing.T) {
	// The target encoding: bytes class, u32 kind, bytes value.
	s := (&Object{}).Stub("shards", "c.shard1")
	want := appendString(nil, "shards")
	want = appendU32(want, 0)
	want = appendString(want, "c.shard1")
	if !bytes.Equal(s.target, want) || s.label != "shards/c.shard1" {
		t.Fatalf("Stub target %q label %q", s.target, s.label)
	}
	id := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	s = (&Object{}).StubByID("rooms", id)
	want = appendString(nil, "rooms")
	want = appendU32(want, 1)
	want = appendString(want, id)
	if !bytes.Equal(s.target, want) || s.label != "rooms/id/"+id {
		t.Fatalf("StubByID target %q label %q", s.target, s.label)
	}

	// A request is encoded exactly as the host encodes requests to guests (and decodes back).
	req := &Request{Method: "POST", Path: "/x", Query: "a=1", Headers: Headers{{"Content-Type", "a"}, {"X-M", "1"}, {"X-M", "2"}}, Body: []byte("body")}
	got := appendRequest(nil, req)
	if !bytes.Equal(got, encodeRequest("POST", "/x", "a=1", req.Headers, req.Body)) {
		t.Fatalf("appendRequest %q", got)
	}
	if !bytes.Equal(appendRequest(nil, &Request{Method: "GET", Path: "/x", Query: "y=1"}),
		[]byte{3, 0, 0, 0, 'G', 'E', 'T', 2, 0, 0, 0, '/', 'x', 3, 0, 0, 0, 'y', '=', '1', 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Fatal("appendRequest of the ABI.md example")
	}
	if q, ok := decodeRequest(got); !ok || q.Method != "POST" || q.Path != "/x" || q.Query != "a=1" || len(q.Headers) != 3 || string(q.Body) != "body" {
		t.Fatalf("round trip %+v %v", q, ok)
	}

	// A response decodes from the encoding the SDK sends with response_set.
	r := Text(201, "hi").WithHeader("X-A", "1").WithHeader("X-A", "2")
	b := r.encode(nil)
	d, ok := decodeResponse(b)
	if !ok || d.Status != 201 || len(d.Headers) != 3 || d.Headers.Get("content-type") != textPlain ||
		len(d.Headers.Values("X-A")) != 2 || string(d.Body) != "hi" {
		t.Fatalf("decodeResponse %+v %v", d, ok)
	}
	for i := range b {
		if _, ok := decodeResponse(b[:i]); ok {
			t.Fatalf("truncated response (%d of %d bytes) decoded", i, len(b))
		}
	}
	if _, ok := decodeResponse(append(b, 0)); ok {
		t.Fatal("trailing byte accepted")
	}
	if d, ok := decodeResponse(Bytes(204, nil).encode(nil)); !ok || d.Status != 204 || d.Headers != nil || d.Body != nil {
		t.Fatalf("empty response %+v %v", d, ok)
	}
	huge := appendU32(nil, 200)
	huge = appendU32(huge, 1<<30)
	if _, ok := decodeResponse(huge); ok {
		t.Fatal("header count beyond the input accepted")
	}
}

func TestCallErrors(t *testing.T) {
	e := &Error{Op: "call_rpc shards/c.shard1 add", Status: StatusCallFailed, Msg: "add: bad amount"}
	if e.Error() != "dowasm: call_rpc shards/c.shard1 add: add: bad amount (CALL_FAILED)" || !errors.Is(e, ErrCallFailed) {
		t.Fatalf("%v", e)
	}
	e = &Error{Op: "call_rpc a/b m", Status: StatusCallCycle, Msg: "a/b -> a/c -> a/b"}
	if e.Error() != "dowasm: call_rpc a/b m: a/b -> a/c -> a/b (CALL_CYCLE)" || !errors.Is(e, ErrCallCycle) {
		t.Fatalf("%v", e)
	}
	if err := callError("call_rpc a/b m", -int32(StatusOverloaded)); err.Error() != "dowasm: call_rpc a/b m: OVERLOADED" || !errors.Is(err, ErrOverloaded) {
		t.Fatalf("%v", err)
	}
	// Off WebAssembly the host refuses (NOT_ALLOWED); a long method name is refused by the SDK.
	s := (&Object{}).Stub("shards", "c")
	if _, err := s.Call("add", []byte("1")); !errors.Is(err, ErrNotAllowed) || err.Error() != "dowasm: call_rpc shards/c add: NOT_ALLOWED" {
		t.Fatalf("native Call: %v", err)
	}
	if _, err := s.Fetch(&Request{Method: "GET", Path: "/value"}); !errors.Is(err, ErrNotAllowed) || err.Error() != "dowasm: call_fetch shards/c GET /value: NOT_ALLOWED" {
		t.Fatalf("native Fetch: %v", err)
	}
	long := string(make([]byte, MaxMethodSize+1))
	if _, err := s.Call(long, nil); !errors.Is(err, ErrInvalidArgument) || err.Error() != "dowasm: call_rpc shards/c: method name is 257 bytes; the limit is 256 (INVALID_ARGUMENT)" {
		t.Fatalf("long method: %v", err)
	}
}

type rpcClass struct {
	plainClass
	method string
	arg    []byte
}

func (c *rpcClass) RPC(method string, arg []byte) ([]byte, error) {
	c.method, c.arg = method, arg
	if method == "fail" {
		return nil, errors.New("unknown method fail")
	}
	return append([]byte("re:"), arg...), nil
}

func TestRPCHandler(t *testing.T) {
	c := &rpcClass{}
	res, msg := handleRPC(c, []byte("addxyz"), 3)
	if msg != "" || string(res) != "re:xyz" || c.method != "add" || string(c.arg) != "xyz" {
		t.Fatalf("handleRPC: %q %q %+v", res, msg, c)
	}
	if _, msg := handleRPC(c, []byte("get"), 3); msg != "" || c.method != "get" || c.arg != nil {
		t.Fatalf("empty argument: %q %+v", msg, c)
	}
	if _, msg := handleRPC(c, []byte("fail"), 4); msg != "unknown method fail" {
		t.Fatalf("failing RPC: %q", msg)
	}
	if _, msg := handleRPC(c, []byte("ab"), 3); msg == "" {
		t.Fatal("method longer than the staged bytes accepted")
	}
	if _, msg := handleRPC(plainClass{}, nil, 0); msg != errNoRPCMethod {
		t.Fatalf("class without RPC: %q", msg)
	}
	withClass(t, nil, func() {
		if rc := rpc(0, 0); rc == 0 {
			t.Error("dowasm_rpc before init succeeded")
		}
	})
	withClass(t, plainClass{}, func() {
		if rc := rpc(0, 0); rc == 0 {
			t.Error("dowasm_rpc of a class without RPC succeeded")
		}
	})
	withClass(t, &rpcClass{}, func() {
		if rc := rpc(-1, 0); rc == 0 {
			t.Error("negative method length accepted")
		}
		// Natively rpc_return is refused, so only an empty result succeeds: method "" and
		// argument "" (nothing staged to read) returns "re:" and fails at rpc_return.
		if rc := rpc(0, 0); rc == 0 {
			t.Error("rpc_return refused natively, yet dowasm_rpc succeeded")
		}
	})
}
