// Package dowasm is the Go guest SDK for dowasm: write a Durable Object class as a Go type,
// compile it to WebAssembly (standard Go with GOOS=wasip1 -buildmode=c-shared, or TinyGo), and
// dowasm serves one instance per object ID, one event at a time, with transactional storage.
//
//	type Counter struct{ obj *dowasm.Object }
//
//	func (c *Counter) Fetch(req *dowasm.Request) (*dowasm.Response, error) { ... }
//
//	func init() { dowasm.Register(func(obj *dowasm.Object) (dowasm.Class, error) { return &Counter{obj}, nil }) }
//	func main() {}
//
// The SDK implements ABI v1 (abi/ABI.md in the dowasm repository).
package dowasm

import "strconv"

// Class is an object class. Fetch handles one HTTP request; returning an error fails the event:
// its storage writes are rolled back, the client gets a 500 with the error's message, and the
// next event gets a fresh instance (the factory runs again).
type Class interface {
	Fetch(req *Request) (*Response, error)
}

// Factory builds an object's in-memory state. It runs once per instance, before the first
// event (when the object is created or wakes after eviction), inside that event's transaction,
// so it can read storage to rebuild state.
type Factory func(obj *Object) (Class, error)

// Object is the running object: its identity, storage and log.
type Object struct {
	storage Storage
}

// ID returns the object's ID as 64 lowercase hex characters.
func (o *Object) ID() string {
	n, err := check("object_id", host.objectID())
	if err != nil {
		return ""
	}
	return string(readStaged(n))
}

// Name returns the name the object's ID was derived from, if it has one.
func (o *Object) Name() (string, bool) {
	n := host.objectName()
	if n < 0 {
		return "", false
	}
	return string(readStaged(n)), true
}

// Storage is the object's private, transactional key-value storage.
func (o *Object) Storage() *Storage { return &o.storage }

// Log levels.
const (
	LevelDebug = 0
	LevelInfo  = 1
	LevelWarn  = 2
	LevelError = 3
)

// Log writes a line to the host's structured log, tagged with the class and object.
func (o *Object) Log(level int, msg string) { host.log(int32(level), []byte(msg)) }

// guest is the state of this WebAssembly instance: one object.
type guest struct {
	factory Factory
	obj     Object
	class   Class
	events  uint32
	out     []byte // reused response encoding buffer
}

var g guest

// Register sets the class's factory. Call it from an init function of package main.
func Register(f Factory) { g.factory = f }

// readStaged copies the host's staged result of n bytes into a new slice.
func readStaged(n int32) []byte {
	b := make([]byte, n)
	if n > 0 {
		host.resultRead(b)
	}
	return b
}

func setError(msg string) int32 {
	host.errorSet([]byte(msg))
	return 1
}

func runInit() int32 {
	if g.factory == nil {
		return setError("no class registered: call dowasm.Register in an init function")
	}
	c, err := g.factory(&g.obj)
	if err != nil {
		return setError("init: " + err.Error())
	}
	if c == nil {
		return setError("init: the factory returned a nil class")
	}
	g.class = c
	return 0
}

func runFetch(reqLen int32) (rc int32) {
	defer func() {
		g.events++
		maybeGC(g.events)
	}()
	req, ok := decodeRequest(readStaged(reqLen))
	if !ok {
		return setError("malformed request from host (" + strconv.Itoa(int(reqLen)) + " bytes)")
	}
	resp, err := g.class.Fetch(req)
	if err != nil {
		return setError(err.Error())
	}
	if resp == nil {
		return 0 // 204 No Content
	}
	g.out = resp.encode(g.out[:0])
	if rc := host.responseSet(g.out); rc < 0 {
		return setError("invalid response: " + Status(-rc).String())
	}
	if cap(g.out) > 64<<10 {
		g.out = nil // do not pin a large body between events
	}
	return 0
}
