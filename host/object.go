package host

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/id"
	"github.com/dowasm/dowasm/storage"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/time/rate"
)

// ErrOverloaded is wrapped when an object's queue is full.
var ErrOverloaded = errors.New("object overloaded")

// EventError is an event that failed in the guest or in storage: the event's writes were
// rolled back and its instance discarded.
type EventError struct {
	Class, Object string
	Err           error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("object %s/%s: %v", e.Class, e.Object, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

type eventKind int

const (
	eventFetch eventKind = 1
	eventAlarm eventKind = 2
	eventRPC   eventKind = 3 // req holds the method name (methodLen bytes) and the argument
	// WebSocket events (websocket.go): req holds the message, the close reason or the error
	eventWSMessage eventKind = 4
	eventWSClose   eventKind = 5
	eventWSError   eventKind = 6
)

type eventResult struct {
	resp *abi.Response
	rpc  []byte  // an RPC's result
	sock *Socket // the socket an upgrade request's handler accepted
	err  error
}

// event is one delivery to an object. Fields below "while running" belong to the object's
// loop goroutine.
type event struct {
	kind eventKind
	name string // the name the caller addressed the object by, if any
	req  []byte // encoded request
	done chan eventResult
	// calls between objects: the chain's length up to this event (0 or 1 for a client's), the
	// caller's deadline, the RPC's method length
	depth     int
	deadline  time.Time
	methodLen int
	// WebSockets: upgrade marks a client's upgrade request (ws_accept is allowed); sockID, wsKind,
	// wsCode and wsClean describe a socket event
	upgrade bool
	sockID  uint32
	wsKind  int
	wsCode  int
	wsClean bool

	// while running
	ctx        context.Context
	db         *storage.DB
	resp       *abi.Response
	txnDepth   int
	savepoint  bool // the event's savepoint "ev" is open (from its first write)
	storageErr error
	result     eventResult
	// alarm events: the retry count delivered, and whether the handler's last alarm call
	// deleted the alarm (which cancels the retry if the handler then fails)
	alarmRetry   int
	alarmDeleted bool
	rpcResult    []byte
	// the CPU the event has used and may use (0: no CPU limit, the event timeout only);
	// cpuExceeded is set by refill as it stops the guest for it
	cpu         cpuMeter
	cpuLimit    time.Duration
	cpuExceeded bool
	sock        *Socket // accepted by ws_accept
	endSock     *Socket // the ended socket of a close or error event
	wsMark      wsMark  // the batch's socket effects before this event (a failure rolls back to it)
}

// registry maps object keys to their loops. It is sharded so that different objects rarely
// contend on one lock.
type registry struct {
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu     sync.Mutex
	m      map[string]*object
	closed bool
}

func (g *registry) init() {
	g.seed = maphash.MakeSeed()
	for i := range g.shards {
		g.shards[i].m = map[string]*object{}
	}
}

func (g *registry) shard(key string) *shard {
	return &g.shards[maphash.String(g.seed, key)%uint64(len(g.shards))]
}

func (g *registry) count() int {
	n := 0
	for i := range g.shards {
		g.shards[i].mu.Lock()
		n += len(g.shards[i].m)
		g.shards[i].mu.Unlock()
	}
	return n
}

// closeAll refuses new events from now on. Because sends hold the shard lock while they start a
// loop (and add it to the WaitGroup), every loop started is visible to Close's Wait.
func (g *registry) closeAll() {
	for i := range g.shards {
		g.shards[i].mu.Lock()
		g.shards[i].closed = true
		g.shards[i].mu.Unlock()
	}
}

// object is the loop of one active object: a bounded mailbox and, while warm, one instance.
//
// The rule that keeps one instance per ID: a loop leaves the registry only while holding its
// shard lock and with an empty mailbox, and senders enqueue under the same lock; a sender that
// finds no loop starts a new one. Instances are created and destroyed only on the loop
// goroutine, and a loop destroys its instance before it leaves the registry.
type object struct {
	key   string
	class *Class
	id    id.ID
	idHex string
	shard *shard

	mu       sync.Mutex // guards mailbox and running; taken after shard.mu
	mailbox  []*event
	running  bool
	wake     chan struct{}
	evictNow chan struct{}
	idleElem *list.Element // in Runtime.idle while waiting with an instance; guarded by idleSet.mu

	// owned by the loop goroutine
	name          string
	nameChecked   bool
	namePersisted bool
	inst          *instance
	batch         []*event
	txOpen        bool    // the current batch's transaction has begun (at its first write)
	ws            wsBatch // the batch's socket effects, applied after its commit
	// current is the index in the batch of the running event; released counts the events at
	// the front of the batch whose results were already sent (by a commit before a call)
	current, released int
	// fatal, once set by a host function, fails the whole batch when the running event returns
	// (a commit before a call failed: the transaction cannot be trusted any more)
	fatal error
	// the object's log rate (guestLog), and what was dropped since it was last reported
	logRate     *rate.Limiter
	logDropped  int64
	logReported time.Time

	// alarms (see alarms.go): alarmTouched says an event of the batch may have changed the
	// alarm; indexAt is this object's entry in the class's alarm index (valid when indexKnown;
	// absent unless indexHas).
	alarmTouched bool
	indexAt      int64
	indexHas     bool
	indexKnown   bool
}

// beginWrite makes sure the batch's transaction and ev's savepoint are open before a write.
func (o *object) beginWrite(db *storage.DB, ev *event) error {
	if !o.txOpen {
		if err := db.Begin(); err != nil {
			return err
		}
		o.txOpen = true
		// The first write also records the name the object is addressed by, so that it is
		// known when the object is later reached by its ID alone. (Reads never create the
		// object's database.)
		if !o.namePersisted && o.name != "" {
			if err := db.SetMeta("name", []byte(o.name)); err != nil {
				return err
			}
			o.namePersisted = true
		}
	}
	if ev != nil && !ev.savepoint {
		if err := db.Savepoint("ev"); err != nil {
			return err
		}
		ev.savepoint = true
	}
	return nil
}

// Fetch delivers an HTTP request to the object objID of class c and waits for its response,
// which is released only after the commit holding the event's writes. name is the name the ID
// was derived from ("" for IDs given explicitly).
func (c *Class) Fetch(ctx context.Context, objID id.ID, name string, req *abi.Request) (*abi.Response, error) {
	ev := &event{kind: eventFetch, name: name, req: abi.EncodeRequest(nil, req), done: make(chan eventResult, 1)}
	if err := c.send(objID, ev); err != nil {
		return nil, err
	}
	select {
	case res := <-ev.done:
		return res.resp, res.err
	case <-ctx.Done():
		// The event still runs (and commits) if it was dequeued; the caller just stops waiting.
		return nil, ctx.Err()
	}
}

func (c *Class) send(objID id.ID, ev *event) error {
	r := c.rt
	idHex := objID.String()
	key := c.name + "/" + idHex
	if c.deleted.Load() {
		return fmt.Errorf("class %q: %w", c.name, ErrNoClass)
	}
	maxQueue := c.cur.Load().limits.MaxQueue
	sh := r.objects.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return ErrShuttingDown
	}
	o := sh.m[key]
	if o == nil {
		o = &object{key: key, class: c, id: objID, idHex: idHex, shard: sh, wake: make(chan struct{}, 1), evictNow: make(chan struct{}, 1)}
		sh.m[key] = o
	}
	o.mu.Lock()
	if n := len(o.mailbox); n >= maxQueue {
		o.mu.Unlock()
		return fmt.Errorf("%w: object %s/%s has %d events queued (limit %d)", ErrOverloaded, c.name, idHex, n, maxQueue)
	}
	o.mailbox = append(o.mailbox, ev)
	start := !o.running
	o.running = true
	o.mu.Unlock()
	if start {
		r.loops.Add(1)
		go o.run()
	} else {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func (o *object) run() {
	r := o.class.rt
	defer r.loops.Done()
	idle := time.NewTimer(r.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		if batch := o.take(r.cfg.MaxBatch); len(batch) > 0 {
			if r.shutdown.Err() != nil {
				for _, ev := range batch {
					ev.done <- eventResult{err: ErrShuttingDown}
				}
			} else {
				o.process(batch)
			}
			clear(batch)
			continue
		}
		if o.inst == nil || r.shutdown.Err() != nil {
			o.evict()
			if o.tryExit() {
				return
			}
			continue
		}
		idle.Reset(r.cfg.IdleTimeout)
		r.idle.add(o)
		select {
		case <-o.wake:
		case <-idle.C:
			o.evict()
		case <-o.evictNow:
			o.evict() // another object needs room under MaxInstances
		case <-r.shutdown.Done():
		}
		r.idle.remove(o)
	}
}

// idleSet orders the objects that hold an instance and wait for events, least recently active
// first, so that an object needing an instance beyond MaxInstances can ask the coldest to evict.
type idleSet struct {
	mu sync.Mutex
	l  list.List // of *object; front = most recently idle
}

func (s *idleSet) add(o *object) {
	s.mu.Lock()
	o.idleElem = s.l.PushFront(o)
	s.mu.Unlock()
}

func (s *idleSet) remove(o *object) {
	s.mu.Lock()
	if o.idleElem != nil {
		s.l.Remove(o.idleElem)
		o.idleElem = nil
	}
	s.mu.Unlock()
	// An eviction request that arrived after the object became busy is stale: drop it.
	select {
	case <-o.evictNow:
	default:
	}
}

// evictColdest asks the least recently active idle object to drop its instance. It does not
// wait: the cap is soft by the few instances being created at the same moment.
func (s *idleSet) evictColdest() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.l.Back()
	if e == nil {
		return false // every instance is busy: nothing can be evicted now
	}
	o := e.Value.(*object)
	s.l.Remove(e)
	o.idleElem = nil
	select {
	case o.evictNow <- struct{}{}:
	default:
	}
	return true
}

// take removes up to max events from the mailbox, in arrival order.
func (o *object) take(max int) []*event {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(len(o.mailbox), max)
	if n == 0 {
		return nil
	}
	o.batch = append(o.batch[:0], o.mailbox[:n]...)
	rest := copy(o.mailbox, o.mailbox[n:])
	clear(o.mailbox[rest:])
	o.mailbox = o.mailbox[:rest]
	if cap(o.mailbox) > 64 && rest == 0 {
		o.mailbox = nil // a burst's backlog should not pin memory while idle
	}
	return o.batch
}

// tryExit leaves the registry if no event is waiting.
func (o *object) tryExit() bool {
	o.shard.mu.Lock()
	defer o.shard.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.mailbox) > 0 {
		return false
	}
	o.running = false
	delete(o.shard.m, o.key)
	return true
}

func (o *object) evict() {
	if o.inst != nil {
		o.inst.close()
		o.inst = nil
		// An object without sockets needs no set (its next instance sets its auto-response
		// pair again).
		o.class.rt.ws.dropIfEmpty(o.key)
	}
}

// process runs a batch of events in one transaction: each event in its own savepoint, then one
// commit, then every response is released. A failed event rolls back to its savepoint and
// discards the instance; the others still commit. A call to another object commits the batch so
// far first (commitSoFar), releasing the outputs of the events before it.
func (o *object) process(batch []*event) {
	r := o.class.rt
	for _, ev := range batch {
		if ev.name != "" && o.name == "" {
			o.name = ev.name
		}
	}
	o.released = 0
	db, err := r.store.Acquire(r.shutdown, o.class.name, o.idHex)
	if err != nil {
		if r.shutdown.Err() != nil {
			err = ErrShuttingDown
		}
		o.failAll(batch, fmt.Errorf("open storage: %w", err))
		return
	}
	defer r.store.Release(db)
	if err := db.SetMaxBytes(o.class.cur.Load().limits.StorageBytes); err != nil {
		o.failAll(batch, fmt.Errorf("object storage: %w", err))
		return
	}
	o.txOpen = false
	if err := o.checkName(db); err != nil {
		o.abort(db, batch, fmt.Errorf("object metadata: %w", err))
		return
	}
	for i, ev := range batch {
		o.current = i
		if fatal := o.runEvent(db, ev); fatal != nil {
			o.abort(db, batch, fatal)
			return
		}
	}
	if err := o.commit(db); err != nil {
		o.abort(db, batch, err)
		return
	}
	o.wsApply()
	o.release(batch, len(batch))
}

// commit commits the batch's transaction if anything was written, with the alarm index updated
// around it. After an error nothing is committed and the batch must be aborted.
func (o *object) commit(db *storage.DB) error {
	if !o.txOpen {
		// Nothing was written: there is nothing to commit and nothing to wait for.
		if o.alarmTouched {
			o.alarmTouched = false
			o.alarmAfterCommit(db)
		}
		return nil
	}
	if db.TxLost() {
		return fmt.Errorf("writes lost: %w", storage.ErrTxLost)
	}
	if o.alarmTouched {
		if err := o.alarmBeforeCommit(db); err != nil {
			// Committing an alarm the index might not know of could lose it: fail instead.
			return fmt.Errorf("alarm index, writes lost: %w", err)
		}
	}
	if err := db.Commit(); err != nil {
		return fmt.Errorf("commit failed, writes lost: %w", err)
	}
	o.txOpen = false
	if o.alarmTouched {
		o.alarmTouched = false
		o.alarmAfterCommit(db)
	}
	return nil
}

// abort ends a batch whose transaction cannot commit (invariant 4): the transaction is rolled
// back, every output held for it is dropped (each caller gets err), and the instance, whose
// memory may reflect writes that never committed, is discarded. Events released before (by a
// commit before a call) keep their results.
func (o *object) abort(db *storage.DB, batch []*event, err error) {
	db.Rollback()
	o.txOpen, o.alarmTouched, o.indexKnown = false, false, false
	o.evict()
	o.nameChecked = false
	o.failAll(batch, err)
}

// release sends the results of batch[o.released:upto] to their callers.
func (o *object) release(batch []*event, upto int) {
	for _, ev := range batch[o.released:upto] {
		ev.done <- ev.result
		ev.db, ev.ctx = nil, nil
	}
	o.released = upto
}

// checkName recovers the object's name from its metadata when it is addressed by ID only, and
// notes whether the name still has to be persisted (at the first write, see beginWrite).
func (o *object) checkName(db *storage.DB) error {
	if o.nameChecked {
		return nil
	}
	v, ok, err := db.Meta("name")
	if err != nil {
		return err
	}
	if ok && o.name == "" {
		o.name = string(v)
	}
	o.namePersisted = ok
	o.nameChecked = true
	return nil
}

// failAll answers every event of the batch not yet released with err.
func (o *object) failAll(batch []*event, err error) {
	o.ws.discard(&o.class.rt.ws)
	for _, ev := range batch[o.released:] {
		ev.done <- eventResult{err: &EventError{Class: o.class.name, Object: o.idHex, Err: err}}
		ev.db, ev.ctx = nil, nil
	}
}

// runEvent runs one event in a savepoint. A guest failure is recorded in ev.result; the returned
// error is reserved for failures that make the whole batch's transaction unusable.
func (o *object) runEvent(db *storage.DB, ev *event) error {
	if ev.kind == eventAlarm {
		return o.runAlarm(db, ev)
	}
	return o.runEventWith(db, ev, func() error { return o.dispatch(ev) })
}

// runEventWith runs fn as event ev: with the event's deadline, in its savepoint (opened by the
// first write), rolled back and the instance discarded if fn fails.
func (o *object) runEventWith(db *storage.DB, ev *event, fn func() error) error {
	r := o.class.rt
	limits := o.class.cur.Load().limits
	ctx, cancel := r.eventContext(ev, limits.EventTimeout)
	defer cancel()
	ev.ctx, ev.db, ev.savepoint = ctx, db, false
	ev.cpu, ev.cpuLimit, ev.cpuExceeded = cpuMeter{on: limits.EventCPU > 0}, limits.EventCPU, false
	ev.wsMark = o.ws.mark()
	err := fn()
	if o.fatal != nil {
		fatal := o.fatal
		o.fatal = nil
		o.ws.rollback(ev.wsMark, &r.ws)
		ev.sock = nil
		return fatal
	}
	if ev.storageErr != nil {
		// The storage failure is the cause even when the guest then failed for it (with a
		// message of its own, kept).
		serr := o.storageFailure(db, ev.storageErr)
		if err == nil {
			err = serr
		} else {
			err = fmt.Errorf("%w (after: %v)", err, serr)
		}
	}
	if err != nil {
		o.evict()
		o.ws.rollback(ev.wsMark, &r.ws)
		ev.sock = nil
		if db.TxLost() {
			// SQLite ended the whole transaction by itself (invariant 7): the writes of every
			// event of the batch are gone, so every event fails.
			return fmt.Errorf("storage failed and SQLite rolled back the transaction of the whole batch of events (this one's and the others' writes are lost): %w", err)
		}
		if ev.savepoint {
			if rerr := db.RollbackTo("ev"); rerr != nil {
				return fmt.Errorf("rollback after %v: %w", err, rerr)
			}
		}
		ev.result = eventResult{err: &EventError{Class: o.class.name, Object: o.idHex, Err: err}}
		return nil
	}
	if ev.savepoint {
		// Explicit transactions the handler left open are savepoints inside "ev": releasing
		// "ev" keeps their writes too.
		if err := db.ReleaseSavepoint("ev"); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
	}
	resp := ev.resp
	if resp == nil {
		resp = &abi.Response{Status: 204}
	}
	if ev.sock != nil {
		resp = &abi.Response{Status: 101}
	}
	ev.result = eventResult{resp: resp, rpc: ev.rpcResult, sock: ev.sock}
	return nil
}

// storageFailure names the limit behind a failed write, if one was.
func (o *object) storageFailure(db *storage.DB, err error) error {
	if storage.IsFull(err) {
		if db.QuotaBound() {
			return fmt.Errorf("storage limit of all objects reached (max_storage_bytes %d; or the disk is full): %w", o.class.rt.cfg.MaxStorageBytes, err)
		}
		if limit := o.class.cur.Load().limits.StorageBytes; limit > 0 {
			return fmt.Errorf("object storage limit of %d bytes reached (or the disk is full): %w", limit, err)
		}
	}
	return fmt.Errorf("storage failed during the event: %w", err)
}

// dispatch makes sure an instance exists (running init inside this event's savepoint) and
// delivers the event to it.
func (o *object) dispatch(ev *event) error {
	if ev.kind == eventWSMessage && !o.wsSocketOpen(ev.sockID) {
		return nil // the socket ended or was closed after the message arrived: nothing to do
	}
	if o.inst != nil && o.inst.module != o.class.cur.Load() {
		o.evict() // the class was replaced: the object wakes on the new module
	}
	if o.inst == nil {
		in, err := o.newInstance(ev)
		if err != nil {
			return err
		}
		o.inst = in
	}
	in := o.inst
	switch ev.kind {
	case eventFetch:
		return in.callStaged(ev, in.fetch, "fetch", uint64(len(ev.req)))
	case eventRPC:
		if in.rpc == nil {
			return errors.New("the class exports no dowasm_rpc handler")
		}
		return in.callStaged(ev, in.rpc, "rpc", uint64(ev.methodLen), uint64(len(ev.req)-ev.methodLen))
	case eventAlarm:
		if in.alarm == nil {
			return errors.New("the class exports no dowasm_alarm handler")
		}
		isRetry := uint64(0)
		if ev.alarmRetry > 0 {
			isRetry = 1
		}
		return in.call(ev, in.alarm, "alarm", uint64(ev.alarmRetry), isRetry)
	case eventWSMessage, eventWSClose, eventWSError:
		return in.dispatchWS(ev)
	}
	return fmt.Errorf("unknown event kind %d", ev.kind)
}

// callStaged stages the event's payload (a request, or an RPC's method and argument) and calls
// the guest's handler for it.
func (in *instance) callStaged(ev *event, f api.Function, what string, args ...uint64) error {
	in.stage(ev.req)
	err := in.call(ev, f, what, args...)
	in.hasStaged = false
	if cap(in.staged) > 64<<10 {
		in.staged = nil // do not pin a large request or value in an idle instance
	}
	return err
}

// instance is one live WebAssembly instance of an object. It is used only by its object's loop.
type instance struct {
	obj   *object
	mod   api.Module
	init  api.Function
	fetch api.Function
	alarm api.Function // nil when the class has no alarm handler
	rpc   api.Function // nil when the class has no RPC handler
	// WebSocket handlers; nil when the class lacks them
	wsMessage, wsClose, wsError api.Function
	module                      *classModule // the class version this instance runs
	out                         *guestOutput // its stdout and stderr
	stack                       [4]uint64
	ctxVal                      context.Context

	ev        *event
	cache     valueCache
	staged    []byte
	hasStaged bool
	errMsg    string
	// memRefused: a memory.grow of this instance was refused by the runtime's memory budget
	memRefused bool
	mem        *mmapMemory // its linear memory (to free it if instantiation fails)
}

func (o *object) newInstance(ev *event) (*instance, error) {
	r := o.class.rt
	if n := r.liveInstances.Load(); n >= int64(r.cfg.MaxInstances) {
		if !r.idle.evictColdest() && r.cfg.HardInstanceLimit {
			return nil, fmt.Errorf("%w: live instance limit of %d reached (all %d instances are busy)", ErrOverloaded, r.cfg.MaxInstances, n)
		}
	}
	out := &guestOutput{log: r.log, class: o.class.name, object: o.idHex, obj: o}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithStdout(out).
		WithStderr(out).
		WithWalltime(r.walltime, sys.ClockResolution(time.Microsecond)).
		WithSysNanotime().
		WithRandSource(rand.Reader)
	cm := o.class.acquireModule()
	in := &instance{obj: o, module: cm, out: out}
	// The module's start function (its start section) runs inside InstantiateModule: attached to
	// the event like any guest call, so the event's deadline and CPU limit stop it (refill finds
	// the instance under startingKey; host functions are refused until the instance exists).
	in.ev, in.errMsg = ev, ""
	ev.cpu.resume()
	ctx := contextWithValues{Context: ev.ctx, vals: context.WithValue(context.Background(), startingKey{}, in)}
	mod, err := r.wz.InstantiateModule(experimental.WithMemoryAllocator(ctx, r.allocator(in)), cm.cm, cfg)
	ev.cpu.pause()
	in.ev = nil
	if err != nil {
		o.class.releaseModule(cm)
		if in.mem != nil {
			// wazero does not free the memory of a module whose instantiation failed (after its
			// memory was made: a failing start function, data out of bounds).
			in.mem.Free()
		}
		if lerr := in.limitFailure(ev, "start function"); lerr != nil {
			return nil, lerr
		}
		if in.memRefused {
			return nil, fmt.Errorf("instantiate: %s: %w", r.memory.refusal(), err)
		}
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	in.mod = mod
	in.init, in.fetch, in.alarm, in.rpc = mod.ExportedFunction("dowasm_init"), mod.ExportedFunction("dowasm_fetch"), mod.ExportedFunction("dowasm_alarm"), mod.ExportedFunction("dowasm_rpc")
	in.wsMessage, in.wsClose, in.wsError = mod.ExportedFunction("dowasm_ws_message"), mod.ExportedFunction("dowasm_ws_close"), mod.ExportedFunction("dowasm_ws_error")
	in.ctxVal = context.WithValue(context.Background(), instanceKey{}, in)
	r.instanceCreated(o.key)
	if f := mod.ExportedFunction("_initialize"); f != nil {
		if err := in.call(ev, f, "_initialize"); err != nil {
			in.close()
			return nil, err
		}
	}
	if err := in.call(ev, in.init, "init"); err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

// call runs one guest function for ev and turns a trap, a timeout or a non-zero result into an
// error naming what happened.
func (in *instance) call(ev *event, f api.Function, what string, args ...uint64) error {
	in.ev, in.errMsg, in.memRefused = ev, "", false
	in.out.takePanic() // (a panic line printed by an earlier call is not this call's)
	ev.cpu.resume()
	defer func() { ev.cpu.pause(); in.ev = nil }()
	stack := in.stack[:]
	copy(stack, args)
	ctx := contextWithValues{Context: ev.ctx, vals: in.ctxVal}
	if err := f.CallWithStack(ctx, stack); err != nil {
		return in.failure(ev, what, err)
	}
	if len(f.Definition().ResultTypes()) == 1 {
		if rc := int32(stack[0]); rc != 0 {
			msg := in.errMsg
			if msg == "" {
				msg = "(no message)"
			}
			return fmt.Errorf("%s returned error code %d: %s", what, rc, msg)
		}
	}
	return nil
}

// failure names why the guest call what of event ev failed with err: a limit, shutdown, or a
// trap (with the guest's own message when it gave one).
func (in *instance) failure(ev *event, what string, err error) error {
	if lerr := in.limitFailure(ev, what); lerr != nil {
		return lerr
	}
	if in.memRefused {
		// (the guest's own message, if any, is its out-of-memory panic)
		err = fmt.Errorf("%s: %w", in.obj.class.rt.memory.refusal(), err)
	}
	if in.errMsg != "" {
		// The guest reported why before it trapped (Rust's panic hook does: a panic aborts,
		// which is a trap on wasm32).
		return fmt.Errorf("%s trapped: %s: %w", what, in.errMsg, err)
	}
	if p := in.out.takePanic(); p != "" {
		// It printed why (TinyGo's runtime does, then traps).
		return fmt.Errorf("%s trapped: %s: %w", what, p, err)
	}
	return fmt.Errorf("%s trapped: %w", what, err)
}

// limitFailure is the error of a guest call what that was stopped by a limit of its event or by
// shutdown, or nil.
func (in *instance) limitFailure(ev *event, what string) error {
	dl, hasDL := ev.ctx.Deadline()
	switch {
	case ev.cpuExceeded:
		return fmt.Errorf("%s exceeded the CPU time limit of %s per event (used %s)", what, ev.cpuLimit, ev.cpu.total().Round(time.Microsecond))
	case errors.Is(ev.ctx.Err(), context.DeadlineExceeded) || (hasDL && !time.Now().Before(dl)):
		// (refill compares the clock with the deadline, so the context's own timer may not
		// have fired yet)
		return fmt.Errorf("%s exceeded the event time limit of %s", what, in.module.limits.EventTimeout)
	case ev.ctx.Err() != nil:
		return fmt.Errorf("%s cancelled: %w", what, ErrShuttingDown)
	}
	return nil
}

func (in *instance) close() {
	in.mod.Close(context.Background())
	in.obj.class.releaseModule(in.module)
	in.obj.class.rt.instanceDestroyed(in.obj.key)
}

// contextWithValues is the event's context (deadline, cancellation) with the instance's values,
// so host functions find their instance without allocating a new context per call.
type contextWithValues struct {
	context.Context
	vals context.Context
}

func (c contextWithValues) Value(key any) any {
	if v := c.vals.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

func (r *Runtime) instanceCreated(key string) {
	r.created.Add(1)
	r.liveInstances.Add(1)
	r.liveMu.Lock()
	r.liveIDs[key]++
	n := int64(r.liveIDs[key])
	r.liveMu.Unlock()
	for {
		m := r.maxLivePerID.Load()
		if n <= m || r.maxLivePerID.CompareAndSwap(m, n) {
			break
		}
	}
}

func (r *Runtime) instanceDestroyed(key string) {
	r.destroyed.Add(1)
	r.liveInstances.Add(-1)
	r.liveMu.Lock()
	if r.liveIDs[key]--; r.liveIDs[key] <= 0 {
		delete(r.liveIDs, key)
	}
	r.liveMu.Unlock()
}
