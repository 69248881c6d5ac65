// Package fuel rewrites a WebAssembly guest module at load time so that the
// host can stop it, however it loops or recurses, at a cost close to zero,
// and optionally bounds the depth of its calls.
//
// # Why
//
// Compiled guest code in wazero is not preemptible. Without help, a guest
// stuck in a loop keeps its goroutine forever, ignores Close from other
// goroutines, and the next runtime.GC() waits for it: one runaway guest
// freezes the whole process. wazero's WithCloseOnContextDone fixes loops only
// (it checks at loop headers, never at calls, so a loop-free recursive call
// tree such as a naive fib(60) runs on) and costs 5-31x on loop-heavy code.
//
// # Scheme
//
// [Instrument] adds to the module:
//
//   - one imported function, module [ImportModule] name [RefillName], type
//     () -> i64. Guests may not import anything from [ImportModule] themselves.
//   - one private mutable i64 global, the fuel, initially 0, appended after
//     every existing global and never exported.
//   - in every function that contains a loop, one scratch i32 local, appended
//     after every existing local.
//
// and injects two kinds of checks:
//
//   - at each loop header (the first instruction of a loop body, run on every
//     iteration) the scratch local is tested and decremented. Whenever its
//     low 8 bits are zero, 256 is subtracted from the fuel: once per 256
//     iterations, and also on the first iteration in each call of the
//     function, since the local starts at 0. Paying for a block of
//     iterations before running it keeps short loops in frequently called
//     functions from running for free.
//   - at the entry of every function that contains a call, call_indirect,
//     return_call or return_call_indirect, 1 is subtracted from the fuel
//     (257 if the function also loops: it prepays its first block of loop
//     iterations there, and starts its counter at -1).
//
// Whenever a subtraction leaves the fuel negative the injected code runs
// "global.set $fuel (call $refill)". The host's refill function decides: it
// returns the new fuel (say 100_000 to 1_000_000 units, each roughly a loop
// iteration or a call) or aborts the call by panicking, which wazero turns
// into an error for the caller. Refill receives the context of the guest
// call, so it can compare time.Now() with that call's deadline. Because the
// fuel starts at 0, the first check of a fresh instance calls refill at
// once. Fuel left over from one guest call carries into the next.
//
// Every unbounded execution passes a check at least once per 256 loop
// iterations or once per call, so the time between two refill calls is
// bounded by the fuel granted times the cost of the largest loop body or
// call-free function. Returning to Go for refill is also where the Go
// scheduler and garbage collector get the goroutine back.
//
// The hot path of a loop is a test, a branch and a decrement on a local
// that wazero's compiler keeps in a register. The slow path, after it has
// charged the fuel, branches back to the loop header rather than falling
// into the loop body (see appendLoopCheck for why). The entry check costs a
// load, a store and a branch per call, in calling functions only; leaf
// functions without loops run untouched. Measured on wazero's compiler the
// overhead is 1.1-1.25x on compute-heavy guests (see BenchmarkFuel), against
// 3-15x for WithCloseOnContextDone.
//
// # Call depth
//
// wazero keeps a guest's call stack on the Go heap and doubles it, up to a
// ceiling of its own (about 50 MB), before it traps; a live instance keeps
// the grown stack. With [Options].MaxCallDepth Instrument bounds the depth
// of calls instead. Only functions that contain a call, call_indirect,
// return_call or return_call_indirect (the calling functions above) can
// deepen the stack by more than their own frame, so only they count. It
// adds:
//
//   - a second imported function, module [ImportModule] name [TooDeepName],
//     type () -> (), right after the refill function.
//   - a second private mutable i64 global, the depth counter, right after
//     the fuel, initially MaxCallDepth: the calling frames that remain.
//
// A calling function subtracts 1 from the counter at entry, after the fuel
// check, and calls too_deep if that leaves it negative: the call would be
// the MaxCallDepth+1st calling frame. The host must abort the guest call by
// panicking in too_deep; if it returns, an unreachable instruction traps.
// The function's original body is wrapped in a block whose type is the
// function's results (empty, one value type, or for several results a type
// without parameters: an existing one with the same results, or one
// appended to the type section), so every branch that left the function
// now leaves the block, no label needs renumbering, and after the block 1
// is added back to the counter before the function's end. 1 is also added
// back just before every return, return_call and return_call_indirect; a
// tail call's callee subtracts it again, so tail calls do not count up. A
// trap does not add back the frames it unwinds: after a trap the counter
// is too low, and the host must discard the instance (dowasm does after any
// failed guest call), or call it knowing it may fail early.
//
// The cost is a load, a subtraction, a store and a branch at entry and a
// load, an addition and a store at exit, in calling functions only: on the
// compute guests 1.0-1.1x the fuel-only time (recursive fib 1.04x, matmul
// with SIMD 1.1x; see BenchmarkFuel). Separate tests of the fuel and the
// counter measured faster than one test of their or.
//
// The limit counts frames, not bytes: a frame's host memory depends on the
// function's locals and operand stack, so wazero's own ceiling remains the
// last bound for guests with very large frames.
//
// Single instructions whose work depends on their operands are not metered:
// bound memory.grow, memory.fill and memory.copy with wazero's
// WithMemoryLimitPages, and table.grow, table.fill and table.copy with
// [Options].MaxTableElems. memory.atomic.wait (threads) can block until its
// timeout.
//
// # Index shifts
//
// Function imports come first in the function index space, so the added
// import takes index F (the number of imported functions) and every defined
// function moves up by one; with MaxCallDepth the too_deep import takes
// index F+1 and defined functions move up by two. Instrument rewrites every
// function index: call,
// return_call and ref.func in code, ref.func in global initializers and
// element segments (all eight segment forms), the export and start sections,
// and the function, local and label names of the "name" custom section.
// The added types, globals and local are appended, so no other index moves.
// DWARF (".debug_*") and "sourceMappingURL" custom sections are dropped
// because code offsets change; every other section is copied verbatim.
//
// # Validation
//
// Instrument is a rewriter, not a validator: callers should validate the
// original module (for example with wazero's Runtime.CompileModule) before
// trusting it. Instrument does not depend on that for its own guarantees,
// however: it rejects any instruction or export that names a function,
// global or local at or beyond the original counts, so an invalid guest
// cannot reach the injected functions, globals or scratch local.
// Instruction decoding follows wazero's (for example, SIMD and atomic
// sub-opcodes are single bytes) so that both see the same instructions.
//
// Supported is the instruction set wazero v1 enables by default (WebAssembly
// 2.0: MVP, sign extension, non-trapping float-to-int, bulk memory,
// reference types, multi-value, SIMD) plus the experimental threads
// (atomics), tail-call and extended-const features. Exception handling and
// typed function references are rejected with [ErrUnsupported].
package fuel

import (
	"bytes"
	"errors"
	"fmt"
)

const (
	// ImportModule is the import module of the refill function. It is
	// reserved: Instrument rejects guests that import from it.
	ImportModule = "dowasm_fuel"
	// RefillName is the name of the refill function, of type () -> i64.
	RefillName = "refill"
	// TooDeepName is the name of the function, of type () -> (), that the
	// guest calls when a call would exceed [Options].MaxCallDepth. The host
	// must abort the guest call by panicking (if it returns, the guest traps
	// at an unreachable instruction instead).
	TooDeepName = "too_deep"
)

// Tuning of the injected checks. loopWeight is what 256 iterations of any
// loop cost; callWeight what one call to a function that calls costs.
const (
	loopMask   = 0xff // check the fuel when (counter & loopMask) == 0
	loopWeight = loopMask + 1
	callWeight = 1
)

// maxLocals bounds the locals (parameters included) of one function. wazero
// allocates per declared local, so a few bytes declaring 2^32 locals must
// not reach it; real compilers stay far below this.
const maxLocals = 1 << 16

// Options configures Instrument.
type Options struct {
	// MaxTableElems, when not 0, bounds every table: a defined table with no
	// maximum size, or a larger one, gets MaxTableElems as its maximum (Go and
	// TinyGo declare tables without one); a defined table whose minimum is
	// above it, and an imported table without a maximum within it, are
	// refused. wazero enforces a table's maximum on table.grow, but puts no
	// bound of its own on tables, so this bounds the memory a guest can take
	// with tables.
	MaxTableElems uint32
	// MaxMemoryPages, when not 0, bounds the module's own memory the same way:
	// a memory with no maximum, or a larger one, gets MaxMemoryPages (64 KiB
	// pages) as its maximum, so memory.grow fails past it; a minimum above it
	// is refused. (A runtime-wide cap such as wazero's WithMemoryLimitPages
	// still applies on top; this one can differ per module.)
	MaxMemoryPages uint32
	// MaxCallDepth, when not 0, bounds the depth of guest calls: a call
	// that would make more than MaxCallDepth calling functions (functions
	// that contain a call, see the package documentation) active at once
	// calls [ImportModule].[TooDeepName] instead of running. Tail calls do
	// not count up; a trap does not give back the frames it unwinds (the
	// host discards the instance). wazero keeps a
	// guest's call stack on the Go heap and grows it up to its own ceiling
	// (about 50 MB per call) before it traps, so without a bound each
	// recursing guest costs the host that much memory. With 0 the module
	// neither imports TooDeepName nor counts calls.
	MaxCallDepth uint32
}

// Errors returned by Instrument wrap one of these; test with errors.Is.
var (
	// ErrMalformed means the module is not valid WebAssembly.
	ErrMalformed = errors.New("malformed module")
	// ErrUnsupported means the module uses a feature Instrument does not
	// handle (for example exception handling).
	ErrUnsupported = errors.New("unsupported feature")
	// ErrReservedImport means the module imports from ImportModule (the
	// refill or too_deep function, or anything else).
	ErrReservedImport = errors.New("reserved import module")
	// ErrTableLimit means a table has no maximum or one above
	// Options.MaxTableElems.
	ErrTableLimit = errors.New("table exceeds limit")
	// ErrMemoryLimit means a memory's minimum size is above
	// Options.MaxMemoryPages.
	ErrMemoryLimit = errors.New("memory exceeds limit")
)

// Error describes why a module cannot be instrumented and where.
type Error struct {
	Kind    error  // ErrMalformed, ErrUnsupported, ErrReservedImport, ErrTableLimit or ErrMemoryLimit
	Section string // section name ("import", "code", ...); empty for the header
	Func    int    // function index in the original module, or -1
	Offset  int    // byte offset in the original module
	Reason  string
}

func (e *Error) Error() string {
	var b bytes.Buffer
	b.WriteString("fuel: ")
	if e.Section != "" {
		fmt.Fprintf(&b, "%s section: ", e.Section)
	}
	if e.Func >= 0 {
		fmt.Fprintf(&b, "function %d: ", e.Func)
	}
	fmt.Fprintf(&b, "offset %#x: %s", e.Offset, e.Reason)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Kind }

func malformedf(off int, format string, args ...any) *Error {
	return &Error{Kind: ErrMalformed, Func: -1, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

func unsupportedf(off int, format string, args ...any) *Error {
	return &Error{Kind: ErrUnsupported, Func: -1, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory",
	"global", "export", "start", "element", "code", "data", "data count"}

// sectionRank is the position a known section must take in a module; the
// data count section sits between element and code.
func sectionRank(id byte) int {
	switch {
	case id == secDataCount:
		return secElement + 1
	case id >= secCode:
		return int(id) + 1
	}
	return int(id)
}

var header = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Instrument returns a copy of the WebAssembly binary wasm with fuel metering
// added as described in the package documentation. It never modifies wasm.
//
// The returned module imports [ImportModule].[RefillName]; the host must
// provide it, for example with wazero:
//
//	rt.NewHostModuleBuilder(fuel.ImportModule).
//		NewFunctionBuilder().
//		WithFunc(func(ctx context.Context) int64 {
//			if time.Now().After(deadlineOf(ctx)) {
//				panic(errDeadline) // aborts the guest call
//			}
//			return 1_000_000
//		}).
//		Export(fuel.RefillName).
//		NewFunctionBuilder().
//		WithFunc(func(context.Context) { panic(errTooDeep) }).
//		Export(fuel.TooDeepName). // needed with Options.MaxCallDepth only
//		Instantiate(ctx)
//
// Errors are of type *[Error].
func Instrument(wasm []byte, opts Options) ([]byte, error) {
	m := &module{in: wasm, opts: opts, shift: 1}
	if m.depthLimit() {
		m.shift = 2
	}
	out, err := m.instrument()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// module holds what Instrument learns about the module as it walks the
// sections in order; every section only needs facts from earlier ones.
type module struct {
	in   []byte
	opts Options

	typeParams []uint32 // parameter count of each type
	// blockTypes is, with MaxCallDepth, the block type (an s33) of a block
	// without parameters whose results are those of each type.
	blockTypes  []int64
	funcImports uint32
	funcTypes   []uint32 // type index of each defined function
	globals     uint32   // imported + defined globals
	tables      uint32   // imported + defined tables

	// Indices of what Instrument adds. shift is the number of function
	// imports it adds, and also of globals: 1, or 2 with MaxCallDepth.
	refillType, refillFunc, fuelGlobal    uint32
	tooDeepType, tooDeepFunc, depthGlobal uint32
	shift                                 uint32

	// Synthesized sections already written.
	wroteType, wroteImport, wroteGlobal bool
	codeSeen                            bool

	scratch []byte // reused function body buffer
	rets    []int  // reused: offsets in a body's output of its returns
	restore []byte // with MaxCallDepth: the code that pops a frame
}

// depthLimit reports whether Instrument bounds the call depth.
func (m *module) depthLimit() bool { return m.opts.MaxCallDepth > 0 }

// numFuncs is the number of functions in the original module.
func (m *module) numFuncs() uint32 { return m.funcImports + uint32(len(m.funcTypes)) }

// remapFunc maps a function index of the original module to the output.
func (m *module) remapFunc(idx uint32) uint32 {
	if idx < m.funcImports {
		return idx
	}
	return idx + m.shift
}

func (m *module) instrument() ([]byte, error) {
	if len(m.in) < len(header) || !bytes.Equal(m.in[:4], header[:4]) {
		return nil, malformedf(0, "not a WebAssembly binary (bad magic)")
	}
	if !bytes.Equal(m.in[4:8], header[4:]) {
		return nil, unsupportedf(4, "unsupported binary version % x", m.in[4:8])
	}
	// Output grows by the import, global and a few dozen bytes per loop and
	// calling function; start with a little headroom.
	out := make([]byte, 0, len(m.in)+len(m.in)/8+64)
	out = append(out, header...)

	r := newReader(m.in[len(header):], len(header))
	lastRank := 0
	for !r.eof() {
		secOff := r.off()
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		payloadOff := r.off()
		payload, err := r.bytes(int(size))
		if err != nil {
			return nil, malformedf(secOff, "section %d of %d bytes runs past the end of the module", id, size)
		}
		if id > secDataCount {
			return nil, unsupportedf(secOff, "unknown section id %d", id)
		}
		name := sectionNames[id]
		if id != secCustom {
			rank := sectionRank(id)
			if rank <= lastRank {
				return nil, malformedf(secOff, "%s section out of order or repeated", name)
			}
			lastRank = rank
			out = m.synthesizeBefore(out, rank)
		}
		pr := newReader(payload, payloadOff)
		var newPayload []byte
		keep := true
		var e *Error
		switch id {
		case secCustom:
			newPayload, keep, e = m.custom(pr)
		case secType:
			newPayload, e = m.typeSection(pr)
			m.wroteType = true
		case secImport:
			newPayload, e = m.importSection(pr)
			m.wroteImport = true
		case secFunction:
			e = m.functionSection(pr)
			newPayload = payload
		case secTable:
			newPayload, e = m.tableSection(pr)
		case secGlobal:
			newPayload, e = m.globalSection(pr)
			m.wroteGlobal = true
		case secExport:
			newPayload, e = m.exportSection(pr)
		case secStart:
			newPayload, e = m.startSection(pr)
		case secElement:
			newPayload, e = m.elementSection(pr)
		case secCode:
			newPayload, e = m.codeSection(pr)
			m.codeSeen = true
		case secMemory:
			newPayload, e = m.memorySection(pr)
		case secData:
			// No indices to move, but a count far beyond what the bytes can
			// hold makes wazero allocate for it (20 bytes claiming 10^8
			// segments cost gigabytes) before it finds the section short.
			// A segment takes at least 2 bytes (passive, empty).
			_, e = pr.count(2)
			newPayload = payload
		default: // data count: no indices we move
			newPayload = payload
		}
		if e != nil {
			if e.Section == "" {
				e.Section = name
			}
			return nil, e
		}
		if keep {
			out = appendSection(out, id, newPayload)
		}
	}
	out = m.synthesizeBefore(out, 1<<30)
	if !m.codeSeen && len(m.funcTypes) > 0 {
		return nil, &Error{Kind: ErrMalformed, Section: "code", Func: -1, Offset: len(m.in),
			Reason: fmt.Sprintf("function section declares %d functions but there is no code section", len(m.funcTypes))}
	}
	return out, nil
}

// synthesizeBefore writes the type, import and global sections Instrument
// needs if the module has none, just before the first section of a higher
// rank (or at the end). A nil reader stands for an absent section.
func (m *module) synthesizeBefore(out []byte, rank int) []byte {
	if rank > secType && !m.wroteType {
		m.wroteType = true
		p, _ := m.typeSection(nil)
		out = appendSection(out, secType, p)
	}
	if rank > secImport && !m.wroteImport {
		m.wroteImport = true
		p, _ := m.importSection(nil)
		out = appendSection(out, secImport, p)
	}
	if rank > secGlobal && !m.wroteGlobal {
		m.wroteGlobal = true
		p, _ := m.globalSection(nil)
		out = appendSection(out, secGlobal, p)
	}
	return out
}
