package host

// WebSockets with hibernation.
//
// The host owns every socket: a socket belongs to an object (its socketSet, kept in the
// runtime's wsHub by object key), not to an instance, so the object can be evicted while its
// clients stay connected. A message becomes an event like any other (class.send), which wakes the
// object if it has no instance; pings and the auto-response are answered here without an event.
//
// Output gate: what a handler does to sockets (sends, closes, attachments, the auto-response
// pair, accepting a socket) is recorded in the object's wsBatch and applied only after the commit
// that holds the event's writes; a failed event's records are dropped (wsBatch.rollback).
//
// Goroutines per connected socket: one reader (blocked in conn.Read while idle); a writer only
// while messages are queued; a ping timer without a goroutine while waiting.
//
// Every socket ends exactly once (socket.finish): by the client (close frame, lost connection,
// no answer to pings: a dowasm_ws_close event), by the host (slow consumer, oversized message,
// protocol error: a dowasm_ws_error event), by the object (ws_close: no event), or by shutdown
// (close 1001, no event).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/id"
)

// wsHub maps object keys to their sockets.
type wsHub struct {
	mu     sync.Mutex
	sets   map[string]*socketSet
	closed bool
	nextID atomic.Uint32
	open   atomic.Int64 // sockets accepted and not yet ended
}

// socketSet is one object's sockets and auto-response pair. It outlives the object's instances
// and loops; it is dropped when it has no sockets and the object's instance is evicted (or the
// last socket of a hibernated object ends).
type socketSet struct {
	key   string
	class *Class
	objID id.ID

	mu    sync.Mutex // guards name and socks; taken after wsHub.mu
	name  string     // the name the object was addressed by when its first socket was accepted
	socks map[uint32]*Socket
	auto  atomic.Pointer[autoPair]
}

type autoPair struct{ req, resp []byte }

type outMsg struct {
	typ  websocket.MessageType
	data []byte
}

type closeReq struct {
	code   websocket.StatusCode
	reason string
}

// Socket is a WebSocket accepted by an object's fetch handler. The gateway connects it with
// Accept once the accepting event has committed.
type Socket struct {
	id   uint32
	rt   *Runtime
	set  *socketSet
	tags []string

	mu         sync.Mutex
	conn       *websocket.Conn
	out        []outMsg
	outBytes   int
	writing    bool      // a writer goroutine is running
	closeReq   *closeReq // close after the queued messages (object's ws_close, host errors)
	gone       bool      // ended: not listed, no sends, no more events
	attachment []byte
	pingTimer  *time.Timer
	autoAt     atomic.Int64 // ms since the epoch of the last auto-response
}

// ID is the socket's ID as the guest sees it.
func (s *Socket) ID() uint32 { return s.id }

func (h *wsHub) init() { h.sets = map[string]*socketSet{} }

func (h *wsHub) get(key string) *socketSet {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sets[key]
}

// lookup returns the object's socket id if it is open.
func (h *wsHub) lookup(key string, sid uint32) *Socket {
	set := h.get(key)
	if set == nil {
		return nil
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	return set.socks[sid]
}

// add creates a socket in o's set (accepted by an event that has not committed yet: a rollback
// removes it again) (creating the set), unless the object is at its limit.
func (h *wsHub) add(o *object, tags []string) (*Socket, abi.Status) {
	r := o.class.rt
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, abi.NotAllowed
	}
	set := h.sets[o.key]
	if set == nil {
		set = newSocketSet(o)
		h.sets[o.key] = set
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	if len(set.socks) >= r.cfg.WSMaxSockets || (r.cfg.MaxSockets > 0 && h.open.Load() >= int64(r.cfg.MaxSockets)) {
		return nil, abi.LimitExceeded
	}
	sid := h.nextID.Add(1) & 0x7fffffff
	for sid == 0 || set.socks[sid] != nil {
		sid = h.nextID.Add(1) & 0x7fffffff
	}
	s := &Socket{id: sid, rt: r, set: set, tags: tags}
	set.socks[sid] = s
	if set.name == "" {
		set.name = o.name
	}
	h.open.Add(1)
	return s, 0
}

func newSocketSet(o *object) *socketSet {
	return &socketSet{key: o.key, class: o.class, objID: o.id, socks: map[uint32]*Socket{}}
}

// setFor returns o's set, creating it (for the auto-response pair of an object without sockets
// yet; dropped again when the object's instance goes).
func (h *wsHub) setFor(o *object) *socketSet {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.sets[o.key]
	if set == nil {
		set = newSocketSet(o)
		h.sets[o.key] = set
	}
	return set
}

// remove takes an ended socket out of its set; an empty set goes too when dropEmpty (the object
// has no instance that could still use the set's auto-response pair).
func (h *wsHub) remove(s *Socket, dropEmpty bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := s.set
	set.mu.Lock()
	if set.socks[s.id] == s {
		delete(set.socks, s.id)
		h.open.Add(-1)
	}
	empty := len(set.socks) == 0
	set.mu.Unlock()
	if empty && dropEmpty && h.sets[set.key] == set {
		delete(h.sets, set.key)
	}
}

// dropIfEmpty forgets an object's set once it has no sockets (called when its instance goes).
func (h *wsHub) dropIfEmpty(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.sets[key]
	if set == nil {
		return
	}
	set.mu.Lock()
	empty := len(set.socks) == 0
	set.mu.Unlock()
	if empty {
		delete(h.sets, key)
	}
}

// socketsWhere returns the open sockets of the sets keep selects.
func (h *wsHub) socketsWhere(keep func(*socketSet) bool) []*Socket {
	h.mu.Lock()
	defer h.mu.Unlock()
	var all []*Socket
	for _, set := range h.sets {
		if !keep(set) {
			continue
		}
		set.mu.Lock()
		for _, s := range set.socks {
			all = append(all, s)
		}
		set.mu.Unlock()
	}
	return all
}

// endQuietly ends s without an event and returns its connection (nil if it never connected or
// had ended already), for the caller to close.
func (s *Socket) endQuietly() *websocket.Conn {
	if !s.markGone() {
		return nil
	}
	s.rt.ws.remove(s, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// markGone marks the socket ended, once: it drops what is queued and stops its pings. It
// reports whether this call ended it.
func (s *Socket) markGone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return false
	}
	s.gone = true
	s.out, s.outBytes = nil, 0
	s.stopPingLocked()
	return true
}

// closeAll ends every socket with 1001 (server shutdown) and waits up to ctx for the close
// handshakes; no events are delivered.
func (h *wsHub) closeAll(ctx context.Context) {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	var wg sync.WaitGroup
	var conns []*websocket.Conn
	for _, s := range h.socketsWhere(func(*socketSet) bool { return true }) {
		conn := s.endQuietly()
		if conn == nil {
			continue
		}
		conns = append(conns, conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.Close(websocket.StatusGoingAway, "server shutting down")
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.CloseNow()
		}
	}
}

// closeClass closes every socket of a class's objects with 1001 (the class was deleted); no
// events follow.
func (h *wsHub) closeClass(c *Class, reason string) {
	for _, s := range h.socketsWhere(func(set *socketSet) bool { return set.class == c }) {
		if conn := s.endQuietly(); conn != nil {
			go conn.Close(websocket.StatusGoingAway, reason)
		}
	}
}

// wsOp is one socket effect recorded by an event, applied after its commit.
type wsOp struct {
	kind   byte // opSend, opClose, opAttach, opAuto
	s      *Socket
	typ    websocket.MessageType
	data   []byte
	code   int
	reason string
	auto   *autoPair
}

const (
	opSend byte = iota + 1
	opClose
	opAttach
	opAuto
)

// wsBatch holds the socket effects of the events of the batch being processed, in order.
// closed and attach are the views events later in the batch see (rebuilt on rollback).
type wsBatch struct {
	ops      []wsOp
	accepted []*Socket
	closed   map[uint32]bool
	attach   map[uint32][]byte
	// pending is the bytes of the sends recorded for each socket; bytes is the memory all the
	// recorded sends hold (consecutive sends of the same message to many sockets share one copy).
	// Both are bounded when a send is recorded (ws_send fails with LIMIT_EXCEEDED), so a handler
	// cannot make the host hold more than WSSendBuffer per socket and WSBatchBytes in all.
	pending map[uint32]int
	bytes   int
}

type wsMark struct{ ops, accepted int }

func (b *wsBatch) mark() wsMark { return wsMark{len(b.ops), len(b.accepted)} }

func (b *wsBatch) empty() bool { return len(b.ops) == 0 && len(b.accepted) == 0 }

// rollback drops the effects recorded since m: a failed event's. Sockets it accepted never
// existed (their clients get the event's error response).
func (b *wsBatch) rollback(m wsMark, h *wsHub) {
	if len(b.ops) == m.ops && len(b.accepted) == m.accepted {
		return
	}
	for _, s := range b.accepted[m.accepted:] {
		s.mu.Lock()
		s.gone = true
		s.mu.Unlock()
		h.remove(s, false)
	}
	clear(b.ops[m.ops:])
	b.ops = b.ops[:m.ops]
	clear(b.accepted[m.accepted:])
	b.accepted = b.accepted[:m.accepted]
	clear(b.closed)
	clear(b.attach)
	clear(b.pending)
	b.bytes = 0
	for i, op := range b.ops {
		b.view(op)
		if op.kind == opSend && !(i > 0 && sameData(b.ops[i-1].data, op.data)) {
			b.bytes += len(op.data)
		}
	}
}

// sameData reports whether a and b are the same copy.
func sameData(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (b *wsBatch) view(op wsOp) {
	switch op.kind {
	case opClose:
		if b.closed == nil {
			b.closed = map[uint32]bool{}
		}
		b.closed[op.s.id] = true
	case opAttach:
		if b.attach == nil {
			b.attach = map[uint32][]byte{}
		}
		b.attach[op.s.id] = op.data
	case opSend:
		if b.pending == nil {
			b.pending = map[uint32]int{}
		}
		b.pending[op.s.id] += len(op.data)
	}
}

func (b *wsBatch) record(op wsOp) {
	b.ops = append(b.ops, op)
	b.view(op)
}

// wsApply releases the batch's socket effects after its commit, in the order the events made
// them.
func (o *object) wsApply() {
	if o.ws.empty() {
		return
	}
	o.wsApplyOps()
	o.ws.reset()
}

func (o *object) wsApplyOps() {
	for _, op := range o.ws.ops {
		switch op.kind {
		case opSend:
			op.s.enqueue(op.typ, op.data)
		case opClose:
			op.s.closeByObject(websocket.StatusCode(op.code), op.reason)
		case opAttach:
			op.s.mu.Lock()
			op.s.attachment = op.data
			op.s.mu.Unlock()
		case opAuto:
			o.class.rt.ws.setFor(o).auto.Store(op.auto)
		}
	}
}

// wsReleaseSoFar releases the socket effects recorded so far, after the commit that comes before
// a call (commitSoFar). The sockets the running event accepted stay listed for its rollback: if
// it fails after the call, its client gets the error, not the upgrade.
func (o *object) wsReleaseSoFar(ev *event) {
	b := &o.ws
	o.wsApplyOps()
	b.clearOps()
	n := copy(b.accepted, b.accepted[ev.wsMark.accepted:])
	clear(b.accepted[n:])
	b.accepted = b.accepted[:n]
	ev.wsMark = wsMark{}
}

func (b *wsBatch) reset() {
	b.clearOps()
	clear(b.accepted)
	b.accepted = b.accepted[:0]
}

// clearOps forgets the recorded effects (applied or dropped) and the views of them.
func (b *wsBatch) clearOps() {
	clear(b.ops)
	b.ops = b.ops[:0]
	if cap(b.ops) > 4096 {
		b.ops = nil // a broadcast to a big room should not pin its op list while idle
	}
	clear(b.closed)
	clear(b.attach)
	clear(b.pending)
	b.bytes = 0
}

// discard drops every effect of the batch (its commit failed).
func (b *wsBatch) discard(h *wsHub) {
	b.rollback(wsMark{}, h)
	b.reset()
}

// --- the socket's life -------------------------------------------------------------------------

// Accept performs the HTTP upgrade for a socket the object accepted and starts serving it. On
// failure (the client went away, a bad handshake) the socket ends with a close event (1006)
// and Accept has already answered the request.
func (s *Socket) Accept(w http.ResponseWriter, r *http.Request) error {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.finish(endClose, websocket.StatusAbnormalClosure, "upgrade failed: "+err.Error(), false)
		return err
	}
	conn.SetReadLimit(int64(s.rt.cfg.WSMaxMessage))
	s.mu.Lock()
	s.conn = conn
	if s.gone && s.closeReq == nil {
		// Ended while the upgrade was on its way (server shutdown).
		s.mu.Unlock()
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return nil
	}
	s.kickWriterLocked()
	if !s.gone {
		s.schedulePingLocked()
	}
	s.mu.Unlock()
	go s.readLoop()
	return nil
}

// Abort ends a socket whose upgrade the gateway will not perform.
func (s *Socket) Abort(reason string) {
	s.finish(endClose, websocket.StatusAbnormalClosure, reason, false)
}

type endKind int

const (
	endClose endKind = iota + 1 // the client closed it or was lost: dowasm_ws_close
	endError                    // the host ended it: dowasm_ws_error
)

// finish ends the socket once: it stops being listed and the object gets one event about it
// (when its class handles that kind). It does not touch the connection. It reports whether this
// call ended the socket.
func (s *Socket) finish(kind endKind, code websocket.StatusCode, reason string, clean bool) bool {
	if !s.markGone() {
		return false
	}
	m := s.set.class.cur.Load()
	handled := (kind == endClose && m.hasWSClose) || (kind == endError && m.hasWSError)
	s.rt.ws.remove(s, !handled)
	if !handled {
		return true
	}
	ev := &event{kind: eventWSClose, sockID: s.id, wsCode: int(code), wsClean: clean, req: []byte(reason), endSock: s}
	if kind == endError {
		ev.kind = eventWSError
	}
	go s.deliver(ev)
	return true
}

// deliver sends an event about the socket to its object, waiting while the object's queue is
// full (the reader stops reading meanwhile: TCP slows the client down), and waits for its result.
func (s *Socket) deliver(ev *event) error {
	set := s.set
	set.mu.Lock()
	ev.name = set.name
	set.mu.Unlock()
	ev.done = make(chan eventResult, 1)
	backoff := time.Millisecond
	for {
		err := set.class.send(set.objID, ev)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrOverloaded) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 100*time.Millisecond)
	}
	res := <-ev.done
	if res.err != nil && !errors.Is(res.err, ErrShuttingDown) {
		s.rt.log.Warn("websocket event failed", "class", set.class.name, "object", set.objID.String(), "socket", s.id, "event", ev.kind.String(), "error", res.err)
	}
	return res.err
}

func (s *Socket) readLoop() {
	r := s.rt
	for {
		typ, data, err := s.conn.Read(context.Background())
		if err != nil {
			s.readFailed(err)
			return
		}
		if typ == websocket.MessageText {
			if p := s.set.auto.Load(); p != nil && bytes.Equal(data, p.req) {
				s.autoAt.Store(r.cfg.Clock.Now().UnixMilli())
				s.enqueue(websocket.MessageText, p.resp)
				continue
			}
		}
		kind := abi.WSText
		if typ == websocket.MessageBinary {
			kind = abi.WSBinary
		}
		if err := s.deliver(&event{kind: eventWSMessage, sockID: s.id, wsKind: kind, req: data}); errors.Is(err, ErrShuttingDown) {
			return
		}
	}
}

// readFailed turns the reader's error into the socket's end.
func (s *Socket) readFailed(err error) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce):
		s.finish(endClose, ce.Code, ce.Reason, true)
	case strings.Contains(err.Error(), "read limited at"):
		// coder/websocket has closed the connection with 1009 already.
		s.finish(endError, websocket.StatusMessageTooBig, fmt.Sprintf("message larger than %d bytes (ws_max_message): connection closed with 1009", s.rt.cfg.WSMaxMessage), false)
		s.conn.CloseNow()
	case strings.HasPrefix(err.Error(), "received "):
		// coder/websocket's protocol errors ("received unmasked frame from client", "received
		// unknown opcode ..."); it has sent 1002 where the protocol allows.
		s.finish(endError, websocket.StatusProtocolError, "protocol error: "+err.Error(), false)
		s.conn.CloseNow()
	default:
		s.finish(endClose, websocket.StatusAbnormalClosure, "connection lost: "+err.Error(), false)
		s.conn.CloseNow()
	}
}

// enqueue queues a message; past the send buffer the client is a slow consumer and is dropped.
func (s *Socket) enqueue(typ websocket.MessageType, data []byte) {
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	if s.outBytes+len(data) > s.rt.cfg.WSSendBuffer && s.outBytes > 0 {
		s.mu.Unlock()
		s.slowConsumer()
		return
	}
	s.out = append(s.out, outMsg{typ, data})
	s.outBytes += len(data)
	s.kickWriterLocked()
	s.mu.Unlock()
}

func (s *Socket) slowConsumer() {
	msg := fmt.Sprintf("slow consumer: more than %d bytes waiting to be sent (ws_send_buffer); connection closed with 1008", s.rt.cfg.WSSendBuffer)
	if !s.finish(endError, websocket.StatusPolicyViolation, msg, false) {
		return
	}
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		// The close frame waits behind the stuck write; coder/websocket gives up after its
		// handshake timeout and closes the connection, which also ends the blocked writer.
		go conn.Close(websocket.StatusPolicyViolation, "send buffer full")
	}
}

// closeByObject closes the socket after its queued messages (ws_close): no event follows.
func (s *Socket) closeByObject(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	s.gone = true
	s.closeReq = &closeReq{code, reason}
	s.stopPingLocked()
	s.kickWriterLocked()
	s.mu.Unlock()
	s.rt.ws.remove(s, false)
}

func (s *Socket) kickWriterLocked() {
	if s.conn == nil || s.writing || (len(s.out) == 0 && s.closeReq == nil) {
		return
	}
	s.writing = true
	go s.writeLoop()
}

func (s *Socket) writeLoop() {
	for {
		s.mu.Lock()
		if len(s.out) == 0 {
			cr := s.closeReq
			s.closeReq = nil
			s.writing = false
			s.mu.Unlock()
			if cr != nil {
				s.conn.Close(cr.code, cr.reason)
			}
			return
		}
		m := s.out[0]
		s.out[0] = outMsg{}
		s.out = s.out[1:]
		if len(s.out) == 0 {
			s.out = nil
		}
		s.outBytes -= len(m.data)
		s.mu.Unlock()
		if err := s.conn.Write(context.Background(), m.typ, m.data); err != nil {
			// The reader sees the same failure and reports the socket's end.
			s.mu.Lock()
			s.out, s.outBytes, s.writing = nil, 0, false
			s.mu.Unlock()
			s.conn.CloseNow()
			return
		}
	}
}

func (s *Socket) schedulePingLocked() {
	d := s.rt.cfg.WSPingInterval
	if s.pingTimer == nil {
		s.pingTimer = time.AfterFunc(d, s.ping)
	} else {
		s.pingTimer.Reset(d)
	}
}

func (s *Socket) stopPingLocked() {
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
}

// ping checks that the client still answers; no answer within the interval is a lost
// connection (half-open TCP, a frozen client).
func (s *Socket) ping() {
	d := s.rt.cfg.WSPingInterval
	ctx, cancel := context.WithTimeout(context.Background(), d)
	err := s.conn.Ping(ctx)
	cancel()
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	if err == nil {
		s.schedulePingLocked()
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if s.finish(endClose, websocket.StatusAbnormalClosure, fmt.Sprintf("no answer to ping within %s", d), false) {
		s.conn.CloseNow()
	}
}

// --- events ----------------------------------------------------------------------------------

// FetchWebSocket delivers a WebSocket upgrade request to an object. If its handler accepted the
// upgrade (ws_accept) and the event committed, the returned socket must be connected with
// Socket.Accept (or ended with Socket.Abort); otherwise resp is the handler's answer. Unlike Fetch
// it waits for the event even if the client goes away, so no accepted socket is left behind.
func (c *Class) FetchWebSocket(objID id.ID, name string, req *abi.Request) (*abi.Response, *Socket, error) {
	ev := &event{kind: eventFetch, upgrade: true, name: name, req: abi.EncodeRequest(nil, req), done: make(chan eventResult, 1)}
	if err := c.send(objID, ev); err != nil {
		return nil, nil, err
	}
	res := <-ev.done
	return res.resp, res.sock, res.err
}

// wsSocketOpen reports whether the socket a message event came from is still open for the object
// (not ended, not closed by an earlier event of this batch).
func (o *object) wsSocketOpen(sid uint32) bool {
	if o.ws.closed[sid] {
		return false
	}
	s := o.class.rt.ws.lookup(o.key, sid)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.gone
}

// dispatchWS delivers a socket event to the instance.
func (in *instance) dispatchWS(ev *event) error {
	switch ev.kind {
	case eventWSMessage:
		if in.wsMessage == nil {
			if s := in.obj.class.rt.ws.lookup(in.obj.key, ev.sockID); s != nil {
				s.closeByObject(websocket.StatusInternalError, "the class does not handle WebSocket messages")
			}
			return nil
		}
		return in.callStaged(ev, in.wsMessage, "websocket message", uint64(ev.sockID), uint64(ev.wsKind), uint64(len(ev.req)))
	case eventWSClose:
		clean := uint64(0)
		if ev.wsClean {
			clean = 1
		}
		return in.callStaged(ev, in.wsClose, "websocket close", uint64(ev.sockID), uint64(uint32(ev.wsCode)), clean, uint64(len(ev.req)))
	case eventWSError:
		return in.callStaged(ev, in.wsError, "websocket error", uint64(ev.sockID), uint64(len(ev.req)))
	}
	return fmt.Errorf("unknown event kind %d", ev.kind)
}

// --- host functions ------------------------------------------------------------------------------

// socketFor returns the calling object's open socket sid as this batch sees it.
func (in *instance) socketFor(sid uint64) *Socket {
	o := in.obj
	if sid == 0 || sid > 0x7fffffff || o.ws.closed[uint32(sid)] {
		return nil
	}
	s := o.class.rt.ws.lookup(o.key, uint32(sid))
	if s == nil {
		return nil
	}
	s.mu.Lock()
	gone := s.gone
	s.mu.Unlock()
	if gone {
		return nil
	}
	return s
}

func hfWSAccept(in *instance, a []uint64) int32 {
	b, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	ev := in.ev
	if ev == nil || ev.kind != eventFetch || !ev.upgrade || ev.sock != nil {
		return fail(abi.NotAllowed)
	}
	var tags []string
	if len(b) > 0 {
		keys, err := abi.DecodeKeys(b)
		if err != nil || len(keys) > abi.MaxSocketTags {
			return fail(abi.InvalidArgument)
		}
		tags = make([]string, len(keys))
		for i, k := range keys {
			if len(k) == 0 || len(k) > abi.MaxTagSize {
				return fail(abi.InvalidArgument)
			}
			tags[i] = string(k)
		}
	}
	o := in.obj
	s, st := o.class.rt.ws.add(o, tags)
	if st != 0 {
		return fail(st)
	}
	ev.sock = s
	o.ws.accepted = append(o.ws.accepted, s)
	return int32(s.id)
}

func hfWSSend(in *instance, a []uint64) int32 {
	b, ok := in.read(a[2], a[3])
	if !ok {
		return fail(abi.BadPointer)
	}
	var typ websocket.MessageType
	switch a[1] & 0xffffffff {
	case abi.WSText:
		typ = websocket.MessageText
	case abi.WSBinary:
		typ = websocket.MessageBinary
	default:
		return fail(abi.InvalidArgument)
	}
	if len(b) > in.obj.class.rt.cfg.WSMaxMessage {
		return fail(abi.ValueTooLarge)
	}
	s := in.socketFor(a[0] & 0xffffffff)
	if s == nil {
		return fail(abi.NotFound)
	}
	return in.obj.ws.send(s, typ, b, &in.obj.class.rt.cfg)
}

// send records a message for s, within the bounds on what a batch may hold (see wsBatch).
func (b *wsBatch) send(s *Socket, typ websocket.MessageType, msg []byte, cfg *Config) int32 {
	if p := b.pending[s.id]; p > 0 && p+len(msg) > cfg.WSSendBuffer {
		return fail(abi.LimitExceeded)
	}
	var data []byte
	if n := len(b.ops); n > 0 && b.ops[n-1].kind == opSend && bytes.Equal(b.ops[n-1].data, msg) {
		data = b.ops[n-1].data // a broadcast: one copy for every socket
	} else {
		if b.bytes+len(msg) > cfg.WSBatchBytes {
			return fail(abi.LimitExceeded)
		}
		data = bytes.Clone(msg)
		b.bytes += len(msg)
	}
	b.record(wsOp{kind: opSend, s: s, typ: typ, data: data})
	return 0
}

func hfWSClose(in *instance, a []uint64) int32 {
	b, ok := in.read(a[2], a[3])
	if !ok {
		return fail(abi.BadPointer)
	}
	code := int32(a[1])
	if code != 1000 && (code < 3000 || code > 4999) {
		return fail(abi.InvalidArgument)
	}
	if len(b) > abi.MaxCloseReasonSize || !utf8.Valid(b) {
		return fail(abi.InvalidArgument)
	}
	s := in.socketFor(a[0] & 0xffffffff)
	if s == nil {
		return fail(abi.NotFound)
	}
	in.obj.ws.record(wsOp{kind: opClose, s: s, code: int(code), reason: string(b)})
	return 0
}

func hfWSList(in *instance, a []uint64) int32 {
	tag, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	if len(tag) > abi.MaxTagSize {
		return fail(abi.InvalidArgument)
	}
	o := in.obj
	var ids []uint32
	if set := o.class.rt.ws.get(o.key); set != nil {
		set.mu.Lock()
		for sid, s := range set.socks {
			if o.ws.closed[sid] || (len(tag) > 0 && !slices.Contains(s.tags, string(tag))) {
				continue
			}
			ids = append(ids, sid)
		}
		set.mu.Unlock()
	}
	// Removed sockets (ended) are no longer in the set; IDs grow, so ID order is accept order.
	slices.Sort(ids)
	out := make([]byte, 4, 4+4*len(ids))
	binary.LittleEndian.PutUint32(out, uint32(len(ids)))
	for _, sid := range ids {
		out = binary.LittleEndian.AppendUint32(out, sid)
	}
	return in.stage(out)
}

// endedSocket returns the socket a close or error event is about (ended, but its tags and
// attachment stay readable during that event).
func (in *instance) endedSocket(sid uint64) *Socket {
	if in.ev != nil && in.ev.endSock != nil && uint64(in.ev.endSock.id) == sid {
		return in.ev.endSock
	}
	return nil
}

func hfWSTags(in *instance, a []uint64) int32 {
	s := in.socketFor(a[0] & 0xffffffff)
	if s == nil {
		s = in.endedSocket(a[0] & 0xffffffff)
	}
	if s == nil {
		return fail(abi.NotFound)
	}
	keys := make([][]byte, len(s.tags))
	for i, t := range s.tags {
		keys[i] = []byte(t)
	}
	return in.stage(abi.EncodeKeys(nil, keys))
}

func hfWSAttachmentSet(in *instance, a []uint64) int32 {
	b, ok := in.read(a[1], a[2])
	if !ok {
		return fail(abi.BadPointer)
	}
	if len(b) > abi.MaxAttachmentSize {
		return fail(abi.ValueTooLarge)
	}
	s := in.socketFor(a[0] & 0xffffffff)
	if s == nil {
		return fail(abi.NotFound)
	}
	var data []byte
	if len(b) > 0 {
		data = bytes.Clone(b)
	}
	in.obj.ws.record(wsOp{kind: opAttach, s: s, data: data})
	return 0
}

func hfWSAttachmentGet(in *instance, a []uint64) int32 {
	s := in.socketFor(a[0] & 0xffffffff)
	if s == nil {
		s = in.endedSocket(a[0] & 0xffffffff)
	}
	if s == nil {
		return fail(abi.NotFound)
	}
	v, ok := in.obj.ws.attach[s.id]
	if !ok {
		s.mu.Lock()
		v = s.attachment
		s.mu.Unlock()
	}
	// A copy: the instance reuses its staged buffer for later results.
	return in.stage(bytes.Clone(v))
}

func hfWSAutoResponse(in *instance, a []uint64) int32 {
	req, ok := in.read(a[0], a[1])
	if !ok {
		return fail(abi.BadPointer)
	}
	resp, ok := in.read(a[2], a[3])
	if !ok {
		return fail(abi.BadPointer)
	}
	if len(req) > abi.MaxAutoResponse || len(resp) > abi.MaxAutoResponse {
		return fail(abi.ValueTooLarge)
	}
	var p *autoPair
	if len(req) > 0 {
		p = &autoPair{req: bytes.Clone(req), resp: bytes.Clone(resp)}
	}
	in.obj.ws.record(wsOp{kind: opAuto, auto: p})
	return 0
}

func hfWSAutoResponseTime(in *instance, a []uint64) int32 {
	s := in.socketFor(a[0] & 0xffffffff)
	if s == nil {
		return fail(abi.NotFound)
	}
	t := s.autoAt.Load()
	if t == 0 {
		return fail(abi.NotFound)
	}
	return in.stage(binary.LittleEndian.AppendUint64(nil, uint64(t)))
}

func (k eventKind) String() string {
	switch k {
	case eventFetch:
		return "fetch"
	case eventAlarm:
		return "alarm"
	case eventRPC:
		return "rpc"
	case eventWSMessage:
		return "websocket message"
	case eventWSClose:
		return "websocket close"
	case eventWSError:
		return "websocket error"
	}
	return fmt.Sprintf("event(%d)", int(k))
}
