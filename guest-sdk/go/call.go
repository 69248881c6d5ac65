package dowasm

import "strconv"

// Calls between objects (abi/ABI.md: call_fetch, call_rpc, rpc_return, dowasm_rpc).

// Limits of calls between objects (abi/ABI.md).
const (
	MaxMethodSize = 256      // bytes in an RPC method name (INVALID_ARGUMENT beyond)
	MaxCallDepth  = 16       // objects in one chain of waiting calls, the first caller included (TOO_DEEP)
	MaxErrorSize  = 16 << 10 // bytes of an error message the host keeps (error_set, CALL_FAILED)
)

// Target kinds of the call target encoding.
const (
	targetName = 0 // value is a name: the object is the one whose ID derives from it
	targetID   = 1 // value is an ID in hex, as minted by the class
)

// RPCer is implemented by a class that answers calls from other objects (Stub.Call). The host
// delivers an RPC as an event like a fetch: one at a time with the object's other events, in its
// own transaction, committed before the result is returned to the caller.
//
// Returning an error (or panicking) fails the event: its writes are rolled back, the instance is
// discarded, and the caller's Call returns an *Error with status ErrCallFailed whose Msg is the
// error's text. A class without an RPC method fails every call made to it the same way.
type RPCer interface {
	RPC(method string, arg []byte) ([]byte, error)
}

// Stub addresses another object (or this one's class's other objects) for calls. Making one
// costs no host call; nothing is checked until it is used. A Stub may be kept and reused.
type Stub struct {
	target []byte // the target encoding
	label  string // "<class>/<name>" or "<class>/id/<hex>", for error messages
}

// Stub returns a stub for the object of class whose ID derives from name: the object a client
// reaches at /<class>/<name>/.
func (o *Object) Stub(class, name string) *Stub {
	return newStub(class, targetName, name, class+"/"+name)
}

// StubByID returns a stub for the object of class with the given ID (64 hex characters), as
// minted by that class (/<class>/id/<hex>/).
func (o *Object) StubByID(class, idHex string) *Stub {
	return newStub(class, targetID, idHex, class+"/id/"+idHex)
}

func newStub(class string, kind uint32, value, label string) *Stub {
	b := make([]byte, 0, 12+len(class)+len(value))
	b = appendString(b, class)
	b = appendU32(b, kind)
	b = appendString(b, value)
	return &Stub{target: b, label: label}
}

// callBuf is the request encoding buffer of Stub.Fetch, reused (a waiting object runs nothing
// else, so one buffer serves every call).
var callBuf []byte

// Fetch sends req to the object and waits for its response. The callee handles it as its own
// event (its Fetch method), with its own transaction: the response arrives after the callee's
// writes are committed. A response with any status, 500 included, is a response; the error is
// non-nil only when the call itself failed (see Call for the errors).
func (s *Stub) Fetch(req *Request) (*Response, error) {
	op := "call_fetch " + s.label + " " + req.Method + " " + req.Path
	callBuf = appendRequest(callBuf[:0], req)
	rc := host.callFetch(s.target, callBuf)
	if cap(callBuf) > 64<<10 {
		callBuf = nil // do not keep a large body's buffer between events
	}
	if rc < 0 {
		return nil, callError(op, rc)
	}
	b, err := readStaged(op, rc)
	if err != nil {
		return nil, err
	}
	resp, ok := decodeResponse(b)
	if !ok {
		return nil, &Error{Op: op, Status: StatusInvalidArgument,
			Msg: "malformed response encoding from the host (" + strconv.Itoa(len(b)) + " bytes)"}
	}
	return resp, nil
}

// Call calls method (at most MaxMethodSize bytes) with arg on the object and waits for the bytes
// its RPC method returns (empty when it returned none). The callee handles the call as its own
// event, with its own transaction: the result arrives after the callee's writes are committed.
//
// Errors are *Error values with the status of the failure:
//   - ErrCallFailed: the callee's RPC returned an error, panicked, trapped or ran out of time (or
//     its class has no RPC method); Msg is the callee's message and its writes were rolled back.
//     The caller's event goes on: handle the error or return it.
//   - ErrCallCycle: the callee is this object, or is waiting on it through other calls; the call
//     fails at once instead of deadlocking, and Msg names the chain.
//   - ErrTooDeep: the chain of waiting objects would exceed MaxCallDepth.
//   - ErrOverloaded: the callee's queue is full.
//   - ErrEventCancelled: this event's deadline (which the callee inherits) passed, or the host is
//     shutting down.
//   - ErrNotFound: no such class; ErrInvalidArgument: a malformed ID or one not minted by that
//     class, or a method name over MaxMethodSize.
func (s *Stub) Call(method string, arg []byte) ([]byte, error) {
	op := "call_rpc " + s.label + " " + method
	if len(method) > MaxMethodSize {
		return nil, &Error{Op: "call_rpc " + s.label, Status: StatusInvalidArgument,
			Msg: "method name is " + strconv.Itoa(len(method)) + " bytes; the limit is " + strconv.Itoa(MaxMethodSize)}
	}
	rc := host.callRPC(s.target, method, arg)
	if rc < 0 {
		return nil, callError(op, rc)
	}
	return readStaged(op, rc)
}

// callError turns a failed call's status into an *Error. After CALL_FAILED and CALL_CYCLE the
// host stages a message (the callee's error, the chain of waiting objects): read it into Msg.
func callError(op string, rc int32) error {
	st := Status(-rc)
	var msg string
	if st == StatusCallFailed || st == StatusCallCycle {
		buf := make([]byte, MaxErrorSize)
		if n := host.resultRead(buf); n > 0 {
			msg = string(buf[:n])
		}
	}
	return &Error{Op: op, Status: st, Msg: msg}
}

// appendRequest appends the request encoding (the one dowasm_fetch receives).
func appendRequest(b []byte, q *Request) []byte {
	b = appendString(b, q.Method)
	b = appendString(b, q.Path)
	b = appendString(b, q.Query)
	b = appendU32(b, uint32(len(q.Headers)))
	for _, h := range q.Headers {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	return appendBytes(b, q.Body)
}

// decodeResponse parses the response encoding. Body aliases b (nil when empty); the header
// strings are copies.
func decodeResponse(b []byte) (*Response, bool) {
	r := reader{b: b}
	resp := &Response{Status: int(r.u32())}
	if n := r.count(8); n > 0 {
		resp.Headers = make(Headers, n)
		for i := range resp.Headers {
			resp.Headers[i] = Header{string(r.bytes()), string(r.bytes())}
		}
	}
	resp.Body = r.bytes()
	if len(resp.Body) == 0 {
		resp.Body = nil
	}
	return resp, r.done()
}

func runRPC(methodLen, argLen int32) int32 {
	rc := rpc(methodLen, argLen)
	if rc == 0 {
		afterEvent()
	}
	return rc
}

func rpc(methodLen, argLen int32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = fail("panic: " + panicMessage(r))
		}
	}()
	if inst.class == nil {
		return fail("dowasm_rpc before a successful dowasm_init")
	}
	if _, ok := inst.class.(RPCer); !ok {
		return fail(errNoRPCMethod)
	}
	if methodLen < 0 || argLen < 0 || int64(methodLen)+int64(argLen) > 1<<31-1 {
		return fail("malformed RPC from the host (method " + strconv.Itoa(int(methodLen)) +
			" bytes, argument " + strconv.Itoa(int(argLen)) + " bytes)")
	}
	b, err := readStaged("rpc", methodLen+argLen)
	if err != nil {
		return fail(err.Error())
	}
	res, msg := handleRPC(inst.class, b, int(methodLen))
	if msg != "" {
		return fail(msg)
	}
	if len(res) > 0 {
		noteAlloc(len(res))
		if rc := host.rpcReturn(res); rc < 0 {
			return fail("rpc_return: " + Status(-rc).String())
		}
	}
	return 0
}

const errNoRPCMethod = "dowasm_rpc: the class has no RPC method (implement dowasm.RPCer to answer calls from other objects)"

// handleRPC splits the staged method and argument and calls the class's RPC method; it returns
// the result, or the message the event fails with.
func handleRPC(c Class, staged []byte, methodLen int) ([]byte, string) {
	h, ok := c.(RPCer)
	if !ok {
		return nil, errNoRPCMethod
	}
	if methodLen > len(staged) {
		return nil, "malformed RPC from the host (method longer than the staged bytes)"
	}
	arg := staged[methodLen:]
	if len(arg) == 0 {
		arg = nil
	}
	res, err := h.RPC(string(staged[:methodLen]), arg)
	if err != nil {
		return nil, err.Error()
	}
	if len(res) > MaxResultSize {
		return nil, "RPC result is " + strconv.Itoa(len(res)) + " bytes; the limit is 32 MiB"
	}
	return res, ""
}
