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
//   - one defined function, $buy, of type (i32 i32) -> i32, appended after
//     every other function, which takes credit from the fuel for a counter.
//   - in every function with checks, two i32 locals, appended after every
//     existing local: the counter $n and the weight $w.
//
// The unit of cost is one instruction (block, loop, else, end and nop
// compile to nothing and are free). Charging each instruction as it runs
// would cost too much; instead Instrument follows the cost of every path
// through a function's code and charges it at a few points:
//
//   - at each loop header (the first instruction of a loop body, run on
//     every iteration), the cost of the path that led there: the path into
//     the loop, or the iteration that branched back. Each branch back to a
//     loop knows the cost of its path. If they are all about the same, the
//     check charges the most of them, a constant (and a check before the
//     loop what the path into it costs beyond that); otherwise each branch
//     back sets $w to its cost before it branches and the check charges
//     $w, so that in a dispatch loop (a br_table at the loop header picking
//     one of many blocks: every function Go's compiler emits is one) an
//     iteration pays for the block it ran, not for the largest.
//   - wherever a path without loop headers would otherwise cost more than
//     256 units, a check charges what it has cost: a large function without
//     loops pays by the code it runs.
//   - at the entry of every function that contains a call, call_indirect,
//     return_call or return_call_indirect (a calling function), the most
//     that a path from its last check to a return can cost (at most 257
//     units). A function that calls nothing (a leaf) leaves that to its
//     callers: a call adds it to the caller's cost, and a call_indirect the
//     most that any leaf the module can put in a table leaves. A prescan of
//     the code section learns which functions call and what the others
//     leave, before the calls to them are rewritten.
//
// So no path runs more than about 260 units between two charges, whatever
// the guest's shape: between two refill calls a guest runs at most about as
// many instructions as the fuel granted (see below for the credit frames
// hold). One unit is about a nanosecond or less of compute (0.15 ns to 2 ns
// on tight code; code that waits for memory is slower per unit).
//
// A check charges the counter $n, which lives in a register: a comparison,
// a branch and a subtraction. $n holds credit already taken from the fuel:
// 256 units at the entry of every function with checks (with the entry
// check of a calling function), and, whenever a check finds it short, a
// block: 512 units, each block of one activation twice the one before, up
// to 64 Ki units, so that a long loop rarely stops to take one and a short
// activation takes little. The slow path of a loop header check then
// branches back to the loop header rather than falling into the loop body
// (see appendLoopCheck for why).
//
// Taking credit subtracts it from the fuel. Whenever that leaves the fuel
// negative the injected code runs "global.set $fuel (call $refill)". The
// host's refill function decides: it returns the new fuel (say 100_000 to
// 1_000_000 units) or aborts the call by panicking, which wazero turns into
// an error for the caller. Refill receives the context of the guest call,
// so it can compare time.Now() with that call's deadline. Because the fuel
// starts at 0, the first charge of a fresh instance calls refill at once.
// Fuel left over from one guest call carries into the next. Returning to Go
// for refill is also where the Go scheduler and garbage collector get the
// goroutine back.
//
// Credit a frame holds while it calls deeper is spent without touching the
// fuel when the callee returns, possibly after the deadline. In functions
// that call functions that may call others (the only ones a long call chain
// is made of), blocks grow to 4 Ki units only; leaves and the functions that
// only call leaves are the last two frames of any chain. So a chain of N
// frames holds at most about N times 4.6 Ki units: with a call depth limit
// of 10,000 frames a contrived guest could run some tens of milliseconds
// past its deadline; real code stops within a grant of fuel, about a
// millisecond.
//
// Measured on wazero's compiler the overhead is 1.05-1.25x on compute-heavy
// guests (1.05-1.3x with the call depth limit; see BenchmarkFuel), as it
// was when loops paid one unit an iteration and calls one unit, against
// 3-15x for WithCloseOnContextDone.
//
// # ref.func
//
// In wazero every ref.func executed allocates a function instance that the
// module instance keeps as long as it lives: ten million executions held
// 310 MiB. Instrument replaces each ref.func $f in code with global.get of
// a global it adds, (global funcref (ref.func $f)), one per function so
// named, appended after the fuel (and depth) globals; wazero evaluates its
// initializer once per instance. These globals count against
// [Options].MaxGlobals.
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
// function index: call and return_call in code, ref.func in global
// initializers and element segments (all eight segment forms), the export
// and start sections, and the function, local and label names of the
// "name" custom section. The added types, function ($buy), globals and
// locals are appended, so no other index moves.
// DWARF (".debug_*") and "sourceMappingURL" custom sections are dropped
// because code offsets change; every other section is copied verbatim.
//
// # Limits
//
// Instrument also bounds what a module declares and the host pays for in
// memory per module or per instance, far beyond the bytes that declare it:
// the elements of all tables together, and the number of tables, types,
// imports, functions, globals, exports, element and data segments, their
// entries and bytes, the locals of a function and the size of its body
// ([Options], with defaults). It checks each declared number before it
// allocates anything in proportion to it.
//
// # Validation
//
// Instrument is a rewriter, not a validator: callers should validate the
// original module (for example with wazero's Runtime.CompileModule) before
// trusting it. Instrument does not depend on that for its own guarantees,
// however: it rejects any instruction or export that names a function,
// global or local at or beyond the original counts, so an invalid guest
// cannot reach the injected functions, globals or locals.
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

// Default limits, used for the Options fields left at 0. Each bounds
// something whose size the module declares and that costs the host memory
// or time per module (when wazero compiles it) or per instance (every time
// it is instantiated), far beyond what the bytes declaring it cost: a few
// bytes can declare a large table, thousands of globals or tens of
// thousands of locals. They leave wide headroom over real guests: the
// standard Go guests in build/guests (about 2 MB) have one table of about
// 6,000 elements, 8 globals, up to 2,000 functions and 34 imports, 13 types,
// 33,000 data segments (Go's linker emits at most 100,000) holding 800 KB,
// one element segment, at most 17 locals and function bodies of up to
// 29 KB; TinyGo and Rust guests have fewer of each except types (up to 39)
// and locals (up to 41). The limits on data segments and locals are V8's
// (src/wasm/wasm-limits.h); V8 allows more of the rest, which cost it less
// than they cost wazero (the costs below were measured with wazero 1.12).
const (
	// DefaultMaxTableElems bounds the elements of all tables together:
	// 8 MiB of references per instance.
	DefaultMaxTableElems = 1 << 20
	// DefaultMaxTables bounds the tables (imported and defined): each costs
	// about 100 bytes per instance even when empty.
	DefaultMaxTables = 1000
	// DefaultMaxTypes bounds the function types: each costs a few hundred
	// bytes per compiled module, and a distinct type an entry in wazero's
	// runtime-wide type table that is never freed.
	DefaultMaxTypes = 10_000
	// DefaultMaxImports bounds the imports: each imported function costs
	// about 40 bytes per instance. A guest can only import the host's
	// functions (fewer than 100).
	DefaultMaxImports = 10_000
	// DefaultMaxFunctions bounds the functions a module defines. An empty
	// function costs wazero about 5 us and 250 bytes to compile.
	DefaultMaxFunctions = 200_000
	// DefaultMaxGlobals bounds the globals (imported and defined): each
	// costs about 90 bytes per instance, from 5 bytes of module (1,000,000
	// globals: 84 MiB per instance).
	DefaultMaxGlobals = 10_000
	// DefaultMaxExports bounds the exports.
	DefaultMaxExports = 10_000
	// DefaultMaxElemSegments bounds the element segments: each costs a
	// slice per instance.
	DefaultMaxElemSegments = 10_000
	// DefaultMaxElemEntries bounds the entries of all element segments
	// together: each one naming a function costs about 50 bytes per
	// instance (a reference and a function instance), from as little as 1
	// byte of module.
	DefaultMaxElemEntries = 1 << 20
	// DefaultMaxDataSegments bounds the data segments (Go's linker emits
	// at most 100,000, the limit of V8): each costs a slice per instance.
	DefaultMaxDataSegments = 100_000
	// DefaultMaxDataBytes bounds the bytes of all data segments together,
	// copied per module and, for active segments, into every instance's
	// memory when it starts.
	DefaultMaxDataBytes = 32 << 20
	// DefaultMaxLocals bounds the locals of one function, parameters
	// included (V8's limit): each takes up to 16 bytes of the function's
	// stack frame, which wazero keeps on the Go heap.
	DefaultMaxLocals = 50_000
	// DefaultMaxFuncBytes bounds the size of one function body: compiling
	// one costs wazero about 50 times its size in memory (1 MiB: 48 MiB).
	DefaultMaxFuncBytes = 2 << 20
)

// maxMemories is the number of memories (imported and defined) a module
// may have: wazero supports one.
const maxMemories = 1

// Options configures Instrument. The limits on what a module declares are
// checked before anything proportional to the declared number is allocated;
// a module beyond one is refused with an [Error] that names what is too
// large, its size and the limit. A limit left at 0 takes its default
// (DefaultMaxTableElems, ...); MaxMemoryPages and MaxCallDepth have none.
type Options struct {
	// MaxTableElems bounds the elements of all the module's tables
	// together: the sum of the tables' maximum sizes. A module whose tables'
	// minimum sizes (and imported tables' maximum sizes) add up to more is
	// refused; so is an imported table without a maximum. Defined tables
	// without a maximum size (Go and TinyGo declare them so) or with larger
	// ones get maxima that keep the sum within the limit: the elements left
	// over after the minimums are shared out evenly, a table that declares
	// a smaller maximum keeping it and leaving the rest to the others, so a
	// module with a single table gets the whole budget. wazero enforces a
	// table's maximum on table.grow, but puts no bound of its own on tables
	// (each element costs 8 bytes per instance), so this bounds the memory
	// a guest can take with tables. Default DefaultMaxTableElems.
	MaxTableElems uint32
	// MaxMemoryPages, when not 0, bounds the module's own memory the same way:
	// a memory with no maximum, or a larger one, gets MaxMemoryPages (64 KiB
	// pages) as its maximum, so memory.grow fails past it; a minimum above it
	// is refused. (A runtime-wide cap such as wazero's WithMemoryLimitPages
	// still applies on top; this one can differ per module.) A module may
	// have one memory, imported or defined, whatever the options.
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

	// MaxTables bounds the number of tables, imported and defined.
	// Default DefaultMaxTables.
	MaxTables uint32
	// MaxTypes bounds the number of function types. Default DefaultMaxTypes.
	MaxTypes uint32
	// MaxImports bounds the number of imports of all kinds. Default
	// DefaultMaxImports.
	MaxImports uint32
	// MaxFunctions bounds the number of functions the module defines
	// (imported functions count as imports). Default DefaultMaxFunctions.
	MaxFunctions uint32
	// MaxGlobals bounds the number of globals, imported and defined, and
	// those Instrument adds for ref.func in code (see the package
	// documentation). Default DefaultMaxGlobals.
	MaxGlobals uint32
	// MaxExports bounds the number of exports. Default DefaultMaxExports.
	MaxExports uint32
	// MaxElemSegments bounds the number of element segments. Default
	// DefaultMaxElemSegments.
	MaxElemSegments uint32
	// MaxElemEntries bounds the entries of all element segments together.
	// Default DefaultMaxElemEntries.
	MaxElemEntries uint32
	// MaxDataSegments bounds the number of data segments (and the count
	// of the data count section). Default DefaultMaxDataSegments.
	MaxDataSegments uint32
	// MaxDataBytes bounds the bytes of all data segments together. Default
	// DefaultMaxDataBytes.
	MaxDataBytes uint32
	// MaxLocals bounds the locals of each function, its parameters
	// included. Default DefaultMaxLocals.
	MaxLocals uint32
	// MaxFuncBytes bounds the size in bytes of each function body (its
	// local declarations included). Default DefaultMaxFuncBytes.
	MaxFuncBytes uint32
}

// withDefaults returns o with every limit left at 0 that has a default set
// to it.
func (o Options) withDefaults() Options {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxTableElems, DefaultMaxTableElems)
	def(&o.MaxTables, DefaultMaxTables)
	def(&o.MaxTypes, DefaultMaxTypes)
	def(&o.MaxImports, DefaultMaxImports)
	def(&o.MaxFunctions, DefaultMaxFunctions)
	def(&o.MaxGlobals, DefaultMaxGlobals)
	def(&o.MaxExports, DefaultMaxExports)
	def(&o.MaxElemSegments, DefaultMaxElemSegments)
	def(&o.MaxElemEntries, DefaultMaxElemEntries)
	def(&o.MaxDataSegments, DefaultMaxDataSegments)
	def(&o.MaxDataBytes, DefaultMaxDataBytes)
	def(&o.MaxLocals, DefaultMaxLocals)
	def(&o.MaxFuncBytes, DefaultMaxFuncBytes)
	return o
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
	// ErrTableLimit means the module has more tables than
	// Options.MaxTables, tables whose minimum sizes add up to more than
	// Options.MaxTableElems, or an imported table without a maximum
	// within it.
	ErrTableLimit = errors.New("table exceeds limit")
	// ErrMemoryLimit means a memory's minimum size is above
	// Options.MaxMemoryPages, or the module has more than one memory.
	ErrMemoryLimit = errors.New("memory exceeds limit")
	// ErrModuleLimit means the module declares more of something than
	// Options allows (functions, globals, locals of a function, ...); the
	// Error's Reason says what, how many and the limit.
	ErrModuleLimit = errors.New("module exceeds limit")
)

// Error describes why a module cannot be instrumented and where.
type Error struct {
	Kind    error  // ErrMalformed, ErrUnsupported, ErrReservedImport, ErrTableLimit, ErrMemoryLimit or ErrModuleLimit
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

// overLimit reports that the module declares n of something (what, a
// format for n such as "module declares %d globals") where limit are
// allowed; kind is ErrModuleLimit unless tables or memories are concerned.
func overLimit(kind error, off int, n uint64, limit uint32, what string) *Error {
	return &Error{Kind: kind, Func: -1, Offset: off,
		Reason: fmt.Sprintf(what, n) + fmt.Sprintf("; the limit is %d", limit)}
}

// within returns a check for reader.countLimited that refuses more than
// limit (counting base already seen) with overLimit.
func within(kind error, base uint32, limit uint32, what string) func(uint32, int) *Error {
	return func(n uint32, off int) *Error {
		if total := uint64(base) + uint64(n); total > uint64(limit) {
			return overLimit(kind, off, total, limit, what)
		}
		return nil
	}
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
	m := &module{in: wasm, opts: opts.withDefaults(), shift: 1}
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
	memories    uint32   // imported + defined memories
	// importedTableElems is the sum of the imported tables' maximum sizes
	// (they count against Options.MaxTableElems).
	importedTableElems uint64
	elemEntries        uint64 // entries of the element segments read so far
	dataBytes          uint64 // bytes of the data segments read so far

	// Indices of what Instrument adds. shift is the number of function
	// imports it adds, and also of the globals before the ref.func ones: 1,
	// or 2 with MaxCallDepth.
	refillType, refillFunc, fuelGlobal    uint32
	tooDeepType, tooDeepFunc, depthGlobal uint32
	buyType, buyFunc                      uint32
	shift                                 uint32

	// What the prescan learnt from the code section. leafCost is, for each
	// defined function, -1 if it calls, otherwise its exit cost: what a
	// call to it adds to the caller's unpaid cost; it is known for the
	// first scannedBodies functions. refOrder lists the functions ref.func
	// names in code, in order of appearance (refSeen is its set).
	scannedBodies int
	leafCost      []int32
	refOrder      []uint32
	refSeen       map[uint32]bool
	// refGlobals maps each function of refOrder to the global added to
	// hold its reference.
	refGlobals map[uint32]uint32
	// refd marks the functions that can be put in a table: named by an
	// element segment, a ref.func or an export.
	refd []bool
	// indirectCost is what call_indirect adds to the unpaid cost of its
	// caller.
	indirectCost int

	// Synthesized sections already written.
	wroteType, wroteImport, wroteGlobal bool
	codeSeen                            bool

	scratch []byte     // reused function body buffer
	rets    []int      // reused: offsets in a body's output of its returns
	restore []byte     // with MaxCallDepth: the code that pops a frame
	ctl     []ctlFrame // reused by walk
	loops   []loopInfo // what the first walk over a body learnt about its loops
	labels  []uint32   // reused by walk: the labels of a br_table
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
	m.prescan()

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
			if out, err = m.synthesizeBefore(out, rank); err != nil {
				return nil, err
			}
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
			newPayload, e = m.functionSection(pr)
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
			e = m.dataSection(pr)
			newPayload = payload
		default: // data count: no indices to move
			e = m.dataCountSection(pr)
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
	out, e := m.synthesizeBefore(out, 1<<30)
	if e != nil {
		return nil, e
	}
	if !m.codeSeen && len(m.funcTypes) > 0 {
		return nil, &Error{Kind: ErrMalformed, Section: "code", Func: -1, Offset: len(m.in),
			Reason: fmt.Sprintf("function section declares %d functions but there is no code section", len(m.funcTypes))}
	}
	return out, nil
}

// synthesizeBefore writes the type, import and global sections Instrument
// needs if the module has none, just before the first section of a higher
// rank (or at the end). A nil reader stands for an absent section.
func (m *module) synthesizeBefore(out []byte, rank int) ([]byte, *Error) {
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
		p, err := m.globalSection(nil)
		if err != nil {
			err.Section = sectionNames[secGlobal]
			return nil, err
		}
		out = appendSection(out, secGlobal, p)
	}
	return out, nil
}
