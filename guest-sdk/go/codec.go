package dowasm

import "encoding/binary"

// The byte encodings of abi/ABI.md ("Encodings"): little-endian u32 integers, and bytes as a u32
// length followed by the data.

func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func appendBytes(b, v []byte) []byte {
	b = appendU32(b, uint32(len(v)))
	return append(b, v...)
}

func appendString(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

// reader consumes encoded fields; after the first failure every read returns zero and bad stays
// set.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u32() uint32 {
	if r.bad || len(r.b) < 4 {
		r.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// bytes returns a sub-slice of the input (no copy) whose capacity ends at its length, so an
// append by the caller never overwrites the next field.
func (r *reader) bytes() []byte {
	n := r.u32()
	if r.bad || uint64(n) > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// count reads an element count and checks that the remaining input can hold that many elements
// of at least minSize bytes each, so a corrupt count never drives a large allocation.
func (r *reader) count(minSize int) int {
	n := r.u32()
	if r.bad || uint64(n)*uint64(minSize) > uint64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

// done reports whether the input was consumed exactly.
func (r *reader) done() bool { return !r.bad && len(r.b) == 0 }
