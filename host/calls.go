package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/id"
)

// Calls between objects. A guest's call_fetch or call_rpc runs on the caller's loop goroutine: it
// sends an event to the callee's mailbox like any client and blocks the caller's event until the
// answer (the callee's own event, with its own transaction, committed before it answers). The
// caller's loop is busy for that time, so it can neither take other events nor be evicted.
//
// Deadlocks are refused instead of waited out: the runtime keeps the wait-for graph of objects
// blocked in calls (waits), and a call whose callee is the caller or (transitively) waits on the
// caller fails at once with CALL_CYCLE naming the chain. Checking and registering happen under one
// lock, so of two objects calling each other at the same moment one is told about the cycle.

// callGraph is the runtime's wait-for graph: object key -> the call it is blocked in.
type callGraph struct {
	mu      sync.Mutex
	waiting map[string]callEdge
}

type callEdge struct {
	target string // key of the callee
	label  string // the callee's label for messages ("class/name")
}

// callError is a failed call: its status and the message staged for the guest.
type callError struct {
	status abi.Status
	msg    string
}

func (e *callError) Error() string { return e.msg }

// label names an object in messages: class/name, or class/ID prefix without a name.
func label(class, name, idHex string) string {
	if name != "" {
		return class + "/" + name
	}
	return class + "/id:" + idHex[:12]
}

// enter registers that caller waits on callee, unless that closes a cycle.
func (g *callGraph) enter(callerKey, callerLabel, calleeKey, calleeLabel string) *callError {
	g.mu.Lock()
	defer g.mu.Unlock()
	chain := []string{callerLabel, calleeLabel}
	for cur := calleeKey; ; {
		if cur == callerKey {
			return &callError{abi.CallCycle, "call cycle: " + strings.Join(chain, " -> ") + " (the last is waiting on this call)"}
		}
		e, ok := g.waiting[cur]
		if !ok {
			break
		}
		cur = e.target
		chain = append(chain, e.label)
		if len(chain) > 4*abi.MaxCallDepth { // cannot happen (depth is bounded); never loop forever
			break
		}
	}
	g.waiting[callerKey] = callEdge{target: calleeKey, label: calleeLabel}
	return nil
}

func (g *callGraph) leave(callerKey string) {
	g.mu.Lock()
	delete(g.waiting, callerKey)
	g.mu.Unlock()
}

// decodeTarget parses the target encoding: bytes class, u32 kind, bytes value.
func decodeTarget(b []byte) (class string, kind uint32, value string, err error) {
	r := abi.Reader{B: b}
	class = string(r.Bytes("class"))
	kind = r.U32("kind")
	value = string(r.Bytes("value"))
	if err := r.Done("call target"); err != nil {
		return "", 0, "", err
	}
	return class, kind, value, nil
}

// callObject performs a call from the running event of in: ev is the callee's event (fetch or
// RPC), already filled in except its routing. It returns the callee's result.
func (in *instance) callObject(targetEnc []byte, ev *event) (eventResult, *callError) {
	caller := in.obj
	r := caller.class.rt
	cur := in.ev
	if cur == nil || cur.ctx == nil {
		return eventResult{}, &callError{abi.NotAllowed, "call outside an event"}
	}
	className, kind, value, err := decodeTarget(targetEnc)
	if err != nil {
		return eventResult{}, &callError{abi.InvalidArgument, "malformed call target: " + err.Error()}
	}
	c := r.Class(className)
	if c == nil {
		return eventResult{}, &callError{abi.NotFound, fmt.Sprintf("no class %q", className)}
	}
	var objID id.ID
	switch kind {
	case abi.TargetName:
		if value == "" || len(value) > 1024 {
			return eventResult{}, &callError{abi.InvalidArgument, "call target: an object name is 1 to 1024 bytes"}
		}
		objID = c.ns.FromName(value)
		ev.name = value
	case abi.TargetID:
		if objID, err = c.ns.Parse(value); err != nil {
			return eventResult{}, &callError{abi.InvalidArgument, fmt.Sprintf("call target: %v", err)}
		}
	default:
		return eventResult{}, &callError{abi.InvalidArgument, fmt.Sprintf("call target: unknown kind %d", kind)}
	}
	if cur.txnDepth > 0 {
		return eventResult{}, &callError{abi.NotAllowed, fmt.Sprintf("call to %s inside a transaction: the writes before a call are committed before it leaves, which a transaction that may still roll back cannot allow; commit the transaction first", className)}
	}
	depth := max(cur.depth, 1) + 1
	if depth > abi.MaxCallDepth {
		return eventResult{}, &callError{abi.TooDeep, fmt.Sprintf("call depth %d exceeds %d", depth, abi.MaxCallDepth)}
	}
	calleeHex := objID.String()
	calleeKey := c.name + "/" + calleeHex
	calleeLabel := label(c.name, ev.name, calleeHex)
	callerLabel := label(caller.class.name, caller.name, caller.idHex)
	if cerr := r.calls.enter(caller.key, callerLabel, calleeKey, calleeLabel); cerr != nil {
		return eventResult{}, cerr
	}
	defer r.calls.leave(caller.key)
	if cerr := caller.commitSoFar(cur); cerr != nil {
		return eventResult{}, cerr
	}

	ev.depth = depth
	if d, ok := cur.ctx.Deadline(); ok {
		ev.deadline = d
	}
	ev.done = make(chan eventResult, 1)
	if err := c.send(objID, ev); err != nil {
		if errors.Is(err, ErrOverloaded) {
			return eventResult{}, &callError{abi.Overloaded, err.Error()}
		}
		return eventResult{}, &callError{abi.EventCancelled, err.Error()}
	}
	// The wait is the callee's time, not ours: our CPU meter stops (and frees its thread).
	cur.cpu.pause()
	defer cur.cpu.resume()
	select {
	case res := <-ev.done:
		if res.err != nil {
			msg := res.err.Error()
			var ee *EventError
			if errors.As(res.err, &ee) {
				msg = calleeLabel + ": " + ee.Err.Error() // name the callee as the caller did
			}
			return eventResult{}, &callError{abi.CallFailed, msg}
		}
		return res, nil
	case <-cur.ctx.Done():
		// The callee's event runs on (its deadline is ours, so not for long); its answer is
		// dropped.
		return eventResult{}, &callError{abi.EventCancelled, fmt.Sprintf("call to %s: %v", calleeLabel, cur.ctx.Err())}
	}
}

// commitSoFar is the output gate of a call (invariant 3): the call leaves only once every write
// made before it, by this event and by the events before it in the batch, is committed. The
// caller cannot wait for the commit at the end of its event, since it waits for the answer first;
// so the batch so far is committed now and the outputs it held (the earlier events' responses,
// the socket effects recorded so far) are released. Writes after the call go into a new
// transaction: an event that fails after a call loses only those. If the commit fails, the
// whole batch fails when the running event returns.
func (o *object) commitSoFar(ev *event) *callError {
	if o.fatal != nil {
		return &callError{abi.EventCancelled, "the writes before this call could not be committed: " + o.fatal.Error()}
	}
	if o.txOpen {
		if err := o.commit(ev.db); err != nil {
			o.fatal = fmt.Errorf("commit before a call to another object: %w", err)
			return &callError{abi.EventCancelled, "the writes before this call could not be committed (the event fails): " + err.Error()}
		}
		ev.savepoint = false // COMMIT ended it; the next write opens a new transaction and savepoint
	}
	o.release(o.batch, o.current)
	o.wsReleaseSoFar(ev)
	return nil
}

// callFailed stages a failed call's message for the guest and returns its status.
func (in *instance) callFailed(e *callError) int32 {
	msg := e.msg
	if len(msg) > abi.MaxErrorSize {
		msg = msg[:abi.MaxErrorSize]
	}
	in.stage(append(in.staged[:0], msg...))
	return fail(e.status)
}

func hfCallFetch(in *instance, a []uint64) int32 {
	target, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	reqb, ok := in.read(a[2], a[3])
	if !ok {
		return fail(abi.BadPointer)
	}
	if req, err := abi.DecodeRequest(reqb); err != nil {
		return in.callFailed(&callError{abi.InvalidArgument, "malformed request: " + err.Error()})
	} else if !strings.HasPrefix(req.Path, "/") {
		return in.callFailed(&callError{abi.InvalidArgument, fmt.Sprintf("request path %q does not start with /", req.Path)})
	}
	target = append([]byte(nil), target...) // guest memory may move while we wait
	ev := &event{kind: eventFetch, req: append([]byte(nil), reqb...)}
	res, cerr := in.callObject(target, ev)
	if cerr != nil {
		return in.callFailed(cerr)
	}
	resp := res.resp
	if resp == nil {
		resp = &abi.Response{Status: 204}
	}
	return in.stage(abi.EncodeResponse(in.staged[:0], resp))
}

func hfCallRPC(in *instance, a []uint64) int32 {
	target, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	method, ok := in.read(a[2], a[3])
	if !ok {
		return fail(abi.BadPointer)
	}
	arg, ok := in.read(a[4], a[5])
	if !ok {
		return fail(abi.BadPointer)
	}
	if len(method) > abi.MaxMethodSize {
		return in.callFailed(&callError{abi.InvalidArgument, fmt.Sprintf("method name longer than %d bytes", abi.MaxMethodSize)})
	}
	if len(method)+len(arg) > abi.MaxResultSize {
		return fail(abi.ResultTooLarge)
	}
	payload := make([]byte, 0, len(method)+len(arg))
	payload = append(append(payload, method...), arg...)
	ev := &event{kind: eventRPC, req: payload, methodLen: len(method)}
	res, cerr := in.callObject(append([]byte(nil), target...), ev)
	if cerr != nil {
		return in.callFailed(cerr)
	}
	return in.stage(append(in.staged[:0], res.rpc...))
}

func hfRPCReturn(in *instance, a []uint64) int32 {
	b, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	if in.ev == nil || in.ev.kind != eventRPC {
		return fail(abi.NotAllowed)
	}
	if len(b) > abi.MaxResultSize {
		return fail(abi.ResultTooLarge)
	}
	in.ev.rpcResult = append(in.ev.rpcResult[:0], b...)
	return 0
}

// eventContext is the context of one event: the runtime's shutdown, the event timeout, and for
// a call the caller's deadline.
func (r *Runtime) eventContext(ev *event, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.shutdown, timeout)
	if ev.deadline.IsZero() {
		return ctx, cancel
	}
	ctx2, cancel2 := context.WithDeadline(ctx, ev.deadline)
	return ctx2, func() { cancel2(); cancel() }
}
