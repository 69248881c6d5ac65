// Command probe is a test guest written against the raw ABI (no SDK), so host tests can exercise
// exactly what a guest does: storage, traps after writes, handler errors, runaway loops, limits,
// out-of-range pointers, nested transactions. Each path of the request selects one behaviour.
package main

import (
	"encoding/binary"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

//go:wasmimport dowasm result_read
func resultRead(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm response_set
func responseSet(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm error_set
func errorSet(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport dowasm object_id
func objectID() int32

//go:wasmimport dowasm object_name
func objectName() int32

//go:wasmimport dowasm storage_get
func storageGet(kp unsafe.Pointer, kn uint32) int32

//go:wasmimport dowasm storage_put
func storagePut(kp unsafe.Pointer, kn uint32, vp unsafe.Pointer, vn uint32) int32

//go:wasmimport dowasm storage_delete_all
func storageDeleteAll() int32

//go:wasmimport dowasm txn_begin
func txnBegin() int32

//go:wasmimport dowasm txn_commit
func txnCommit() int32

//go:wasmimport dowasm txn_rollback
func txnRollback() int32

//go:wasmimport dowasm alarm_set
func alarmSet(ms int64) int32

//go:wasmimport dowasm alarm_get
func alarmGet() int32

//go:wasmimport dowasm alarm_delete
func alarmDelete() int32

//go:wasmimport dowasm call_fetch
func callFetch(tp unsafe.Pointer, tn uint32, rp unsafe.Pointer, rn uint32) int32

//go:wasmimport dowasm call_rpc
func callRPC(tp unsafe.Pointer, tn uint32, mp unsafe.Pointer, mn uint32, ap unsafe.Pointer, an uint32) int32

//go:wasmimport dowasm rpc_return
func rpcReturn(p unsafe.Pointer, n uint32) int32

func main() {}

//go:wasmexport dowasm_abi_v1
func abiV1() {}

var instanceEvents int // events served by this instance (in memory only)
var initCount int

//go:wasmexport dowasm_init
func initObject() int32 {
	initCount++
	return 0
}

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func staged(n int32) []byte {
	b := make([]byte, n)
	if n > 0 {
		resultRead(ptr(b), uint32(n))
	}
	return b
}

func get(k string) (string, int32) {
	kb := []byte(k)
	n := storageGet(ptr(kb), uint32(len(kb)))
	if n < 0 {
		return "", n
	}
	return string(staged(n)), 0
}

func put(k, v string) int32 {
	kb, vb := []byte(k), []byte(v)
	return storagePut(ptr(kb), uint32(len(kb)), ptr(vb), uint32(len(vb)))
}

func respond(status int, body string) int32 {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(status))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	return responseSet(ptr(b), uint32(len(b)))
}

func fail(msg string) int32 {
	b := []byte(msg)
	errorSet(ptr(b), uint32(len(b)))
	return 1
}

func field(b []byte) (string, []byte) {
	n := binary.LittleEndian.Uint32(b)
	return string(b[4 : 4+n]), b[4+n:]
}

func query(q, name string) string {
	for _, kv := range strings.Split(q, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

var events int

//go:wasmexport dowasm_fetch
func fetch(reqLen int32) int32 {
	req := staged(reqLen)
	_, rest := field(req) // method
	path, rest := field(rest)
	q, _ := field(rest)
	instanceEvents++
	if events++; events%16 == 0 {
		runtime.GC()
	}
	switch path {
	case "/incr":
		v, _ := get("n")
		n, _ := strconv.Atoi(v)
		n++
		if s := put("n", strconv.Itoa(n)); s != 0 {
			return fail("put failed: " + strconv.Itoa(int(s)))
		}
		return respond(200, strconv.Itoa(n))
	case "/get":
		v, s := get(query(q, "k"))
		if s != 0 {
			return respond(404, strconv.Itoa(int(s)))
		}
		return respond(200, v)
	case "/put":
		return respond(200, strconv.Itoa(int(put(query(q, "k"), query(q, "v")))))
	case "/put-then-trap":
		put(query(q, "k"), query(q, "v"))
		panic("probe: trap after write")
	case "/put-then-error":
		put(query(q, "k"), query(q, "v"))
		return fail("probe: handler error after write")
	case "/loop":
		for {
		}
	case "/sleep":
		ms, _ := strconv.Atoi(query(q, "ms"))
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for time.Now().Before(end) {
		}
		return respond(200, "slept")
	case "/instance":
		// How many events this instance has served and how often init ran in it.
		return respond(200, strconv.Itoa(instanceEvents)+" "+strconv.Itoa(initCount))
	case "/limits":
		key := strings.Repeat("k", 2048)
		out := []int32{put(key, "v"), put(key+"k", "v")}
		val := strings.Repeat("v", 2<<20-1)
		out = append(out, put("k", val), put("k", val+"v"))
		var s []string
		for _, o := range out {
			s = append(s, strconv.Itoa(int(o)))
		}
		return respond(200, strings.Join(s, " "))
	case "/id":
		return respond(200, string(staged(objectID())))
	case "/name":
		n := objectName()
		if n < 0 {
			return respond(404, strconv.Itoa(int(n)))
		}
		return respond(200, string(staged(n)))
	case "/txn":
		// a=1 committed through two levels; b=2 rolled back in the inner one.
		txnBegin()
		put("a", "1")
		txnBegin()
		put("b", "2")
		txnRollback()
		txnCommit()
		_, sb := get("b")
		va, _ := get("a")
		extra := txnCommit() // no transaction left
		return respond(200, "a="+va+" b="+strconv.Itoa(int(sb))+" extra="+strconv.Itoa(int(extra)))
	case "/txn-restore":
		// an overwrite rolled back inside the event: the earlier value must be read back
		put("r", "1")
		txnBegin()
		put("r", "2")
		get("r")
		txnRollback()
		v, _ := get("r")
		return respond(200, v)
	case "/txn-open":
		// leaves an explicit transaction open: its writes commit with the event
		txnBegin()
		put(query(q, "k"), query(q, "v"))
		return respond(200, "open")
	case "/fill":
		// Writes 64 KiB values until a write fails (the storage limit or a full disk), ignores
		// the failure and writes k=v: that later write must not outlive the failed event.
		val := strings.Repeat("x", 64<<10)
		var s int32
		i := 0
		for ; i < 100000 && s == 0; i++ {
			s = put("fill"+strconv.Itoa(i), val)
		}
		after := put(query(q, "k"), query(q, "v"))
		return respond(200, "filled "+strconv.Itoa(i)+" status "+itoa(s)+" after "+itoa(after))
	case "/print": // n lines of 100 bytes on stdout
		n, _ := strconv.Atoi(query(q, "n"))
		line := []byte(strings.Repeat("p", 99) + "\n")
		for i := 0; i < n; i++ {
			os.Stdout.Write(line)
		}
		return respond(200, "printed")
	case "/deleteall":
		return respond(200, strconv.Itoa(int(storageDeleteAll())))
	case "/bad-response":
		b := []byte{1, 2, 3}
		return respond(200, strconv.Itoa(int(responseSet(ptr(b), 3))))
	case "/garbage":
		// allocate and drop 1 MiB per event: memory must stay bounded thanks to periodic GC
		b := make([]byte, 1<<20)
		b[len(b)-1] = 1
		return respond(200, "ok")
	}
	if strings.HasPrefix(path, "/alarm") {
		return alarmProbe(path, q)
	}
	if strings.HasPrefix(path, "/call") {
		return callProbe(path, q)
	}
	return respond(404, "no such probe "+path)
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func alarmTime() string {
	n := alarmGet()
	if n < 0 {
		return "none"
	}
	return strconv.FormatInt(int64(binary.LittleEndian.Uint64(staged(n))), 10)
}

// alarmProbe sets, reads and deletes the alarm, and sets how the alarm handler behaves
// (/alarm-mode?m=...). Answers are the raw statuses.
func alarmProbe(path, q string) int32 {
	switch path {
	case "/alarm-set": // t=<ms since the epoch>
		t, _ := strconv.ParseInt(query(q, "t"), 10, 64)
		return respond(200, itoa(alarmSet(t)))
	case "/alarm-in": // d=<ms from now>
		d, _ := strconv.ParseInt(query(q, "d"), 10, 64)
		return respond(200, itoa(alarmSet(time.Now().UnixMilli()+d)))
	case "/alarm-get":
		return respond(200, alarmTime())
	case "/alarm-delete":
		return respond(200, itoa(alarmDelete()))
	case "/alarm-set-then-error":
		alarmSet(time.Now().UnixMilli())
		return fail("probe: error after setting an alarm")
	case "/alarm-mode":
		put("mode", query(q, "m"))
		return respond(200, "ok")
	case "/alarm-runs":
		v, _ := get("runs")
		l, _ := get("log")
		return respond(200, v+"|"+l)
	}
	return respond(404, "no such probe "+path)
}

// alarm records each successful run ("runs", and "log": retry/isRetry/alarm-during pairs) and
// behaves as "mode" says: ok (default), fail (always), fail-first (fail unless retried), rearm
// (set the alarm 1 s ahead), delete-fail (delete the alarm, then fail), set-fail (set a new alarm,
// then fail), trap.
//
//go:wasmexport dowasm_alarm
func alarm(retry, isRetry int32) int32 {
	mode, _ := get("mode")
	during := alarmTime()
	switch mode {
	case "fail":
		return fail("probe: alarm failure")
	case "fail-first":
		if retry == 0 {
			return fail("probe: first attempt fails")
		}
	case "rearm":
		alarmSet(time.Now().UnixMilli() + 1000)
	case "delete-fail":
		alarmDelete()
		return fail("probe: failure after delete")
	case "set-fail":
		alarmSet(time.Now().UnixMilli() + 1000)
		return fail("probe: failure after set")
	case "trap":
		panic("probe: alarm trap")
	}
	v, _ := get("runs")
	n, _ := strconv.Atoi(v)
	put("runs", strconv.Itoa(n+1))
	l, _ := get("log")
	put("log", l+itoa(retry)+"/"+itoa(isRetry)+"/"+during+";")
	return 0
}

// target encodes a call target: the probe class's object name (kind 0), or an ID (kind 1) when
// the name starts with "id:".
func target(class, name string) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(class)))
	b = append(b, class...)
	kind, v := uint32(0), name
	if strings.HasPrefix(name, "id:") {
		kind, v = 1, name[3:]
	}
	b = binary.LittleEndian.AppendUint32(b, kind)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// rpc calls method with arg on the probe object name; "ok <result>" or "err <status> <message>".
func rpc(class, name, method, arg string) string {
	t, m, a := target(class, name), []byte(method), []byte(arg)
	n := callRPC(ptr(t), uint32(len(t)), ptr(m), uint32(len(m)), ptr(a), uint32(len(a)))
	if n < 0 {
		msg := make([]byte, 16<<10)
		k := resultRead(ptr(msg), uint32(len(msg)))
		if k < 0 {
			k = 0
		}
		return "err " + itoa(-n) + " " + string(msg[:k])
	}
	return "ok " + string(staged(n))
}

func callProbe(path, q string) int32 {
	class := query(q, "class")
	if class == "" {
		class = "probe"
	}
	switch path {
	case "/call-rpc": // name, method, arg
		return respond(200, rpc(class, query(q, "name"), query(q, "method"), query(q, "arg")))
	case "/call-fetch": // name, p (path)
		var req []byte
		for _, f := range []string{"POST", query(q, "p"), ""} {
			req = binary.LittleEndian.AppendUint32(req, uint32(len(f)))
			req = append(req, f...)
		}
		req = binary.LittleEndian.AppendUint32(req, 0) // no headers
		req = binary.LittleEndian.AppendUint32(req, 0) // no body
		t := target(class, query(q, "name"))
		n := callFetch(ptr(t), uint32(len(t)), ptr(req), uint32(len(req)))
		if n < 0 {
			return respond(200, "err "+itoa(-n))
		}
		resp := staged(n)
		status := binary.LittleEndian.Uint32(resp)
		// skip the headers (count, then name/value pairs) to the body
		rest := resp[4:]
		hn := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		for i := uint32(0); i < 2*hn; i++ {
			_, rest = field(rest)
		}
		body, _ := field(rest)
		return respond(200, "ok "+strconv.Itoa(int(status))+" "+body)
	case "/call-then-trap": // k=v written, then an RPC incr on name, then a trap
		put(query(q, "k"), query(q, "v"))
		rpc(class, query(q, "name"), "incr", "")
		panic("probe: trap after a call")
	case "/call-in-txn": // an RPC incr on name inside an explicit transaction: refused
		txnBegin()
		put(query(q, "k"), query(q, "v"))
		r := rpc(class, query(q, "name"), "incr", "")
		txnCommit()
		return respond(200, r)
	case "/call-seq": // n RPC incr calls on one object: the results, comma-separated
		n, _ := strconv.Atoi(query(q, "n"))
		var out []string
		for i := 0; i < n; i++ {
			r := rpc(class, query(q, "name"), "incr", "")
			if !strings.HasPrefix(r, "ok ") {
				return respond(500, r)
			}
			out = append(out, r[3:])
		}
		return respond(200, strings.Join(out, ","))
	case "/call-many": // n objects named p0..p(n-1): RPC incr on each, sum of the results
		n, _ := strconv.Atoi(query(q, "n"))
		sum := 0
		for i := 0; i < n; i++ {
			r := rpc(class, "p"+strconv.Itoa(i), "incr", "")
			if !strings.HasPrefix(r, "ok ") {
				return respond(500, r)
			}
			v, _ := strconv.Atoi(r[3:])
			sum += v
		}
		return respond(200, strconv.Itoa(sum))
	}
	return respond(404, "no such probe "+path)
}

// rpcHandler: echo (the argument), incr (the counter "n", as for /incr), fail, trap, sleep (arg
// ms), call (arg "name|method|arg": calls on, returns what it got as its own result, and fails
// if the call failed).
//
//go:wasmexport dowasm_rpc
func rpcHandler(methodLen, argLen int32) int32 {
	b := staged(methodLen + argLen)
	method, arg := string(b[:methodLen]), string(b[methodLen:])
	out := ""
	switch method {
	case "echo":
		out = arg
	case "incr":
		v, _ := get("n")
		n, _ := strconv.Atoi(v)
		n++
		put("n", strconv.Itoa(n))
		out = strconv.Itoa(n)
	case "fail":
		put("lost", "1")
		return fail("probe: rpc failure")
	case "trap":
		panic("probe: rpc trap")
	case "sleep":
		ms, _ := strconv.Atoi(arg)
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for time.Now().Before(end) {
		}
		out = "slept"
	case "wait-then-call": // "ms|name|method|arg"
		ms, rest, _ := strings.Cut(arg, "|")
		d, _ := strconv.Atoi(ms)
		end := time.Now().Add(time.Duration(d) * time.Millisecond)
		for time.Now().Before(end) {
		}
		arg = rest
		fallthrough
	case "call":
		parts := strings.SplitN(arg, "|", 3)
		for len(parts) < 3 {
			parts = append(parts, "")
		}
		r := rpc("probe", parts[0], parts[1], parts[2])
		if !strings.HasPrefix(r, "ok ") {
			return fail(r)
		}
		out = r[3:]
	default:
		return fail("probe: unknown method " + method)
	}
	o := []byte(out)
	rpcReturn(ptr(o), uint32(len(o)))
	return 0
}
