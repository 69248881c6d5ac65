package fuel

import "math"

// Opcodes Instrument reads or writes by name.
const (
	opUnreachable   = 0x00
	opNop           = 0x01
	opBlock         = 0x02
	opLoop          = 0x03
	opIf            = 0x04
	opElse          = 0x05
	opEnd           = 0x0b
	opBr            = 0x0c
	opBrIf          = 0x0d
	opBrTable       = 0x0e
	opReturn        = 0x0f
	opCall          = 0x10
	opCallIndirect  = 0x11
	opReturnCall    = 0x12 // tail-call
	opReturnCallIn  = 0x13 // tail-call: return_call_indirect
	opDrop          = 0x1a
	opSelect        = 0x1b
	opSelectT       = 0x1c
	opLocalGet      = 0x20
	opLocalSet      = 0x21
	opLocalTee      = 0x22
	opGlobalGet     = 0x23
	opGlobalSet     = 0x24
	opTableGet      = 0x25
	opTableSet      = 0x26
	opI32Load       = 0x28 // first load/store
	opI64Store32    = 0x3e // last load/store
	opMemorySize    = 0x3f
	opMemoryGrow    = 0x40
	opI32Const      = 0x41
	opI64Const      = 0x42
	opF32Const      = 0x43
	opF64Const      = 0x44
	opI32Eqz        = 0x45 // first numeric instruction
	opI32LtS        = 0x48
	opI32LtU        = 0x49
	opI64LtS        = 0x53
	opI32Add        = 0x6a
	opI32Sub        = 0x6b
	opI32And        = 0x71
	opI32Or         = 0x72
	opI32Shl        = 0x74
	opI64Add        = 0x7c
	opI64Sub        = 0x7d
	opI64ExtendI32U = 0xad
	opI64Extend32S  = 0xc4 // last numeric instruction (sign extension)
	opRefNull       = 0xd0
	opRefIsNull     = 0xd1
	opRefFunc       = 0xd2
	prefixMisc      = 0xfc
	prefixSIMD      = 0xfd
	prefixAtomic    = 0xfe

	blockEmpty = 0x40
)

// unsupportedOps are opcodes of proposals wazero only offers behind
// experimental flags that Instrument does not handle.
var unsupportedOps = map[byte]string{
	0x06: "try (legacy exceptions)", 0x07: "catch (legacy exceptions)",
	0x08: "throw (exceptions)", 0x09: "rethrow (legacy exceptions)",
	0x0a: "throw_ref (exceptions)", 0x14: "call_ref (typed function references)",
	0x15: "return_call_ref (typed function references)",
	0x18: "delegate (legacy exceptions)", 0x19: "catch_all (legacy exceptions)",
	0x1f: "try_table (exceptions)", 0xd4: "ref.as_non_null (typed function references)",
	0xd5: "br_on_null (typed function references)", 0xd6: "br_on_non_null (typed function references)",
}

// simdUnassigned lists the SIMD sub-opcodes below 256 that are not
// instructions. wazero, and so Instrument, reads the SIMD sub-opcode as a
// single byte.
var simdUnassigned = [256]bool{
	154: true, 162: true, 165: true, 166: true, 175: true, 176: true, 178: true,
	179: true, 180: true, 187: true, 194: true, 197: true, 198: true, 207: true,
	208: true, 210: true, 211: true, 212: true, 226: true, 238: true,
}

// Metering. The unit of cost is one instruction; see the package
// documentation for where checks go and what they charge.
const (
	// maxUnpaid bounds the cost that any path may run up between two
	// checks: where more would follow, a check is inserted.
	maxUnpaid = 256
	// entryCredit is the credit that the counter of a function with checks
	// takes from the fuel at its entry, with the entry check of a calling
	// function: enough for short activations, which so take no block.
	entryCredit = 256
	// minBlock is the least credit that a counter takes from the fuel at
	// once, at a check it does not cover. It covers the weight of any one
	// check (at most maxUnpaid+2), so the check then passes.
	minBlock = 512
	// unreachable is the unpaid cost of code that no path reaches.
	unreachable = -1
)

// ctlFrame is a block, loop or if (or the function body itself) that the
// metering walk is inside of.
type ctlFrame struct {
	loop, isIf, hasElse bool
	// variable: the loop's header check charges the weight local, which
	// each branch back to it sets (see loopHeader).
	variable bool
	// start is the unpaid cost at the start of an if's two branches.
	start int
	// merge is the most unpaid cost with which a branch reaches the end of
	// the block (branches to a loop go to its start and are checked).
	merge int
	// info is the index in module.loops of a loop's loopInfo.
	info int
}

// loopInfo is what the first walk over a body learns about one of its
// loops, for the second to choose how to meter it (see loopHeader).
type loopInfo struct {
	entry int // the unpaid cost with which the loop is entered, or unreachable
	// minBack and maxBack are the least and most unpaid cost with which a
	// branch goes back to the loop; maxBack is unreachable if none does.
	minBack, maxBack int
}

// walkMode is what a walk over a function body does.
type walkMode uint8

const (
	// modeScan only learns (see prescan): it writes nothing and skips the
	// checks that need sections not read yet.
	modeScan walkMode = iota
	// modeLearn is the first walk of the main pass: it checks the body and
	// learns its loops (module.loops), writing nothing.
	modeLearn
	// modeWrite is the second: it writes the instrumented body.
	modeWrite
)

// bodyMeter is the state of the walk over one function body.
type bodyMeter struct {
	mode walkMode
	// leaf: the function calls nothing (known from the prescan).
	leaf bool
	// counter is the index of the counter local $n, counter+1 that of the
	// weight $w that a loop header check charges.
	counter uint32
	hasCall bool
	// deepCall: the function calls one that may call others (one that is
	// not a leaf, or any through call_indirect), so its frame can be one of
	// many in a call chain: its counter's blocks grow to callerLevel at
	// most (see leafLevel).
	deepCall bool
	// level is the highest level of the blocks its checks take: leafLevel,
	// or callerLevel with deepCall.
	level  byte
	checks int // checks inserted
	exit   int // the most unpaid cost with which the function can return
	acc    int // unpaid cost since the last check, or unreachable
}

func (b *bodyMeter) scan() bool  { return b.mode == modeScan }
func (b *bodyMeter) write() bool { return b.mode == modeWrite }

// codeSection instruments every function body and appends the body of the
// function that checks call when their counter is spent (see appendBuy).
func (m *module) codeSection(r *reader) ([]byte, *Error) {
	off := r.off()
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	if n != uint32(len(m.funcTypes)) {
		return nil, malformedf(off, "code section has %d function bodies but the function section declares %d", n, len(m.funcTypes))
	}
	if len(m.leafCost) != int(n) {
		// The prescan reads what this pass reads with fewer checks: it
		// cannot have failed where this pass does not.
		return nil, malformedf(off, "code section read differently in two passes")
	}
	m.setIndirectCost()
	added := uint32(0)
	if n > 0 {
		added = 1
	}
	out := appendU32(make([]byte, 0, len(r.buf)+len(r.buf)/4+64), n+added)
	if m.depthLimit() {
		m.restore = m.appendPop(nil)
	}
	for i := uint32(0); i < n; i++ {
		fn := m.funcImports + i
		sizeOff := r.off()
		size, err := r.u32()
		if err == nil && size > m.opts.MaxFuncBytes {
			err = overLimit(ErrModuleLimit, sizeOff, uint64(size), m.opts.MaxFuncBytes, "body of %d bytes")
		}
		if err == nil && int64(size) > int64(r.remaining()) {
			err = r.errorf("function body of %d bytes runs past the end of the section", size)
		}
		if err != nil {
			err.Func = int(fn)
			return nil, err
		}
		body := newReader(r.buf[r.pos:r.pos+int(size)], r.off())
		r.pos += int(size)
		if out, err = m.instrumentBody(out, i, body); err != nil {
			err.Func = int(fn)
			return nil, err
		}
	}
	if err := endOf(r); err != nil {
		return nil, err
	}
	if added > 0 {
		out = m.appendBuy(out)
	}
	return out, nil
}

// instrumentBody appends the size-prefixed instrumented body of defined
// function i to out.
func (m *module) instrumentBody(out []byte, i uint32, r *reader) ([]byte, *Error) {
	groups, err := r.count(2)
	if err != nil {
		return nil, err
	}
	localsStart, localsOff := r.pos, r.off()
	// At most 2^32 locals in each of fewer than 2^32 groups: no overflow.
	total := uint64(m.typeParams[m.funcTypes[i]])
	for g := uint32(0); g < groups; g++ {
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		total += uint64(c)
		if err := r.valType(); err != nil {
			return nil, err
		}
	}
	// wazero allocates stack space per declared local, so a few bytes
	// declaring 2^32 locals must not reach it.
	if total > uint64(m.opts.MaxLocals) {
		return nil, overLimit(ErrModuleLimit, localsOff, total, m.opts.MaxLocals, "declares %d locals (parameters included)")
	}
	locals := r.buf[localsStart:r.pos]
	// The counter and the weight local take the first indices after all
	// original locals; any original instruction naming them is rejected by
	// walk.
	counter := uint32(total)

	// A body the prescan could not read is one this pass refuses too.
	scanned := int(i) < m.scannedBodies
	leaf := scanned && m.leafCost[i] >= 0
	codeStart := r.pos
	m.loops = m.loops[:0]
	learnt := &bodyMeter{mode: modeLearn, leaf: leaf, counter: counter}
	if err := m.walk(&rewriter{r: r}, learnt); err != nil {
		return nil, err
	}
	r.pos = codeStart
	b := &bodyMeter{mode: modeWrite, leaf: leaf, counter: counter, level: leafLevel}
	if learnt.deepCall {
		b.level = callerLevel
	}
	w := &rewriter{r: r, mark: r.pos, out: m.scratch[:0]}
	m.rets = m.rets[:0]
	if err := m.walk(w, b); err != nil {
		return nil, err
	}
	if !r.eof() {
		return nil, r.errorf("%d bytes after the end of the function body", r.remaining())
	}
	if !scanned || b.hasCall == b.leaf || (b.leaf && int32(b.exit) != m.leafCost[i]) {
		return nil, r.errorf("function body read differently in two passes")
	}
	w.flush()
	code := w.out
	m.scratch = code[:0]

	// Assemble: locals (plus the counter and the weight), the entry check,
	// the code. A calling function pays at entry for the code after its
	// last check (b.exit); a function with checks takes its counter's first
	// credit there too (entryCredit). With a depth limit, a calling function also pushes
	// a frame at entry and runs its code inside a block that has the
	// function's results, so that every way out but return and the tail
	// calls (which pop the frame themselves) ends up after the block, where
	// the frame is popped.
	counted := b.checks > 0
	depth := b.hasCall && m.depthLimit()
	var entry []byte
	switch {
	case b.hasCall:
		weight := int64(max(b.exit, 1))
		if counted {
			weight += entryCredit
		}
		entry = m.appendEntry(make([]byte, 0, 80), weight)
	case counted:
		entry = m.appendCharge(make([]byte, 0, 40), entryCredit)
	}
	if counted {
		entry = append(entry, opI32Const)
		entry = appendS64(entry, entryCredit<<levelBits)
		entry = append(entry, opLocalSet)
		entry = appendU32(entry, counter)
	}
	if depth {
		entry = append(entry, opBlock)
		entry = appendS64(entry, m.blockTypes[m.funcTypes[i]])
	}
	var extra []byte // declarations of the added locals
	if counted {
		// $n and $w
		groups++
		extra = []byte{2, typeI32}
	}
	var head [5]byte
	groupsLEB := appendU32(head[:0], groups)
	size := len(groupsLEB) + len(locals) + len(extra) + len(entry) + len(code)
	if depth {
		// a pop before each return, and a pop and the function's end after
		// the block
		size += (len(m.rets)+1)*len(m.restore) + 1
	}
	out = appendU32(out, uint32(size))
	out = append(out, groupsLEB...)
	out = append(out, locals...)
	out = append(out, extra...)
	out = append(out, entry...)
	if !depth {
		return append(out, code...), nil
	}
	prev := 0
	for _, at := range m.rets {
		out = append(out, code[prev:at]...)
		out = append(out, m.restore...)
		prev = at
	}
	out = append(out, code[prev:]...) // its final end closes the block
	out = append(out, m.restore...)
	return append(out, opEnd), nil
}

// prescan reads the code section before any section is written, to learn
// what rewriting the earlier sections and the calls needs: which functions
// call others, what a call to each of the others costs its caller
// (m.leafCost), and which functions ref.func names in code (m.refOrder). It
// reports no errors: on malformed input it stops, and the main pass, which
// reads the same with more checks, reports the error where it is. Until then
// the bodies it could not read count as leaves of cost 0.
func (m *module) prescan() {
	payload, off, ok := findSection(m.in, secCode)
	if !ok {
		return
	}
	r := newReader(payload, off)
	n, err := r.count(3)
	if err != nil {
		return
	}
	m.leafCost = make([]int32, n)
	for i := range m.leafCost {
		size, err := r.u32()
		if err != nil || size > m.opts.MaxFuncBytes || int64(size) > int64(r.remaining()) {
			return
		}
		body := newReader(r.buf[r.pos:r.pos+int(size)], r.off())
		r.pos += int(size)
		groups, err := body.count(2)
		if err != nil {
			return
		}
		for g := uint32(0); g < groups; g++ {
			if _, err := body.u32(); err != nil {
				return
			}
			if _, err := body.byte(); err != nil {
				return
			}
		}
		b := &bodyMeter{mode: modeScan}
		if err := m.walk(&rewriter{r: body, mark: body.pos}, b); err != nil || !body.eof() {
			return
		}
		m.leafCost[i] = -1
		if !b.hasCall {
			m.leafCost[i] = int32(b.exit)
		}
		m.scannedBodies = i + 1
	}
}

// findSection returns the payload of the first section with the given id
// and its offset in the module.
func findSection(in []byte, id byte) (payload []byte, off int, ok bool) {
	if len(in) < len(header) {
		return nil, 0, false
	}
	r := newReader(in[len(header):], len(header))
	for !r.eof() {
		sid, err := r.byte()
		if err != nil {
			return nil, 0, false
		}
		size, err := r.u32()
		if err != nil {
			return nil, 0, false
		}
		off := r.off()
		p, err := r.bytes(int(size))
		if err != nil {
			return nil, 0, false
		}
		if sid == id {
			return p, off, true
		}
	}
	return nil, 0, false
}

// callsOthers reports whether function idx may call others: it is defined
// and not a leaf.
func (m *module) callsOthers(idx uint32) bool {
	return idx >= m.funcImports && m.leafCost[idx-m.funcImports] < 0
}

// calleeCost is what a call to function idx adds to its caller's unpaid
// cost: a leaf's cost after its last check (b.exit), which nobody else
// pays; a calling function pays its own at entry, and imported functions
// are the host's.
func (m *module) calleeCost(idx uint32) int {
	if idx < m.funcImports {
		return 0
	}
	return max(int(m.leafCost[idx-m.funcImports]), 0)
}

// setIndirectCost sets what call_indirect adds to its caller's unpaid
// cost: the largest calleeCost of any function the module can put in a
// table (named by an element segment, a ref.func or an export).
func (m *module) setIndirectCost() {
	m.indirectCost = 0
	for i, c := range m.leafCost {
		if int(c) > m.indirectCost && m.isRef(m.funcImports+uint32(i)) {
			m.indirectCost = int(c)
		}
	}
}

// markRef records that function idx can be put in a table.
func (m *module) markRef(idx uint32) {
	if m.refd == nil {
		m.refd = make([]bool, m.numFuncs())
	}
	if idx < uint32(len(m.refd)) {
		m.refd[idx] = true
	}
}

func (m *module) isRef(idx uint32) bool { return idx < uint32(len(m.refd)) && m.refd[idx] }

// noteRefFunc records, during the prescan, that ref.func names function
// idx in code.
func (m *module) noteRefFunc(idx uint32) {
	if m.refSeen == nil {
		m.refSeen = make(map[uint32]bool)
	}
	if !m.refSeen[idx] {
		m.refSeen[idx] = true
		m.refOrder = append(m.refOrder, idx)
	}
}

// walk decodes the instructions of a function body up to its final end and
// meters them (see the package documentation); in modeWrite it writes the
// result to w: it remaps function indices, replaces ref.func with
// global.get of the global holding the reference, inserts a check at every
// loop header and wherever a path would otherwise run up more than
// maxUnpaid of unpaid cost, and before the branches back to a loop whose
// check charges the weight local, code that sets it. The unpaid cost of a
// path is followed through blocks, ifs and branches: at the end of a block
// it is the most of the paths that reach it. With a depth limit it also
// records in m.rets where in w.out each return, return_call and
// return_call_indirect starts.
func (m *module) walk(w *rewriter, b *bodyMeter) *Error {
	r := w.r
	rets := m.depthLimit() && b.write()
	loops := 0 // loops met so far
	ctl := append(m.ctl[:0], ctlFrame{merge: unreachable})
	defer func() { m.ctl = ctl[:0] }()
	b.acc = 0
	for len(ctl) > 0 {
		start, off := r.pos, r.off()
		op, err := r.byte()
		if err != nil {
			return r.errorf("function body ends inside a block")
		}
		cost := 1
		var idx uint32 // the function index of call, return_call and ref.func
		idxAt := 0     // and where it starts
		var label, params uint32
		labels := m.labels[:0]
		deep := false // a call to a function that may call others
		switch {
		case op == opNop, op == opElse, op == opEnd:
			cost = 0
		case op == opUnreachable, op == opReturn,
			op == opDrop, op == opSelect, op == opRefIsNull,
			op >= opI32Eqz && op <= opI64Extend32S:
			// No immediates.
		case op == opBlock, op == opLoop, op == opIf:
			params, err = m.blockType(r, b.scan())
			if op != opIf {
				cost = 0
			}
		case op == opBr, op == opBrIf:
			label, err = r.u32()
		case op == opBrTable:
			var n uint32
			if n, err = r.count(1); err == nil {
				for j := uint32(0); j <= n && err == nil; j++ {
					var l uint32
					if l, err = r.u32(); err == nil {
						labels = append(labels, l)
					}
				}
			}
			m.labels = labels
		case op == opCall, op == opReturnCall:
			b.hasCall = true
			idxAt = r.pos
			if idx, err = m.funcRef(r, b.scan()); err == nil && !b.scan() {
				cost += m.calleeCost(idx)
				deep = op == opCall && m.callsOthers(idx)
			}
		case op == opCallIndirect, op == opReturnCallIn:
			b.hasCall = true
			if _, err = r.u32(); err == nil { // type index
				_, err = r.u32() // table index
			}
			cost += m.indirectCost
			deep = op == opCallIndirect
		case op == opSelectT:
			var n uint32
			if n, err = r.u32(); err == nil {
				if n != 1 {
					err = malformedf(off, "select with %d types", n)
				} else {
					err = r.valType()
				}
			}
		case op >= opLocalGet && op <= opLocalTee:
			var i uint32
			if i, err = r.u32(); err == nil && !b.scan() && i >= b.counter {
				err = malformedf(off, "local index %d out of range (the function has %d locals)", i, b.counter)
			}
		case op == opGlobalGet, op == opGlobalSet:
			var i uint32
			if i, err = r.u32(); err == nil && !b.scan() && i >= m.globals {
				err = malformedf(off, "global index %d out of range (the module has %d globals)", i, m.globals)
			}
		case op == opTableGet, op == opTableSet, op == opMemorySize, op == opMemoryGrow:
			_, err = r.u32()
		case op >= opI32Load && op <= opI64Store32:
			err = r.memArg()
		case op == opI32Const:
			err = r.skipSigned(32)
		case op == opI64Const:
			err = r.skipSigned(64)
		case op == opF32Const:
			_, err = r.bytes(4)
		case op == opF64Const:
			_, err = r.bytes(8)
		case op == opRefNull:
			err = r.refType()
		case op == opRefFunc:
			idxAt = r.pos
			if idx, err = m.funcRef(r, b.scan()); err == nil && b.scan() {
				m.noteRefFunc(idx)
			}
		case op == prefixMisc:
			err = r.miscInstr(off)
		case op == prefixSIMD:
			err = r.simdInstr(off)
		case op == prefixAtomic:
			err = r.atomicInstr(off)
		default:
			if what, ok := unsupportedOps[op]; ok {
				err = unsupportedf(off, "opcode %#x: %s", op, what)
			} else {
				err = malformedf(off, "unknown opcode %#x", op)
			}
		}
		if err != nil {
			return err
		}

		// Meter.
		switch op {
		case opBlock:
			ctl = append(ctl, ctlFrame{merge: unreachable})
		case opLoop:
			ctl = append(ctl, ctlFrame{loop: true, merge: unreachable, info: loops})
			m.loopHeader(w, b, &ctl[len(ctl)-1], start, params > 0)
			loops++
		case opIf:
			m.account(w, b, start, cost)
			ctl = append(ctl, ctlFrame{isIf: true, start: b.acc, merge: unreachable})
		case opElse:
			f := &ctl[len(ctl)-1]
			if !f.isIf || f.hasElse {
				return malformedf(off, "else outside an if")
			}
			f.merge = max(f.merge, b.acc)
			f.hasElse = true
			b.acc = f.start
		case opEnd:
			f := ctl[len(ctl)-1]
			ctl = ctl[:len(ctl)-1]
			if !f.loop {
				b.acc = max(b.acc, f.merge)
			}
			if f.isIf && !f.hasElse {
				b.acc = max(b.acc, f.start)
			}
			if len(ctl) == 0 {
				b.exit = max(b.exit, b.acc)
			}
		case opBr, opBrIf:
			f, err := frameAt(ctl, label, off)
			if err != nil {
				return err
			}
			m.account(w, b, start, cost)
			if f.loop {
				m.branchBack(w, b, f, start, true)
			} else {
				f.merge = max(f.merge, b.acc)
			}
			if op == opBr {
				b.acc = unreachable
			}
		case opBrTable:
			for _, l := range labels {
				if _, err := frameAt(ctl, l, off); err != nil {
					return err
				}
			}
			m.account(w, b, start, cost)
			set := true // the weight is set once for all the loops
			for _, l := range labels {
				if f, _ := frameAt(ctl, l, off); f.loop {
					set = !m.branchBack(w, b, f, start, set) && set
				} else {
					f.merge = max(f.merge, b.acc)
				}
			}
			b.acc = unreachable
		case opReturn, opReturnCall, opReturnCallIn:
			m.account(w, b, start, cost)
			b.exit = max(b.exit, b.acc)
			b.acc = unreachable
			if rets {
				// the frame is popped just before: see instrumentBody
				m.rets = append(m.rets, w.cut(start))
			}
		case opUnreachable:
			m.account(w, b, start, cost)
			b.acc = unreachable
		default:
			m.account(w, b, start, cost)
		}

		if deep && b.acc >= 0 {
			b.deepCall = true
		}

		// Rewrite.
		switch {
		case !b.write():
		case op == opCall, op == opReturnCall:
			w.replace(idxAt, r.pos)
			w.out = appendU32(w.out, m.remapFunc(idx))
		case op == opRefFunc:
			g, ok := m.refGlobals[idx]
			if !ok {
				return malformedf(off, "ref.func %d was not seen by the prescan", idx)
			}
			w.replace(start, r.pos)
			w.out = append(w.out, opGlobalGet)
			w.out = appendU32(w.out, g)
		}
	}
	return nil
}

// frameAt returns the frame that branch label l of the instruction at off
// targets.
func frameAt(ctl []ctlFrame, l uint32, off int) (*ctlFrame, *Error) {
	if l >= uint32(len(ctl)) {
		return nil, malformedf(off, "branch to label %d, %d blocks deep", l, len(ctl))
	}
	return &ctl[len(ctl)-1-int(l)], nil
}

// funcRef reads the function index of call, return_call or ref.func.
func (m *module) funcRef(r *reader, scan bool) (uint32, *Error) {
	off := r.off()
	idx, err := r.u32()
	if err == nil && !scan && idx >= m.numFuncs() {
		err = malformedf(off, "function index %d out of range (the module has %d functions)", idx, m.numFuncs())
	}
	return idx, err
}

// account adds the cost of the instruction at start to the unpaid cost of
// the path, first inserting a check that charges what is unpaid if the sum
// would exceed maxUnpaid.
func (m *module) account(w *rewriter, b *bodyMeter, start, cost int) {
	if b.acc < 0 || cost == 0 {
		return
	}
	if b.acc > 0 && b.acc+cost > maxUnpaid {
		m.insertCheck(w, b, start, b.acc)
		b.acc = 0
	}
	b.acc += cost
}

// branchBack meters a branch at start back to loop f: the first walk
// learns its weight (the unpaid cost of the path, the branch included), the
// second, if set and f's header charges the weight local, sets it there:
//
//	i32.const acc*8  local.set $w
//
// It reports whether it wrote.
func (m *module) branchBack(w *rewriter, b *bodyMeter, f *ctlFrame, start int, set bool) bool {
	if b.acc < 0 {
		return false
	}
	switch b.mode {
	case modeLearn:
		li := &m.loops[f.info]
		li.minBack = min(li.minBack, b.acc)
		li.maxBack = max(li.maxBack, b.acc)
	case modeWrite:
		if set && f.variable {
			m.setWeight(w, b, start)
			return true
		}
	}
	return false
}

// setWeight writes before the instruction at start code that sets the
// weight local to the unpaid cost of the path.
func (m *module) setWeight(w *rewriter, b *bodyMeter, start int) {
	w.cut(start)
	w.out = append(w.out, opI32Const)
	w.out = appendS64(w.out, int64(b.acc)<<levelBits)
	w.out = append(w.out, opLocalSet)
	w.out = appendU32(w.out, b.counter+1)
}

// loopHeader meters the loop f whose opcode is at start (its block type
// just read) with a check at its header, the start of every iteration,
// which charges the cost of the path that led there: each iteration is
// paid at the start of the next, and the path into the loop at the start
// of the first. If the branches back to the loop (learnt by the first
// walk) have about the same weight, the check charges the most of them, a
// constant, and a check just before the loop charges what the path into
// it costs beyond that; otherwise the check charges the weight local, which
// the path into the loop and every branch back set (see appendLoopCheck).
func (m *module) loopHeader(w *rewriter, b *bodyMeter, f *ctlFrame, start int, params bool) {
	if b.mode == modeLearn {
		m.loops = append(m.loops, loopInfo{entry: b.acc, minBack: math.MaxInt, maxBack: unreachable})
	}
	if b.acc < 0 {
		return // nothing reaches the loop
	}
	b.checks++
	if b.write() {
		li := m.loops[f.info]
		c, ok := li.constant()
		f.variable = !ok
		var weight func([]byte) []byte
		if ok {
			if li.entry > c {
				m.insertCheck(w, b, start, li.entry-c)
			}
			weight = func(out []byte) []byte {
				out = append(out, opI32Const)
				return appendS64(out, int64(c)<<levelBits)
			}
		} else {
			m.setWeight(w, b, start)
			weight = func(out []byte) []byte {
				out = append(out, opLocalGet)
				return appendU32(out, b.counter+1)
			}
		}
		w.cut(w.r.pos)
		w.out = m.appendLoopCheck(w.out, b.counter, b.level, weight, !params)
	}
	b.acc = 0
}

// constant reports whether the loop's header check can charge a constant,
// and which: the most that a branch back to the loop charges, if the least
// is not much less (otherwise every iteration pays for the most costly
// path); what entering the loop costs beyond it is charged separately.
func (li loopInfo) constant() (int, bool) {
	if li.maxBack < 0 {
		return li.entry, true // nothing branches back
	}
	return li.maxBack, li.maxBack-li.minBack <= max(li.minBack/2, 8)
}

func (m *module) insertCheck(w *rewriter, b *bodyMeter, at, weight int) {
	b.checks++
	if !b.write() {
		return
	}
	w.cut(at)
	w.out = m.appendCheck(w.out, b.counter, b.level, weight)
}

// blockType reads the block type of block, loop or if: empty, one value
// type, or a type index (multi-value), encoded together as an s33. It
// returns the number of parameters the block takes; in a scan it neither
// checks a type index nor counts its parameters (the types are not read
// yet).
func (m *module) blockType(r *reader, scan bool) (params uint32, err *Error) {
	off := r.off()
	bt, err := r.s33()
	if err != nil {
		return 0, err
	}
	if bt >= 0 {
		if scan {
			return 0, nil
		}
		if bt >= int64(len(m.typeParams)) {
			return 0, malformedf(off, "block type index %d out of range", bt)
		}
		return m.typeParams[bt], nil
	}
	switch byte(bt & 0x7f) {
	case blockEmpty, typeI32, typeI64, typeF32, typeF64, typeV128, typeFuncref, typeExternref:
		if bt >= -64 { // a single byte
			return 0, nil
		}
	}
	return 0, malformedf(off, "invalid block type %d", bt)
}

func (r *reader) memArg() *Error {
	if _, err := r.u32(); err != nil { // alignment
		return err
	}
	_, err := r.u32() // offset
	return err
}

// u32s skips n unsigned LEB128 immediates.
func (r *reader) u32s(n int) *Error {
	for ; n > 0; n-- {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// miscInstr reads a 0xfc-prefixed instruction: saturating truncation (0-7),
// bulk memory and table instructions (8-17). Its sub-opcode is a u32.
func (r *reader) miscInstr(off int) *Error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 7: // i32/i64.trunc_sat_f32/f64_s/u
		return nil
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
		// data.drop, memory.fill, elem.drop, table.grow/size/fill
		return r.u32s(1)
	case sub == 8, sub == 10, sub == 12, sub == 14:
		// memory.init, memory.copy, table.init, table.copy
		return r.u32s(2)
	}
	return malformedf(off, "unknown opcode 0xfc %d", sub)
}

// simdInstr reads a 0xfd-prefixed instruction (SIMD).
func (r *reader) simdInstr(off int) *Error {
	sub, err := r.byte()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load32/64_zero
		return r.memArg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		_, err = r.bytes(16)
		return err
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		_, err = r.byte()
		return err
	case sub >= 84 && sub <= 91: // load/store lane
		if err = r.memArg(); err == nil {
			_, err = r.byte()
		}
		return err
	case simdUnassigned[sub]:
		return malformedf(off, "unknown opcode 0xfd %d", sub)
	}
	return nil
}

// atomicInstr reads a 0xfe-prefixed instruction (threads).
func (r *reader) atomicInstr(off int) *Error {
	sub, err := r.byte()
	if err != nil {
		return err
	}
	switch {
	case sub == 0x03: // atomic.fence
		_, err = r.byte()
		return err
	case sub <= 0x02, sub >= 0x10 && sub <= 0x4e:
		return r.memArg()
	}
	return malformedf(off, "unknown opcode 0xfe %#x", sub)
}

// A counter $n holds credit already taken from the fuel, times 8, plus in
// its low 3 bits the level of the next block it takes: level l buys
// minBlock << l units, and each purchase raises the level, up to leafLevel
// (blocks of 64 Ki units). A check compares the counter with its weight
// times 8 and subtracts that.
//
// Credit a frame holds while it calls deeper is spent without touching the
// fuel when the callee returns, possibly after the deadline: the frames of
// a call chain together could hold its depth times a block. So in the
// functions that call others that may call further (deepCall), the only
// ones a long chain is made of, blocks grow up to callerLevel only, 4 Ki
// units. Only the last two frames of a chain can hold the larger
// blocks of other functions. With the default depth limit of 10,000
// frames, a contrived guest could so run on for about 45M units (a few
// tens of milliseconds at most) after its deadline.
const (
	levelBits   = 3
	leafLevel   = 1<<levelBits - 1
	callerLevel = 3
)

// appendCheck appends a check that charges weight to the function's
// counter $n:
//
//	local.get $n  i32.const weight*8  i32.lt_s
//	if  local.get $n  i32.const level  call $buy  local.set $n  end
//	local.get $n  i32.const weight*8  i32.sub  local.set $n
//
// The counter lives in a register: the check is a comparison, a branch and
// a subtraction. Only when its credit does not cover the weight does $buy
// take another block from the fuel (see appendBuy), each block of an
// activation twice as large as the one before, up to level (see
// leafLevel), so that a long loop rarely calls $buy and a short activation
// takes little. (Testing before subtracting keeps the counter in a
// register in wazero's compiler; a value computed before the branch to
// the call is kept in memory.)
func (m *module) appendCheck(b []byte, counter uint32, level byte, weight int) []byte {
	w := func(b []byte) []byte {
		b = append(b, opI32Const)
		return appendS64(b, int64(weight)<<levelBits)
	}
	return m.appendSpent(b, counter, level, w, false)
}

// appendLoopCheck appends the check at a loop header, which charges a
// constant or the weight local $w (the weight times 8), set by whatever
// entered the loop or branched back to it:
//
//	local.get $n  local.get $w  i32.lt_s
//	if  local.get $n  i32.const level  call $buy  local.set $n  br 1  end
//	local.get $n  local.get $w  i32.sub  local.set $n
//
// After it has taken a block of credit, the slow path restarts the
// iteration with br instead of falling through into the loop body (the
// check then passes): wazero's compiler reloads the memory base, memory
// length and mutable globals after any call, and a path from the call
// merging into the body makes them loop-carried values, which costs up to
// 1.5x on tight loops that access memory. A loop with parameters cannot be
// restarted without them, so there the slow path falls through, as in
// appendCheck.
func (m *module) appendLoopCheck(b []byte, counter uint32, level byte, weight func([]byte) []byte, restart bool) []byte {
	return m.appendSpent(b, counter, level, weight, restart)
}

// appendSpent appends a check that charges the weight weight appends; its
// counter's blocks grow up to level.
func (m *module) appendSpent(b []byte, counter uint32, level byte, weight func([]byte) []byte, restart bool) []byte {
	b = append(b, opLocalGet)
	b = appendU32(b, counter)
	b = weight(b)
	b = append(b, opI32LtS, opIf, blockEmpty, opLocalGet)
	b = appendU32(b, counter)
	b = append(b, opI32Const, level, opCall)
	b = appendU32(b, m.buyFunc)
	b = append(b, opLocalSet)
	b = appendU32(b, counter)
	if restart {
		b = append(b, opBr, 1) // to the loop, around the if
	}
	b = append(b, opEnd, opLocalGet)
	b = appendU32(b, counter)
	b = weight(b)
	b = append(b, opI32Sub, opLocalSet)
	return appendU32(b, counter)
}

// appendBuy appends the size-prefixed body of $buy, of type
// (i32 $n, i32 $top) -> i32, which takes the next block of credit for a
// counter $n from the fuel and returns the new counter, its level raised up
// to $top. A block is at least minBlock, more than any check's weight, so
// the check that called it then passes:
//
//	local.get $n  i32.const 7  i32.and  local.set $l
//	i32.const minBlock  local.get $l  i32.shl  local.set $blk
//	global.get $fuel  local.get $blk  i64.extend_i32_u  i64.sub  global.set $fuel
//	global.get $fuel  i64.const 0  i64.lt_s
//	if  call $refill  global.set $fuel  end
//	local.get $n  i32.const -8  i32.and
//	local.get $blk  i32.const 3  i32.shl  i32.add
//	local.get $l  i32.const 1  i32.add  local.tee $l
//	local.get $top  local.get $l  local.get $top  i32.lt_u  select
//	i32.or
func (m *module) appendBuy(out []byte) []byte {
	const n, top, l, blk = 0, 1, 2, 3
	b := []byte{0x01, 0x02, typeI32, // $l, $blk
		opLocalGet, n, opI32Const, leafLevel, opI32And, opLocalSet, l,
		opI32Const}
	b = appendS64(b, minBlock)
	b = append(b, opLocalGet, l, opI32Shl, opLocalSet, blk)
	b = appendGlobalGet(b, m.fuelGlobal)
	b = append(b, opLocalGet, blk, opI64ExtendI32U, opI64Sub, opGlobalSet)
	b = appendU32(b, m.fuelGlobal)
	b = appendGlobalGet(b, m.fuelGlobal)
	b = append(b, opI64Const, 0x00, opI64LtS, opIf, blockEmpty, opCall)
	b = appendU32(b, m.refillFunc)
	b = append(b, opGlobalSet)
	b = appendU32(b, m.fuelGlobal)
	b = append(b, opEnd,
		opLocalGet, n, opI32Const, 0x78, opI32And, // -8
		opLocalGet, blk, opI32Const, levelBits, opI32Shl, opI32Add,
		opLocalGet, l, opI32Const, 1, opI32Add, opLocalTee, l,
		opLocalGet, top, opLocalGet, l, opLocalGet, top, opI32LtU, opSelect,
		opI32Or, opEnd)
	out = appendU32(out, uint32(len(b)))
	return append(out, b...)
}

// appendCharge appends code that subtracts weight from the fuel and refills
// it if it went negative:
//
//	global.get $fuel  i64.const weight  i64.sub  global.set $fuel
//	global.get $fuel  i64.const 0  i64.lt_s
//	if  call $refill  global.set $fuel  end
func (m *module) appendCharge(b []byte, weight int64) []byte {
	b = append(b, opGlobalGet)
	b = appendU32(b, m.fuelGlobal)
	b = append(b, opI64Const)
	b = appendS64(b, weight)
	b = append(b, opI64Sub, opGlobalSet)
	b = appendU32(b, m.fuelGlobal)
	b = append(b, opGlobalGet)
	b = appendU32(b, m.fuelGlobal)
	b = append(b, opI64Const, 0x00, opI64LtS, opIf, blockEmpty, opCall)
	b = appendU32(b, m.refillFunc)
	b = append(b, opGlobalSet)
	b = appendU32(b, m.fuelGlobal)
	return append(b, opEnd)
}

// appendEntry appends the entry check of a calling function: the fuel
// charge of appendCharge and, with a depth limit, the push of one frame on
// the depth counter, which counts down the frames that remain:
//
//	<charge weight>
//	global.get $depth  i64.const 1  i64.sub  global.set $depth
//	global.get $depth  i64.const 0  i64.lt_s
//	if  call $too_deep  unreachable  end
//
// Two separate tests measured faster on wazero's compiler than one test of
// the or of both counters (Rust fib: 1.25x against 1.37x the uninstrumented
// time, fuel alone 1.2x). Keeping the counter in a local for the exit, rather
// than reloading the global, slowed functions with loops (matmul 1.45x).
func (m *module) appendEntry(b []byte, weight int64) []byte {
	b = m.appendCharge(b, weight)
	if !m.depthLimit() {
		return b
	}
	b = m.appendSub(b, m.depthGlobal, 1)
	b = appendGlobalGet(b, m.depthGlobal)
	b = append(b, opI64Const, 0x00, opI64LtS, opIf, blockEmpty, opCall)
	b = appendU32(b, m.tooDeepFunc)
	return append(b, opUnreachable, opEnd)
}

// appendPop appends the code that pops a frame off the depth counter:
//
//	global.get $depth  i64.const 1  i64.add  global.set $depth
func (m *module) appendPop(b []byte) []byte {
	b = appendGlobalGet(b, m.depthGlobal)
	b = append(b, opI64Const, 0x01, opI64Add, opGlobalSet)
	return appendU32(b, m.depthGlobal)
}

// appendSub appends global.get $g  i64.const v  i64.sub  global.set $g.
func (m *module) appendSub(b []byte, g uint32, v int64) []byte {
	b = appendGlobalGet(b, g)
	b = append(b, opI64Const)
	b = appendS64(b, v)
	b = append(b, opI64Sub, opGlobalSet)
	return appendU32(b, g)
}

func appendGlobalGet(b []byte, g uint32) []byte {
	return appendU32(append(b, opGlobalGet), g)
}

// appendS64 appends v as a signed LEB128 number.
func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
