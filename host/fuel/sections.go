package fuel

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// This file rewrites the sections outside the code section. Each function
// takes a reader over the section payload (nil when the module has no such
// section and Instrument must create one) and returns the new payload.

// Value types of WebAssembly 2.0.
const (
	typeI32       = 0x7f
	typeI64       = 0x7e
	typeF32       = 0x7d
	typeF64       = 0x7c
	typeV128      = 0x7b
	typeFuncref   = 0x70
	typeExternref = 0x6f
)

// valType reads a value type.
func (r *reader) valType() *Error {
	off := r.off()
	t, err := r.byte()
	if err != nil {
		return err
	}
	switch t {
	case typeI32, typeI64, typeF32, typeF64, typeV128, typeFuncref, typeExternref:
		return nil
	case 0x63, 0x64, 0x69: // (ref null ht), (ref ht), exnref
		return unsupportedf(off, "value type %#x (typed references or exceptions)", t)
	}
	return malformedf(off, "invalid value type %#x", t)
}

// refType reads a reference type (funcref or externref).
func (r *reader) refType() *Error {
	off := r.off()
	t, err := r.byte()
	if err != nil {
		return err
	}
	switch t {
	case typeFuncref, typeExternref:
		return nil
	case 0x63, 0x64, 0x69:
		return unsupportedf(off, "reference type %#x (typed references or exceptions)", t)
	}
	return malformedf(off, "invalid reference type %#x", t)
}

// limits reads table or memory limits as wazero does (flags 2 and 3 mark
// shared memories).
func (r *reader) limits() (min, max uint32, hasMax bool, err *Error) {
	off := r.off()
	flags, err := r.byte()
	if err != nil {
		return 0, 0, false, err
	}
	if flags > 3 {
		return 0, 0, false, malformedf(off, "invalid limits flags %#x", flags)
	}
	if min, err = r.u32(); err != nil {
		return 0, 0, false, err
	}
	if flags&1 != 0 {
		if max, err = r.u32(); err != nil {
			return 0, 0, false, err
		}
		hasMax = true
	}
	return min, max, hasMax, nil
}

// rewriter copies the bytes a reader has consumed to out, replacing the
// function indices it is asked to remap and inserting injected code.
type rewriter struct {
	r    *reader
	out  []byte
	mark int // r.buf[mark:r.pos] is consumed but not yet copied
}

// flush copies everything consumed so far.
func (w *rewriter) flush() {
	w.out = append(w.out, w.r.buf[w.mark:w.r.pos]...)
	w.mark = w.r.pos
}

// cut copies the input up to pos (not yet consumed by the writer) and
// returns the length of the output, the position of pos in it.
func (w *rewriter) cut(pos int) int {
	w.out = append(w.out, w.r.buf[w.mark:pos]...)
	w.mark = pos
	return len(w.out)
}

// replace drops the input buf[from:to], which must follow what was copied
// or replaced before, from the output: the caller appends what replaces
// it.
func (w *rewriter) replace(from, to int) {
	w.out = append(w.out, w.r.buf[w.mark:from]...)
	w.mark = to
}

// replaceLimits writes limits with a maximum (flags, min, max) in place of the
// limits just consumed from start.
func (w *rewriter) replaceLimits(start int, flags byte, min, max uint32) {
	w.replaceAt(start, w.r.pos, flags, min, max)
}

// replaceAt writes limits with a maximum (flags, min, max) in place of the
// limits consumed at buf[start:end], which must follow what was replaced
// before.
func (w *rewriter) replaceAt(start, end int, flags byte, min, max uint32) {
	w.out = append(w.out, w.r.buf[w.mark:start]...)
	w.out = append(w.out, flags)
	w.out = appendU32(w.out, min)
	w.out = appendU32(w.out, max)
	w.mark = end
}

// payload returns the rewritten section: the input itself when nothing was
// replaced.
func (w *rewriter) payload() []byte {
	if w.out == nil {
		return w.r.buf
	}
	w.flush()
	return w.out
}

// funcIndex reads a function index of the original module and writes its
// new index.
func (w *rewriter) funcIndex(m *module) (uint32, *Error) {
	start, off := w.r.pos, w.r.off()
	idx, err := w.r.u32()
	if err != nil {
		return 0, err
	}
	if idx >= m.numFuncs() {
		return 0, malformedf(off, "function index %d out of range (the module has %d functions)", idx, m.numFuncs())
	}
	w.out = append(w.out, w.r.buf[w.mark:start]...)
	w.out = appendU32(w.out, m.remapFunc(idx))
	w.mark = w.r.pos
	return idx, nil
}

// funcRefIndex is funcIndex for a function that the module can put in a
// table (see module.refd).
func (w *rewriter) funcRefIndex(m *module) *Error {
	idx, err := w.funcIndex(m)
	if err == nil {
		m.markRef(idx)
	}
	return err
}

// constExpr rewrites a constant expression up to and including its end.
func (m *module) constExpr(w *rewriter) *Error {
	r := w.r
	for {
		off := r.off()
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case opEnd:
			return nil
		case opI32Const:
			err = r.skipSigned(32)
		case opI64Const:
			err = r.skipSigned(64)
		case opF32Const:
			_, err = r.bytes(4)
		case opF64Const:
			_, err = r.bytes(8)
		case opGlobalGet:
			var idx uint32
			if idx, err = r.u32(); err == nil && idx >= m.globals {
				err = malformedf(off, "global.get %d out of range (the module has %d globals)", idx, m.globals)
			}
		case opRefNull:
			err = r.refType()
		case opRefFunc:
			err = w.funcRefIndex(m)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const i32/i64 add, sub, mul
		case prefixSIMD:
			var sub byte
			if sub, err = r.byte(); err == nil {
				if sub != 12 { // v128.const
					return malformedf(off, "opcode 0xfd %#x not allowed in a constant expression", sub)
				}
				_, err = r.bytes(16)
			}
		default:
			return malformedf(off, "opcode %#x not allowed in a constant expression", op)
		}
		if err != nil {
			return err
		}
	}
}

// endOf reports bytes left over after the entries of a section.
func endOf(r *reader) *Error {
	if !r.eof() {
		return r.errorf("%d unexpected bytes after the last entry", r.remaining())
	}
	return nil
}

// typeSection appends the refill type () -> i64 and, with MaxCallDepth, the
// too_deep type () -> () and the block types of calling functions with
// several results (see blockTypesFor), and last the type of $buy,
// (i32 i32) -> i32.
func (m *module) typeSection(r *reader) ([]byte, *Error) {
	var n uint32
	var entries []byte
	var results [][]byte // result types of each type, one byte each
	if r != nil {
		var err *Error
		if n, err = r.countLimited(3, within(ErrModuleLimit, 0, m.opts.MaxTypes, "module declares %d function types")); err != nil {
			return nil, err
		}
		start := r.pos
		m.typeParams = make([]uint32, 0, n)
		for i := uint32(0); i < n; i++ {
			off := r.off()
			form, err := r.byte()
			if err != nil {
				return nil, err
			}
			if form != 0x60 {
				return nil, unsupportedf(off, "type %d: form %#x is not a function type", i, form)
			}
			np, err := r.count(1)
			if err != nil {
				return nil, err
			}
			for j := uint32(0); j < np; j++ {
				if err := r.valType(); err != nil {
					return nil, err
				}
			}
			nr, err := r.count(1)
			if err != nil {
				return nil, err
			}
			resStart := r.pos
			for j := uint32(0); j < nr; j++ {
				if err := r.valType(); err != nil {
					return nil, err
				}
			}
			m.typeParams = append(m.typeParams, np)
			if m.depthLimit() {
				results = append(results, r.buf[resStart:r.pos])
			}
		}
		if err := endOf(r); err != nil {
			return nil, err
		}
		entries = r.buf[start:]
	}
	buy := []byte{0x60, 0x02, typeI32, typeI32, 0x01, typeI32}
	m.refillType = n
	if !m.depthLimit() {
		m.buyType = n + 1
		out := appendU32(make([]byte, 0, len(entries)+16), n+2)
		out = append(out, entries...)
		out = append(out, 0x60, 0x00, 0x01, typeI64) // refill
		return append(out, buy...), nil
	}
	m.tooDeepType = n + 1
	extra, added := m.blockTypesFor(results, n+2)
	m.buyType = n + 2 + added
	out := appendU32(make([]byte, 0, len(entries)+len(extra)+24), n+3+added)
	out = append(out, entries...)
	out = append(out, 0x60, 0x00, 0x01, typeI64) // refill
	out = append(out, 0x60, 0x00, 0x00)          // too_deep
	out = append(out, extra...)
	return append(out, buy...), nil
}

// blockTypesFor fills m.blockTypes: for each type, the block type of the
// block that wraps the body of a function of that type. Such a block takes
// no parameters and has the function's results: empty, a value type, or for
// several results the index of a function type without parameters and with
// the same results. A type with params cannot serve (a block would take its
// parameters from the operand stack), so for those an existing parameterless
// type with the same results is reused or a new one is created at index
// next, next+1, ...; extra holds the new type entries.
func (m *module) blockTypesFor(results [][]byte, next uint32) (extra []byte, added uint32) {
	m.blockTypes = make([]int64, len(results))
	var byResults map[string]uint32
	for i, res := range results {
		if len(res) > 1 && m.typeParams[i] == 0 {
			if byResults == nil {
				byResults = make(map[string]uint32)
			}
			if _, ok := byResults[string(res)]; !ok {
				byResults[string(res)] = uint32(i)
			}
		}
	}
	for i, res := range results {
		switch len(res) {
		case 0:
			m.blockTypes[i] = int64(blockEmpty) - 0x80
		case 1:
			m.blockTypes[i] = int64(res[0]) - 0x80 // value types encode as negative s33
		default:
			idx, ok := byResults[string(res)]
			if !ok {
				if byResults == nil {
					byResults = make(map[string]uint32)
				}
				idx = next + added
				added++
				byResults[string(res)] = idx
				extra = append(extra, 0x60, 0x00)
				extra = appendU32(extra, uint32(len(res)))
				extra = append(extra, res...)
			}
			m.blockTypes[i] = int64(idx)
		}
	}
	return extra, added
}

// importSection rejects imports from ImportModule, checks imported tables,
// counts imported functions, tables, memories and globals, and appends the
// refill import.
func (m *module) importSection(r *reader) ([]byte, *Error) {
	var n uint32
	var entries []byte
	if r != nil {
		var err *Error
		if n, err = r.countLimited(4, within(ErrModuleLimit, 0, m.opts.MaxImports, "module declares %d imports")); err != nil {
			return nil, err
		}
		secOff := r.off()
		start := r.pos
		for i := uint32(0); i < n; i++ {
			off := r.off()
			mod, err := r.name()
			if err != nil {
				return nil, err
			}
			field, err := r.name()
			if err != nil {
				return nil, err
			}
			if string(mod) == ImportModule {
				return nil, &Error{Kind: ErrReservedImport, Func: -1, Offset: off,
					Reason: fmt.Sprintf("import %d (%q %q): module %q is reserved for the fuel meter", i, mod, field, ImportModule)}
			}
			kindOff := r.off()
			kind, err := r.byte()
			if err != nil {
				return nil, err
			}
			switch kind {
			case 0: // function
				t, err := r.u32()
				if err != nil {
					return nil, err
				}
				if t >= uint32(len(m.typeParams)) {
					return nil, malformedf(kindOff, "import %d: type index %d out of range", i, t)
				}
				m.funcImports++
			case 1: // table
				if err := r.refType(); err != nil {
					return nil, err
				}
				min, max, hasMax, err := r.limits()
				if err != nil {
					return nil, err
				}
				what := fmt.Sprintf("table %d (imported as %q %q)", m.tables, mod, field)
				if err := m.checkTable(off, what, min, max, hasMax); err != nil {
					return nil, err
				}
				m.tables++
				m.importedTableElems += uint64(max)
			case 2: // memory
				if _, _, _, err := r.limits(); err != nil {
					return nil, err
				}
				m.memories++
			case 3: // global
				if err := r.valType(); err != nil {
					return nil, err
				}
				if err := m.mutability(r); err != nil {
					return nil, err
				}
				m.globals++
			case 4:
				return nil, unsupportedf(kindOff, "import %d: tag imports (exception handling)", i)
			default:
				return nil, malformedf(kindOff, "import %d: invalid import kind %#x", i, kind)
			}
		}
		if err := endOf(r); err != nil {
			return nil, err
		}
		// Each imported table, memory and global counts against the limits.
		if m.tables > m.opts.MaxTables {
			return nil, overLimit(ErrTableLimit, secOff, uint64(m.tables), m.opts.MaxTables, "module declares %d tables")
		}
		if m.importedTableElems > uint64(m.opts.MaxTableElems) {
			return nil, m.tableElemsOver(secOff, m.tables, m.importedTableElems)
		}
		if m.memories > maxMemories {
			return nil, overLimit(ErrMemoryLimit, secOff, uint64(m.memories), maxMemories, "module declares %d memories")
		}
		if m.globals > m.opts.MaxGlobals {
			return nil, overLimit(ErrModuleLimit, secOff, uint64(m.globals), m.opts.MaxGlobals, "module declares %d globals")
		}
		entries = r.buf[start:]
	}
	m.refillFunc = m.funcImports
	out := appendU32(make([]byte, 0, len(entries)+64), n+m.shift)
	out = append(out, entries...)
	out = appendName(out, ImportModule)
	out = appendName(out, RefillName)
	out = append(out, 0x00)
	out = appendU32(out, m.refillType)
	if m.depthLimit() {
		m.tooDeepFunc = m.funcImports + 1
		out = appendName(out, ImportModule)
		out = appendName(out, TooDeepName)
		out = append(out, 0x00)
		out = appendU32(out, m.tooDeepType)
	}
	return out, nil
}

func (m *module) mutability(r *reader) *Error {
	off := r.off()
	b, err := r.byte()
	if err != nil {
		return err
	}
	if b > 1 {
		return malformedf(off, "invalid global mutability %#x", b)
	}
	return nil
}

// tableElemsOver is the error for tables that hold more than
// Options.MaxTableElems elements in all.
func (m *module) tableElemsOver(off int, tables uint32, elems uint64) *Error {
	return &Error{Kind: ErrTableLimit, Func: -1, Offset: off,
		Reason: fmt.Sprintf("module declares %d tables holding %d elements in all; the limit is %d", tables, elems, m.opts.MaxTableElems)}
}

// checkTable enforces Options.MaxTableElems on one table: an imported table
// must have a maximum within it, a defined one a minimum within it.
func (m *module) checkTable(off int, what string, min, max uint32, hasMax bool) *Error {
	limit := m.opts.MaxTableElems
	var reason string
	switch {
	case min > limit:
		reason = fmt.Sprintf("%s has a minimum size of %d elements; the limit is %d", what, min, limit)
	case !hasMax:
		reason = fmt.Sprintf("%s has no maximum size; the limit is %d elements", what, limit)
	case max > limit:
		reason = fmt.Sprintf("%s has a maximum size of %d elements; the limit is %d", what, max, limit)
	default:
		return nil
	}
	return &Error{Kind: ErrTableLimit, Func: -1, Offset: off, Reason: reason}
}

// functionSection records the type of every defined function and, if there
// are any, appends $buy, which their checks call (see appendCheck).
func (m *module) functionSection(r *reader) ([]byte, *Error) {
	n, err := r.countLimited(1, within(ErrModuleLimit, 0, m.opts.MaxFunctions, "module defines %d functions"))
	if err != nil {
		return nil, err
	}
	start := r.pos
	m.funcTypes = make([]uint32, 0, n)
	for i := uint32(0); i < n; i++ {
		off := r.off()
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		if t >= uint32(len(m.typeParams)) {
			return nil, malformedf(off, "function %d: type index %d out of range", m.funcImports+i, t)
		}
		m.funcTypes = append(m.funcTypes, t)
	}
	if err := endOf(r); err != nil {
		return nil, err
	}
	if n == 0 {
		return r.buf, nil
	}
	m.buyFunc = m.funcImports + m.shift + n
	out := appendU32(make([]byte, 0, len(r.buf)+8), n+1)
	out = append(out, r.buf[start:]...)
	return appendU32(out, m.buyType), nil
}

// tableDecl is a defined table as tableSection reads it.
type tableDecl struct {
	off, start, end int // offsets of the entry, and of its limits in the payload
	min, max        uint32
	hasMax          bool
	grant           uint64 // the elements it may grow by
}

// tableSection checks the defined tables against Options.MaxTables and
// Options.MaxTableElems, which bounds the sum of all tables' maximum sizes.
// A module whose tables' minimums (with the imported tables' maximums) add
// up to more than MaxTableElems is refused. What the minimums leave of it,
// the budget, is shared out among the defined tables in max-min fair shares:
// a table whose declared maximum leaves it room to grow by less than an
// even share keeps its maximum, and the others split the rest evenly. A
// table without a maximum, or with a larger one than its share allows, gets
// its minimum plus its share as its maximum (wazero enforces a table's
// maximum on table.grow). A module with one table gives it the whole budget.
func (m *module) tableSection(r *reader) ([]byte, *Error) {
	limit := m.opts.MaxTableElems
	n, err := r.countLimited(3, within(ErrTableLimit, m.tables, m.opts.MaxTables, "module declares %d tables"))
	if err != nil {
		return nil, err
	}
	secOff := r.off()
	tabs := make([]tableDecl, n)
	elems := m.importedTableElems
	for i := range tabs {
		t := &tabs[i]
		t.off = r.off()
		if r.remaining() > 0 && r.buf[r.pos] == 0x40 {
			return nil, unsupportedf(t.off, "table %d: table initializer (typed function references)", m.tables+uint32(i))
		}
		if err := r.refType(); err != nil {
			return nil, err
		}
		t.start = r.pos
		if t.min, t.max, t.hasMax, err = r.limits(); err != nil {
			return nil, err
		}
		t.end = r.pos
		if t.min > limit {
			return nil, &Error{Kind: ErrTableLimit, Func: -1, Offset: t.off,
				Reason: fmt.Sprintf("table %d has a minimum size of %d elements; the limit is %d", m.tables+uint32(i), t.min, limit)}
		}
		elems += uint64(t.min)
	}
	if err := endOf(r); err != nil {
		return nil, err
	}
	if elems > uint64(limit) {
		return nil, m.tableElemsOver(secOff, m.tables+n, elems)
	}
	shareTables(tabs, uint64(limit)-elems)

	w := &rewriter{r: r}
	for _, t := range tabs {
		max := uint64(t.min) + t.grant // at most limit
		if !t.hasMax || (t.max >= t.min && max < uint64(t.max)) {
			w.replaceAt(t.start, t.end, 0x01, t.min, uint32(max))
		}
	}
	m.tables += n
	return w.payload(), nil
}

// shareTables shares budget elements out among tabs (see tableSection),
// setting their grants.
func shareTables(tabs []tableDecl, budget uint64) {
	want := func(t *tableDecl) uint64 {
		switch {
		case !t.hasMax:
			return math.MaxUint64
		case t.max < t.min: // invalid (wazero refuses it): left as it is
			return 0
		}
		return uint64(t.max - t.min)
	}
	order := make([]int, len(tabs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(want(&tabs[a]), want(&tabs[b])) })
	for j, i := range order {
		rest := uint64(len(order) - j)
		share := budget / rest
		if w := want(&tabs[i]); w <= share {
			tabs[i].grant = w
			budget -= w
			continue
		}
		// Every table left wants more than an even share: each gets it, and
		// the first ones (in the module's order) the odd elements.
		left := slices.Clone(order[j:])
		slices.Sort(left)
		for k, i := range left {
			tabs[i].grant = share
			if uint64(k) < budget%rest {
				tabs[i].grant++
			}
		}
		return
	}
}

// memorySection refuses a second memory, and gives each defined memory at
// most Options.MaxMemoryPages as its maximum; a minimum above the limit is
// refused.
func (m *module) memorySection(r *reader) ([]byte, *Error) {
	n, err := r.countLimited(2, within(ErrMemoryLimit, m.memories, maxMemories, "module declares %d memories"))
	if err != nil {
		return nil, err
	}
	m.memories += n
	limit := m.opts.MaxMemoryPages
	if limit == 0 {
		return r.buf, nil
	}
	w := &rewriter{r: r}
	for i := uint32(0); i < n; i++ {
		off := r.off()
		start := r.pos
		if r.remaining() == 0 {
			return nil, malformedf(off, "memory %d: truncated limits", i)
		}
		flags := r.buf[r.pos]
		min, max, hasMax, err := r.limits()
		if err != nil {
			return nil, err
		}
		if min > limit {
			return nil, &Error{Kind: ErrMemoryLimit, Func: -1, Offset: off,
				Reason: fmt.Sprintf("memory %d needs at least %d pages of 64 KiB; the limit is %d pages", i, min, limit)}
		}
		if !hasMax || max > limit {
			w.replaceLimits(start, flags|0x01, min, limit) // keep the shared bit
		}
	}
	if err := endOf(r); err != nil {
		return nil, err
	}
	return w.payload(), nil
}

// globalSection rewrites ref.func in initializers and appends the fuel
// global: (global (mut i64) (i64.const 0)), with MaxCallDepth the depth
// global: (global (mut i64) (i64.const MaxCallDepth)), and for each function
// that ref.func names in code a global holding its reference:
// (global funcref (ref.func $f)). The code reads that global instead of
// executing ref.func, which in wazero allocates a function instance that
// lives as long as the module instance, every time it runs. Those globals
// count against Options.MaxGlobals.
func (m *module) globalSection(r *reader) ([]byte, *Error) {
	var n uint32
	w := &rewriter{r: r}
	imported := m.globals
	what := "module declares %d globals"
	if imported > 0 {
		what += fmt.Sprintf(" (%d imported)", imported)
	}
	// The functions named by ref.func in code; the prescan may have seen
	// indices out of range, which the code section refuses.
	refs := m.refOrder[:0:0]
	for _, f := range m.refOrder {
		if f < m.numFuncs() {
			refs = append(refs, f)
		}
	}
	if r != nil {
		var err *Error
		if n, err = r.countLimited(3, within(ErrModuleLimit, imported, m.opts.MaxGlobals, what)); err != nil {
			return nil, err
		}
		m.globals += n
		w.mark = r.pos
		w.out = appendU32(make([]byte, 0, len(r.buf)+32+8*len(refs)), n+m.shift+uint32(len(refs)))
		for i := uint32(0); i < n; i++ {
			if err := r.valType(); err != nil {
				return nil, err
			}
			if err := m.mutability(r); err != nil {
				return nil, err
			}
			if err := m.constExpr(w); err != nil {
				return nil, err
			}
		}
		if err := endOf(r); err != nil {
			return nil, err
		}
		w.flush()
	} else {
		w.out = appendU32(make([]byte, 0, 32+8*len(refs)), m.shift+uint32(len(refs)))
	}
	if len(refs) > 0 {
		if total := uint64(m.globals) + uint64(len(refs)); total > uint64(m.opts.MaxGlobals) {
			e := overLimit(ErrModuleLimit, len(m.in), total, m.opts.MaxGlobals,
				"module declares %d globals"+fmt.Sprintf(" (%d added for the functions its code names with ref.func)", len(refs)))
			if r != nil {
				e.Offset = r.base
			}
			return nil, e
		}
	}
	m.fuelGlobal = m.globals
	w.out = append(w.out, typeI64, 0x01, opI64Const, 0x00, opEnd)
	if m.depthLimit() {
		m.depthGlobal = m.globals + 1
		w.out = append(w.out, typeI64, 0x01, opI64Const)
		w.out = appendS64(w.out, int64(m.opts.MaxCallDepth))
		w.out = append(w.out, opEnd)
	}
	m.refGlobals = make(map[uint32]uint32, len(refs))
	for i, f := range refs {
		m.refGlobals[f] = m.globals + m.shift + uint32(i)
		m.markRef(f)
		w.out = append(w.out, typeFuncref, 0x00, opRefFunc)
		w.out = appendU32(w.out, m.remapFunc(f))
		w.out = append(w.out, opEnd)
	}
	return w.out, nil
}

// exportSection remaps exported functions; an export of a global beyond the
// original ones (which would be the fuel) is rejected.
func (m *module) exportSection(r *reader) ([]byte, *Error) {
	n, err := r.countLimited(3, within(ErrModuleLimit, 0, m.opts.MaxExports, "module declares %d exports"))
	if err != nil {
		return nil, err
	}
	w := &rewriter{r: r}
	for i := uint32(0); i < n; i++ {
		if _, err := r.name(); err != nil {
			return nil, err
		}
		off := r.off()
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch kind {
		case 0: // function
			err = w.funcRefIndex(m)
		case 1, 2: // table, memory
			_, err = r.u32()
		case 3: // global
			var idx uint32
			if idx, err = r.u32(); err == nil && idx >= m.globals {
				err = malformedf(off, "export %d: global index %d out of range (the module has %d globals)", i, idx, m.globals)
			}
		case 4:
			err = unsupportedf(off, "export %d: tag exports (exception handling)", i)
		default:
			err = malformedf(off, "export %d: invalid export kind %#x", i, kind)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := endOf(r); err != nil {
		return nil, err
	}
	w.flush()
	return w.out, nil
}

func (m *module) startSection(r *reader) ([]byte, *Error) {
	w := &rewriter{r: r}
	if _, err := w.funcIndex(m); err != nil {
		return nil, err
	}
	if err := endOf(r); err != nil {
		return nil, err
	}
	w.flush()
	return w.out, nil
}

// elementSection remaps function indices and ref.func in all eight segment
// forms. The flags select the form: bit 0 set means passive or declarative
// (no table offset), bit 1 an explicit table index (active) or declarative
// (otherwise), bit 2 element expressions instead of function indices.
func (m *module) elementSection(r *reader) ([]byte, *Error) {
	n, err := r.countLimited(3, within(ErrModuleLimit, 0, m.opts.MaxElemSegments, "module declares %d element segments"))
	if err != nil {
		return nil, err
	}
	w := &rewriter{r: r}
	for i := uint32(0); i < n; i++ {
		off := r.off()
		flags, err := r.u32()
		if err != nil {
			return nil, err
		}
		if flags > 7 {
			return nil, malformedf(off, "element segment %d: invalid flags %#x", i, flags)
		}
		if flags&3 == 2 {
			if _, err := r.u32(); err != nil { // table index
				return nil, err
			}
		}
		if flags&1 == 0 {
			if err := m.constExpr(w); err != nil { // offset
				return nil, err
			}
		}
		exprs := flags&4 != 0
		if flags&3 != 0 {
			if exprs {
				err = r.refType()
			} else {
				kindOff := r.off()
				var kind byte
				if kind, err = r.byte(); err == nil && kind != 0 {
					err = malformedf(kindOff, "element segment %d: invalid element kind %#x", i, kind)
				}
			}
			if err != nil {
				return nil, err
			}
		}
		count, err := r.countLimited(1, m.segmentsWithin(i, m.elemEntries, m.opts.MaxElemEntries, "element", "entries"))
		if err != nil {
			return nil, err
		}
		m.elemEntries += uint64(count)
		for j := uint32(0); j < count; j++ {
			if exprs {
				err = m.constExpr(w)
			} else {
				err = w.funcRefIndex(m)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if err := endOf(r); err != nil {
		return nil, err
	}
	w.flush()
	return w.out, nil
}

// segmentsWithin returns a check for reader.countLimited of the size of
// segment i, given the sizes of the segments before it (sum): their total
// must stay within limit. kind is "element" or "data", unit "entries" or
// "bytes".
func (m *module) segmentsWithin(i uint32, sum uint64, limit uint32, kind, unit string) func(uint32, int) *Error {
	return func(n uint32, off int) *Error {
		total := sum + uint64(n)
		if total <= uint64(limit) {
			return nil
		}
		reason := fmt.Sprintf("%s segment 0 holds %d %s; the limit is %d", kind, total, unit, limit)
		if i > 0 {
			reason = fmt.Sprintf("%s segments 0 to %d hold %d %s in all; the limit is %d", kind, i, total, unit, limit)
		}
		return &Error{Kind: ErrModuleLimit, Func: -1, Offset: off, Reason: reason}
	}
}

// dataSection checks the number of data segments and their bytes in all
// against Options.MaxDataSegments and Options.MaxDataBytes. (It moves no
// indices: the section is copied verbatim.) A count far beyond what the
// bytes can hold would make wazero allocate for it (20 bytes claiming 10^8
// segments cost gigabytes) before it finds the section short; a segment
// takes at least 2 bytes (passive, empty).
func (m *module) dataSection(r *reader) *Error {
	n, err := r.countLimited(2, within(ErrModuleLimit, 0, m.opts.MaxDataSegments, "module declares %d data segments"))
	if err != nil {
		return err
	}
	w := &rewriter{r: r} // for constExpr; its output is not used
	for i := uint32(0); i < n; i++ {
		off := r.off()
		flags, err := r.u32()
		if err != nil {
			return err
		}
		switch flags {
		case 0: // active, memory 0
			err = m.constExpr(w)
		case 1: // passive
		case 2: // active, explicit memory
			if _, err = r.u32(); err == nil {
				err = m.constExpr(w)
			}
		default:
			err = malformedf(off, "data segment %d: invalid flags %#x", i, flags)
		}
		if err != nil {
			return err
		}
		size, err := r.countLimited(1, m.segmentsWithin(i, m.dataBytes, m.opts.MaxDataBytes, "data", "bytes"))
		if err != nil {
			return err
		}
		m.dataBytes += uint64(size)
		if _, err := r.bytes(int(size)); err != nil {
			return err
		}
	}
	return endOf(r)
}

// dataCountSection checks the count of data segments it declares against
// Options.MaxDataSegments.
func (m *module) dataCountSection(r *reader) *Error {
	off := r.off()
	n, err := r.u32()
	if err != nil {
		return err
	}
	if n > m.opts.MaxDataSegments {
		return overLimit(ErrModuleLimit, off, uint64(n), m.opts.MaxDataSegments, "data count section declares %d data segments")
	}
	return endOf(r)
}

// custom keeps custom sections verbatim, except that it rewrites the
// function indices of the "name" section (or drops it if it cannot) and
// drops DWARF sections and source map links, whose code offsets no longer
// hold.
func (m *module) custom(r *reader) (payload []byte, keep bool, err *Error) {
	name, err := r.name()
	if err != nil {
		return nil, false, err
	}
	switch {
	case string(name) == "name":
		if !m.wroteImport {
			// Before the import section the index shift is unknown.
			return nil, false, nil
		}
		body, ok := m.nameSection(newReader(r.buf[r.pos:], r.off()))
		if !ok {
			return nil, false, nil
		}
		return append(appendName(make([]byte, 0, len(body)+8), "name"), body...), true, nil
	case strings.HasPrefix(string(name), ".debug_"), string(name) == "sourceMappingURL":
		return nil, false, nil
	}
	return r.buf, true, nil
}

// nameSection rewrites the function-indexed subsections of a name section:
// function names (1), local names (2) and label names (3). It reports false
// if the section is malformed or names a function that does not exist,
// which the caller treats as "drop it".
func (m *module) nameSection(r *reader) ([]byte, bool) {
	out := make([]byte, 0, len(r.buf)+8)
	for !r.eof() {
		id, err := r.byte()
		if err != nil {
			return nil, false
		}
		size, err := r.u32()
		if err != nil {
			return nil, false
		}
		sub, err := r.bytes(int(size))
		if err != nil {
			return nil, false
		}
		if id >= 1 && id <= 3 {
			var ok bool
			if sub, ok = m.remapNameMap(sub, id != 1); !ok {
				return nil, false
			}
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(sub)))
		out = append(out, sub...)
	}
	return out, true
}

// remapNameMap remaps the function indices of a name map (funcidx -> name)
// or, if indirect, of an indirect name map (funcidx -> (idx -> name)).
func (m *module) remapNameMap(sub []byte, indirect bool) ([]byte, bool) {
	r := newReader(sub, 0)
	n, err := r.count(2)
	if err != nil {
		return nil, false
	}
	out := appendU32(make([]byte, 0, len(sub)+8), n)
	for i := uint32(0); i < n; i++ {
		idx, err := r.u32()
		if err != nil || idx >= m.numFuncs() {
			return nil, false
		}
		out = appendU32(out, m.remapFunc(idx))
		start := r.pos
		inner := uint32(1)
		if indirect {
			if inner, err = r.count(2); err != nil {
				return nil, false
			}
		}
		for j := uint32(0); j < inner; j++ {
			if indirect {
				if _, err := r.u32(); err != nil {
					return nil, false
				}
			}
			if _, err := r.name(); err != nil {
				return nil, false
			}
		}
		out = append(out, r.buf[start:r.pos]...)
	}
	return out, r.eof()
}
