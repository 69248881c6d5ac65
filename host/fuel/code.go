package fuel

// Opcodes Instrument reads or writes by name.
const (
	opUnreachable  = 0x00
	opNop          = 0x01
	opBlock        = 0x02
	opLoop         = 0x03
	opIf           = 0x04
	opElse         = 0x05
	opEnd          = 0x0b
	opBr           = 0x0c
	opBrIf         = 0x0d
	opBrTable      = 0x0e
	opReturn       = 0x0f
	opCall         = 0x10
	opCallIndirect = 0x11
	opReturnCall   = 0x12 // tail-call
	opReturnCallIn = 0x13 // tail-call: return_call_indirect
	opDrop         = 0x1a
	opSelect       = 0x1b
	opSelectT      = 0x1c
	opLocalGet     = 0x20
	opLocalSet     = 0x21
	opLocalTee     = 0x22
	opGlobalGet    = 0x23
	opGlobalSet    = 0x24
	opTableGet     = 0x25
	opTableSet     = 0x26
	opI32Load      = 0x28 // first load/store
	opI64Store32   = 0x3e // last load/store
	opMemorySize   = 0x3f
	opMemoryGrow   = 0x40
	opI32Const     = 0x41
	opI64Const     = 0x42
	opF32Const     = 0x43
	opF64Const     = 0x44
	opI32Eqz       = 0x45 // first numeric instruction
	opI32And       = 0x71
	opI32Sub       = 0x6b
	opI64LtS       = 0x53
	opI64Add       = 0x7c
	opI64Sub       = 0x7d
	opI64Extend32S = 0xc4 // last numeric instruction (sign extension)
	opRefNull      = 0xd0
	opRefIsNull    = 0xd1
	opRefFunc      = 0xd2
	prefixMisc     = 0xfc
	prefixSIMD     = 0xfd
	prefixAtomic   = 0xfe

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

// codeSection instruments every function body.
func (m *module) codeSection(r *reader) ([]byte, *Error) {
	off := r.off()
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	if n != uint32(len(m.funcTypes)) {
		return nil, malformedf(off, "code section has %d function bodies but the function section declares %d", n, len(m.funcTypes))
	}
	out := appendU32(make([]byte, 0, len(r.buf)+len(r.buf)/8+16), n)
	if m.depthLimit() {
		m.restore = m.appendPop(nil)
	}
	for i := uint32(0); i < n; i++ {
		fn := m.funcImports + i
		size, err := r.u32()
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
	return out, endOf(r)
}

// instrumentBody appends the size-prefixed instrumented body of defined
// function i to out.
func (m *module) instrumentBody(out []byte, i uint32, r *reader) ([]byte, *Error) {
	groups, err := r.count(2)
	if err != nil {
		return nil, err
	}
	localsStart := r.pos
	total := uint64(m.typeParams[m.funcTypes[i]])
	for g := uint32(0); g < groups; g++ {
		off := r.off()
		c, err := r.u32()
		if err != nil {
			return nil, err
		}
		if total += uint64(c); total > maxLocals {
			return nil, unsupportedf(off, "more than %d locals", maxLocals)
		}
		if err := r.valType(); err != nil {
			return nil, err
		}
	}
	locals := r.buf[localsStart:r.pos]
	// The scratch counter takes the first index after all original locals;
	// any original instruction naming it is rejected below.
	scratch := uint32(total)

	w := &rewriter{r: r, mark: r.pos, out: m.scratch[:0]}
	m.rets = m.rets[:0]
	hasLoop, hasCall, err := m.walk(w, scratch)
	if err != nil {
		return nil, err
	}
	if !r.eof() {
		return nil, r.errorf("%d bytes after the end of the function body", r.remaining())
	}
	w.flush()
	code := w.out
	m.scratch = code[:0]

	// Assemble: locals (plus the scratch i32), the entry check, the code.
	// A function that calls and loops prepays its first block of loop
	// iterations at entry, where it charges the fuel anyway, and starts its
	// counter at -1 so that the first iteration does not charge again.
	// With a depth limit, a calling function also pushes a frame at entry
	// and runs its code inside a block that has the function's results, so
	// that every way out but return and the tail calls (which pop the frame
	// themselves) ends up after the block, where the frame is popped.
	depth := hasCall && m.depthLimit()
	var entry []byte
	switch {
	case hasCall && hasLoop:
		entry = m.appendEntry(make([]byte, 0, 80), callWeight+loopWeight)
		entry = append(entry, opI32Const, 0x7f, opLocalSet)
		entry = appendU32(entry, scratch)
	case hasCall:
		entry = m.appendEntry(make([]byte, 0, 80), callWeight)
	}
	if depth {
		entry = append(entry, opBlock)
		entry = appendS64(entry, m.blockTypes[m.funcTypes[i]])
	}
	if hasLoop {
		groups++
	}
	var head [5]byte
	groupsLEB := appendU32(head[:0], groups)
	size := len(groupsLEB) + len(locals) + len(entry) + len(code)
	if hasLoop {
		size += 2
	}
	if depth {
		// a pop before each return, and a pop and the function's end after
		// the block
		size += (len(m.rets)+1)*len(m.restore) + 1
	}
	out = appendU32(out, uint32(size))
	out = append(out, groupsLEB...)
	out = append(out, locals...)
	if hasLoop {
		out = append(out, 0x01, typeI32)
	}
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

// walk decodes the instructions of a function body up to its final end,
// remapping function indices and injecting a loop check after each loop
// opcode. It reports whether the function has loops and calls. With a depth
// limit it also records in m.rets where in w.out each return, return_call
// and return_call_indirect starts.
func (m *module) walk(w *rewriter, scratch uint32) (hasLoop, hasCall bool, err *Error) {
	r := w.r
	depthLimit := m.depthLimit()
	for depth := 1; depth > 0; {
		start, off := r.pos, r.off()
		op, err := r.byte()
		if err != nil {
			return false, false, r.errorf("function body ends inside a block")
		}
		if depthLimit && (op == opReturn || op == opReturnCall || op == opReturnCallIn) {
			// the frame is popped just before: see instrumentBody
			m.rets = append(m.rets, w.cut(start))
		}
		switch {
		case op == opUnreachable, op == opNop, op == opElse, op == opReturn,
			op == opDrop, op == opSelect, op == opRefIsNull,
			op >= opI32Eqz && op <= opI64Extend32S:
			// No immediates.
		case op == opBlock, op == opIf:
			_, err = m.blockType(r)
			depth++
		case op == opLoop:
			var params uint32
			if params, err = m.blockType(r); err == nil {
				depth++
				hasLoop = true
				w.flush()
				w.out = m.appendLoopCheck(w.out, scratch, params > 0)
			}
		case op == opEnd:
			depth--
		case op == opBr, op == opBrIf:
			_, err = r.u32()
		case op == opBrTable:
			var n uint32
			if n, err = r.count(1); err == nil {
				for j := uint32(0); j <= n && err == nil; j++ {
					_, err = r.u32()
				}
			}
		case op == opCall, op == opReturnCall:
			hasCall = true
			err = w.funcIndex(m)
		case op == opCallIndirect, op == opReturnCallIn:
			hasCall = true
			if _, err = r.u32(); err == nil { // type index
				_, err = r.u32() // table index
			}
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
			var idx uint32
			if idx, err = r.u32(); err == nil && idx >= scratch {
				err = malformedf(off, "local index %d out of range (the function has %d locals)", idx, scratch)
			}
		case op == opGlobalGet, op == opGlobalSet:
			var idx uint32
			if idx, err = r.u32(); err == nil && idx >= m.globals {
				err = malformedf(off, "global index %d out of range (the module has %d globals)", idx, m.globals)
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
			err = w.funcIndex(m)
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
			return false, false, err
		}
	}
	return hasLoop, hasCall, nil
}

// blockType reads the block type of block, loop or if: empty, one value
// type, or a type index (multi-value), encoded together as an s33. It
// returns the number of parameters the block takes.
func (m *module) blockType(r *reader) (params uint32, err *Error) {
	off := r.off()
	bt, err := r.s33()
	if err != nil {
		return 0, err
	}
	if bt >= 0 {
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

// appendLoopCheck appends the code injected at a loop header:
//
//	local.get $n  i32.const 255  i32.and  i32.eqz
//	if
//	  local.get $n  i32.const 1  i32.sub  local.set $n
//	  <charge loopWeight>
//	  br $loop
//	end
//	local.get $n  i32.const 1  i32.sub  local.set $n
//
// Testing before decrementing makes the first iteration in each call of the
// function pay for a block of iterations in advance (functions that also
// call prepay at entry instead, see instrumentBody). Counting only on the
// way down would let a function whose loops run fewer than 256 iterations
// per call loop for free, however often it is called.
//
// The slow path restarts the iteration with br instead of falling through
// into the loop body: wazero's compiler reloads the memory base, memory
// length and mutable globals after any call, and a path from the call
// merging into the body makes them loop-carried values, which costs up to
// 1.5x on tight loops that access memory. A loop with parameters cannot be
// restarted without them, so there the slow path falls through.
func (m *module) appendLoopCheck(b []byte, counter uint32, hasParams bool) []byte {
	b = append(b, opLocalGet)
	b = appendU32(b, counter)
	b = append(b, opI32Const)
	b = appendS64(b, loopMask)
	b = append(b, opI32And, opI32Eqz, opIf, blockEmpty)
	if !hasParams {
		b = appendDecrement(b, counter)
	}
	b = m.appendCharge(b, loopWeight)
	if !hasParams {
		b = append(b, opBr, 1) // to the loop, around the if
	}
	b = append(b, opEnd)
	return appendDecrement(b, counter)
}

// appendDecrement appends local.get $n  i32.const 1  i32.sub  local.set $n.
func appendDecrement(b []byte, counter uint32) []byte {
	b = append(b, opLocalGet)
	b = appendU32(b, counter)
	b = append(b, opI32Const, 0x01, opI32Sub, opLocalSet)
	return appendU32(b, counter)
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
