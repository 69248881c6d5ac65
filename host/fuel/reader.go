package fuel

// This file holds the byte-level decoding and encoding primitives. Every
// read is bounds-checked and returns an error instead of panicking, and every
// vector length is checked against the bytes that remain before anything is
// allocated for it, so malformed input costs at most a linear amount of work.

// reader decodes one region of the input module. Offsets in errors are
// absolute offsets into the module so that a reader over a section or a
// function body still reports positions a user can find with a hex dump.
type reader struct {
	buf  []byte
	pos  int
	base int // absolute offset of buf[0] in the module
}

func newReader(buf []byte, base int) *reader { return &reader{buf: buf, base: base} }

// off is the absolute offset of the next unread byte.
func (r *reader) off() int { return r.base + r.pos }

func (r *reader) remaining() int { return len(r.buf) - r.pos }

func (r *reader) eof() bool { return r.pos >= len(r.buf) }

// errorf reports a malformed encoding at the reader's current offset.
func (r *reader) errorf(format string, args ...any) *Error {
	return malformedf(r.off(), format, args...)
}

func (r *reader) byte() (byte, *Error) {
	if r.pos >= len(r.buf) {
		return 0, r.errorf("unexpected end of data")
	}
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}

func (r *reader) bytes(n int) ([]byte, *Error) {
	if n < 0 || n > r.remaining() {
		return nil, r.errorf("need %d bytes, %d remain", n, r.remaining())
	}
	b := r.buf[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

// leb reads an LEB128 number of at most maxBytes bytes and returns its raw
// (not sign-extended) bits and its encoded length.
func (r *reader) leb(maxBytes int) (uint64, int, *Error) {
	start := r.pos
	var v uint64
	for i := 0; i < maxBytes; i++ {
		if r.pos >= len(r.buf) {
			r.pos = start
			return 0, 0, r.errorf("truncated LEB128 number")
		}
		b := r.buf[r.pos]
		r.pos++
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	r.pos = start
	return 0, 0, r.errorf("LEB128 number longer than %d bytes", maxBytes)
}

// u32 reads an unsigned LEB128 32-bit integer.
func (r *reader) u32() (uint32, *Error) {
	start := r.pos
	v, _, err := r.leb(5)
	if err != nil {
		return 0, err
	}
	if v > 0xffffffff {
		r.pos = start
		return 0, r.errorf("LEB128 number overflows 32 bits")
	}
	return uint32(v), nil
}

// s33 reads a signed LEB128 33-bit integer (block types).
func (r *reader) s33() (int64, *Error) {
	v, n, err := r.leb(5)
	if err != nil {
		return 0, err
	}
	shift := uint(7 * n)
	if shift < 64 && v&(1<<(shift-1)) != 0 {
		v |= ^uint64(0) << shift // sign-extend
	}
	s := int64(v)
	if s < -(1<<32) || s >= 1<<32 {
		return 0, r.errorf("block type overflows 33 bits")
	}
	return s, nil
}

// skipSigned skips a signed LEB128 constant of the given bit width.
func (r *reader) skipSigned(bits int) *Error {
	_, _, err := r.leb((bits + 6) / 7)
	return err
}

// count reads a vector length and rejects it unless at least minSize bytes
// per element remain, so that a forged length cannot drive a large
// allocation or a long loop.
func (r *reader) count(minSize int) (uint32, *Error) {
	start := r.off()
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		return 0, malformedf(start, "vector of %d elements does not fit in the %d remaining bytes", n, r.remaining())
	}
	return n, nil
}

// countLimited is count, but before it checks the length against the bytes
// that remain it passes it to check, which refuses a length over a limit
// (so that the error names the limit rather than the short section).
func (r *reader) countLimited(minSize int, check func(n uint32, off int) *Error) (uint32, *Error) {
	start := r.off()
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if err := check(n, start); err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		return 0, malformedf(start, "vector of %d elements does not fit in the %d remaining bytes", n, r.remaining())
	}
	return n, nil
}

// name reads a length-prefixed byte string.
func (r *reader) name() ([]byte, *Error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	return r.bytes(int(n))
}

// appendU32 appends v as an unsigned LEB128 number.
func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendName appends a length-prefixed byte string.
func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

// appendSection appends a section with the given id and payload.
func appendSection(b []byte, id byte, payload []byte) []byte {
	b = append(b, id)
	b = appendU32(b, uint32(len(payload)))
	return append(b, payload...)
}
