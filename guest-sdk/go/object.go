// Package dowasm is the Go guest SDK for dowasm, a runtime for Durable Objects whose classes are
// WebAssembly modules. Write a class as a Go type with a Fetch method, register its constructor
// from an init function, and compile the package with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o class.wasm .
//
// dowasm then runs one instance per object ID, delivers its events one at a time, and gives it
// private transactional storage:
//
//	type Counter struct{ store *dowasm.Storage }
//
//	func (c *Counter) Fetch(req *dowasm.Request) (*dowasm.Response, error) { ... }
//
//	func init() {
//		dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) {
//			return &Counter{store: obj.Storage()}, nil
//		})
//	}
//
//	func main() {}
//
// A class that also implements Alarmer can schedule its own wake-ups: Storage.SetAlarm sets
// the object's alarm, and the host calls Alarm at or after that time, even when the object has no
// other events.
//
// Objects can call each other: Object.Stub (or StubByID) names another object, Stub.Fetch sends it
// an HTTP request and Stub.Call an RPC, which a class answers by implementing RPCer. The caller
// waits; the callee runs the call as its own event with its own transaction.
//
// The SDK implements guest ABI v1 (abi/ABI.md in the dowasm repository) and exports the guest
// functions itself. It uses no reflection, goroutines, encoding/json or net/http, so TinyGo can
// compile it too.
package dowasm

import "strconv"

// ABIVersion is the guest ABI version this SDK implements (it exports dowasm_abi_v1).
const ABIVersion = 1

// Class is an object class. Fetch handles one HTTP request; events are delivered one at a time,
// so Fetch never runs concurrently with itself.
//
// Returning a nil error with a nil *Response answers 204 No Content. Returning an error fails
// the event: its storage writes are rolled back, the client gets a 500 naming the error, and the
// instance is discarded (the next event runs the constructor again on a fresh instance). A panic
// is treated like an error.
type Class interface {
	Fetch(req *Request) (*Response, error)
}

// Alarmer is implemented by a class that handles alarms. Storage.SetAlarm sets the object's one
// alarm; at or after that time the host delivers an alarm event, which calls Alarm: an event like
// a fetch, serialized with the object's other events, run in its own transaction and committed
// before the host considers the alarm delivered. A class without an Alarm method cannot set
// alarms (SetAlarm fails with ErrNotAllowed).
//
// Returning nil completes the alarm. Returning an error (or panicking) fails the attempt: its
// writes are rolled back, the instance is discarded, and the host retries after 2 s, 4 s, 8 s, ...
// (with jitter), at most 6 times, then drops the alarm and logs an error. Delivery is at least
// once, so make Alarm safe to run again for the same alarm.
type Alarmer interface {
	Alarm(info AlarmInfo) error
}

// AlarmInfo describes an alarm delivery.
type AlarmInfo struct {
	RetryCount int  // 0 on the first attempt, then 1, 2, ... on the retries after failed attempts
	IsRetry    bool // RetryCount > 0: an earlier attempt of this alarm failed
}

// Now returns the wall clock in milliseconds since the Unix epoch, the unit of alarm times: the
// same time as time.Now().UnixMilli(), the WASI realtime clock, which the host serves from its own
// clock (the one its alarms follow). Read it in every event that needs it rather than keeping it
// across events. It returns 0 if the host refuses the clock. (Now reads the WASI clock directly:
// importing package time would add ~250 KB to a standard-Go module that does not otherwise use
// it.)
func Now() int64 { return host.nowNanos() / 1e6 }

// Constructor builds an instance's in-memory state. It runs once per instance, before the
// instance's first event (when the object is first used, or wakes after eviction or a failure),
// inside that event's transaction, so it can read storage to rebuild state. An error (or a
// panic) fails that event.
type Constructor func(obj *Object) (Class, error)

// Object is the running object: its identity, its storage and its log. There is one per
// instance; keep the pointer.
type Object struct {
	storage Storage
	id      string
}

// ID returns the object's ID as 64 lowercase hex characters.
func (o *Object) ID() string {
	if o.id == "" {
		if n, err := check("object_id", host.objectID()); err == nil {
			if b, err := readStaged("object_id", n); err == nil {
				o.id = string(b)
			}
		}
	}
	return o.id
}

// Name returns the name the object's ID was derived from (the <name> of /<class>/<name>/...),
// and false for an ID that was not derived from a name (a unique ID).
func (o *Object) Name() (string, bool) {
	n, err := check("object_name", host.objectName())
	if err != nil {
		return "", false
	}
	b, err := readStaged("object_name", n)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// Storage returns the object's private, transactional key-value storage.
func (o *Object) Storage() *Storage { return &o.storage }

// Level is a log level.
type Level int32

const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log writes one line (at most 16 KiB; the host truncates longer lines) to the host's structured
// log, tagged with the class and the object's ID. Anything a class writes to stdout or stderr
// also ends up in the log.
func (o *Object) Log(level Level, msg string) { host.log(int32(level), msg) }

// Logf is Log with a printf-style format. It implements the common verbs itself (package fmt
// would add ~0.4 MB to every module): %v %s %d %t print a value, %q quotes it, %x prints
// integers, strings and byte slices in hex, %% is a percent sign. Flags, widths and precisions
// are not supported. Values print as with fmt when they are strings, byte slices, integers,
// floats, booleans, errors or Stringers; other values print as "?".
func (o *Object) Logf(level Level, format string, args ...any) {
	host.log(int32(level), string(appendf(nil, format, args)))
}

// instance is the state of this WebAssembly instance: it serves exactly one object.
type instance struct {
	construct Constructor
	obj       Object
	class     Class
	out       []byte // response encoding, reused between events

	// While the constructor runs the class does not exist yet, so SetAlarm cannot tell whether it
	// implements Alarmer: it notes the call, and runInit checks the class it gets.
	constructing        bool
	alarmSetInConstruct bool
}

var inst instance

// Register sets the class's constructor. Call it once, from an init function of package main
// (package initialisation runs in the module's _initialize, before dowasm_init).
func Register(c Constructor) { inst.construct = c }

// readStaged copies the host's staged result (n bytes) into a new slice.
func readStaged(op string, n int32) ([]byte, error) {
	b := make([]byte, n)
	noteAlloc(int(n))
	if n == 0 {
		return b, nil
	}
	got := host.resultRead(b)
	if got != n {
		if got < 0 {
			return nil, &Error{Op: op + " (result_read)", Status: Status(-got)}
		}
		return nil, &Error{Op: op + " (result_read short)", Status: StatusInvalidArgument}
	}
	return b, nil
}

// fail reports msg as the reason the current handler failed and returns the failing result.
func fail(msg string) int32 {
	if msg == "" {
		msg = "error with an empty message"
	}
	host.errorSet(msg)
	return 1
}

func runInit() (rc int32) {
	defer func() {
		inst.constructing = false
		if r := recover(); r != nil {
			rc = fail("constructor panicked: " + panicMessage(r))
		}
	}()
	if inst.construct == nil {
		return fail("no class registered: call dowasm.Register from an init function of package main")
	}
	inst.constructing, inst.alarmSetInConstruct = true, false
	c, err := inst.construct(&inst.obj)
	inst.constructing = false // (also in the deferred function, for a panic)
	if err != nil {
		return fail("constructor: " + err.Error())
	}
	if c == nil {
		return fail("constructor returned a nil Class")
	}
	if _, ok := c.(Alarmer); inst.alarmSetInConstruct && !ok {
		return fail("constructor: " + errNoAlarmMethod.Error())
	}
	inst.class = c
	afterEvent()
	return 0
}

func runFetch(reqLen int32) int32 {
	rc := fetch(reqLen)
	if rc == 0 {
		afterEvent() // after a failure the host discards the instance: no point collecting
	}
	return rc
}

func fetch(reqLen int32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = fail("panic: " + panicMessage(r))
		}
	}()
	if inst.class == nil {
		return fail("dowasm_fetch before a successful dowasm_init")
	}
	b, err := readStaged("request", reqLen)
	if err != nil {
		return fail(err.Error())
	}
	req, ok := decodeRequest(b)
	if !ok {
		return fail("malformed request encoding from the host (" + strconv.Itoa(int(reqLen)) + " bytes)")
	}
	resp, err := inst.class.Fetch(req)
	if err != nil {
		return fail(err.Error())
	}
	if resp == nil {
		return 0 // the host answers 204 No Content
	}
	if msg := resp.check(); msg != "" {
		return fail("invalid response: " + msg)
	}
	inst.out = resp.encode(inst.out[:0])
	noteAlloc(len(resp.Body))
	if rc := host.responseSet(inst.out); rc < 0 {
		return fail("response_set: " + Status(-rc).String())
	}
	if cap(inst.out) > 64<<10 {
		inst.out = nil // do not keep a large body's buffer between events
	}
	return 0
}

func runAlarm(retryCount, isRetry int32) int32 {
	rc := alarm(retryCount, isRetry)
	if rc == 0 {
		afterEvent()
	}
	return rc
}

func alarm(retryCount, isRetry int32) (rc int32) {
	defer func() {
		if r := recover(); r != nil {
			rc = fail("panic: " + panicMessage(r))
		}
	}()
	if inst.class == nil {
		return fail("dowasm_alarm before a successful dowasm_init")
	}
	a, ok := inst.class.(Alarmer)
	if !ok {
		return fail("dowasm_alarm: the class has no Alarm method (implement dowasm.Alarmer to handle alarms)")
	}
	if err := a.Alarm(AlarmInfo{RetryCount: int(retryCount), IsRetry: isRetry != 0}); err != nil {
		return fail(err.Error())
	}
	return 0
}

// panicMessage describes a recovered panic value and where it happened.
func panicMessage(r any) string {
	var msg string
	switch v := r.(type) {
	case error:
		msg = v.Error()
	case string:
		msg = v
	case interface{ String() string }:
		msg = v.String()
	default:
		msg = string(appendAny(nil, v))
		if msg == "?" {
			msg = "a value that is not an error, a string or a Stringer"
		}
	}
	if where := panicLocation(); where != "" {
		msg += " [" + where + "]"
	}
	return msg
}
