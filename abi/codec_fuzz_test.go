package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// Fuzz targets for every decoder of the byte layouts guests hand to the host. Each checks that the
// decoder never panics, that whatever it accepts re-encodes to exactly the input (the encodings
// are canonical: lengths prefix every field and trailing bytes are refused), that accepted values
// respect the documented limits, that refusals wrap ErrMalformed (or ErrTooLarge), and that a
// hostile element count never makes the decoder allocate more than the input can hold.
//
//	go test -run '^$' -fuzz '^FuzzDecodeRequest$' -fuzztime 60s ./abi/
//
// (likewise FuzzDecodeResponse, FuzzDecodeKeys, FuzzDecodeEntries, FuzzDecodeListOptions,
// FuzzReaderCount).

// u32s encodes little-endian u32s (seeds with hostile counts).
func u32s(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// checkErr fails unless err is nil or one of the decoder's documented errors.
func checkErr(t *testing.T, what string, err error, tooLargeOK bool) {
	t.Helper()
	if err == nil || errors.Is(err, ErrMalformed) || (tooLargeOK && errors.Is(err, ErrTooLarge)) {
		return
	}
	t.Fatalf("%s: error %v wraps neither ErrMalformed nor ErrTooLarge", what, err)
}

// maxSliceCap is the largest capacity append may give a slice grown one element at a time to n
// elements (it at most doubles, plus rounding to a size class).
func maxSliceCap(n int) int { return 2*n + 8 }

func FuzzDecodeRequest(f *testing.F) {
	f.Add(EncodeRequest(nil, &Request{Method: "GET", Path: "/"}))
	f.Add(EncodeRequest(nil, &Request{Method: "POST", Path: "/a/b", Query: "x=1&y=%zz",
		Headers: []Header{{"Content-Type", "text/plain"}, {"X", ""}, {"X", "2"}}, Body: []byte("hello")}))
	f.Add(EncodeRequest(nil, &Request{Method: "\xff\x00", Path: "", Body: bytes.Repeat([]byte{0}, 100)}))
	f.Add(u32s(0, 0, 0, 0xffffffff))                                         // hostile header count
	f.Add(u32s(0, 0, 0, 1<<16, 0, 0))                                        // count at the limit, little input
	f.Add(u32s(0xffffffff))                                                  // hostile method length
	f.Add(append(EncodeRequest(nil, &Request{Method: "GET", Path: "/"}), 0)) // trailing byte
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRequest(b)
		checkErr(t, "DecodeRequest", err, false)
		if err != nil {
			return
		}
		if got := EncodeRequest(nil, q); !bytes.Equal(got, b) {
			t.Fatalf("DecodeRequest then EncodeRequest changed the bytes:\n in  %x\n out %x", b, got)
		}
		if len(q.Headers) > 1<<16 || 8*len(q.Headers) > len(b) {
			t.Fatalf("%d headers from %d bytes", len(q.Headers), len(b))
		}
		if cap(q.Headers) > maxSliceCap(len(q.Headers)) {
			t.Fatalf("headers slice cap %d for %d headers", cap(q.Headers), len(q.Headers))
		}
		// Again from the re-encoding: the value itself round-trips.
		q2, err := DecodeRequest(EncodeRequest(nil, q))
		if err != nil || q2.Method != q.Method || q2.Path != q.Path || q2.Query != q.Query ||
			!bytes.Equal(q2.Body, q.Body) || len(q2.Headers) != len(q.Headers) {
			t.Fatalf("re-decoding differs: %+v vs %+v (%v)", q2, q, err)
		}
		for i := range q.Headers {
			if q.Headers[i] != q2.Headers[i] {
				t.Fatalf("header %d: %+v vs %+v", i, q.Headers[i], q2.Headers[i])
			}
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add(EncodeResponse(nil, &Response{Status: 200}))
	f.Add(EncodeResponse(nil, &Response{Status: 404, Headers: []Header{{"Content-Type", "application/json"}}, Body: []byte(`{"a":1}`)}))
	f.Add(EncodeResponse(nil, &Response{Status: 599, Headers: []Header{{"", ""}, {"a", "b"}}}))
	f.Add(EncodeResponse(nil, &Response{Status: 199}))
	f.Add(EncodeResponse(nil, &Response{Status: 600}))
	f.Add(u32s(200, 0xffffffff))    // hostile header count
	f.Add(u32s(200, 1<<12+1, 0, 0)) // count over the limit
	f.Add(u32s(0xffffffff, 0, 0))   // status that is negative as int32
	f.Add(u32s(200, 1, 0xffff, 0))  // header name length past the input
	f.Add(u32s(200, 0, 0xffffffff)) // hostile body length
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeResponse(b)
		checkErr(t, "DecodeResponse", err, true)
		if err != nil {
			if s != nil {
				t.Fatalf("DecodeResponse returned a response with error %v", err)
			}
			return
		}
		if s.Status < 200 || s.Status > 599 {
			t.Fatalf("accepted status %d", s.Status)
		}
		total := 0
		for _, h := range s.Headers {
			total += len(h.Name) + len(h.Value)
		}
		if total > MaxHeaderSize || len(s.Body) > MaxBodySize || len(s.Headers) > 1<<12 {
			t.Fatalf("accepted headers of %d bytes (%d lines), body of %d", total, len(s.Headers), len(s.Body))
		}
		if 8*len(s.Headers) > len(b) || cap(s.Headers) > maxSliceCap(len(s.Headers)) {
			t.Fatalf("%d headers (cap %d) from %d bytes", len(s.Headers), cap(s.Headers), len(b))
		}
		if got := EncodeResponse(nil, s); !bytes.Equal(got, b) {
			t.Fatalf("DecodeResponse then EncodeResponse changed the bytes:\n in  %x\n out %x", b, got)
		}
	})
}

func FuzzDecodeKeys(f *testing.F) {
	f.Add(EncodeKeys(nil, nil))
	f.Add(EncodeKeys(nil, [][]byte{[]byte("a"), {}, []byte("\x00\xff")}))
	many := make([][]byte, MaxBatch)
	f.Add(EncodeKeys(nil, many))
	f.Add(EncodeKeys(nil, append(many, nil))) // one over MaxBatch
	f.Add(u32s(0xffffffff))
	f.Add(u32s(MaxBatch, 0)) // count at the limit, one key present
	f.Add(u32s(1, 0xfffffff0))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := DecodeKeys(b)
		checkErr(t, "DecodeKeys", err, false)
		// Whatever the outcome, the slice is bounded by the input (4 bytes per key at least).
		if cap(keys) > len(b)/4 {
			t.Fatalf("key slice cap %d from %d bytes", cap(keys), len(b))
		}
		if err != nil {
			return
		}
		if len(keys) > MaxBatch {
			t.Fatalf("accepted %d keys, limit %d", len(keys), MaxBatch)
		}
		if got := EncodeKeys(nil, keys); !bytes.Equal(got, b) {
			t.Fatalf("DecodeKeys then EncodeKeys changed the bytes:\n in  %x\n out %x", b, got)
		}
	})
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(EncodeEntries(nil, nil), MaxBatch)
	f.Add(EncodeEntries(nil, []Entry{{[]byte("k"), []byte("v")}, {nil, nil}}), MaxBatch)
	f.Add(EncodeEntries(nil, []Entry{{[]byte("k"), []byte("v")}, {nil, nil}}), 1)
	f.Add(EncodeEntries(nil, make([]Entry, MaxBatch+1)), MaxBatch)
	f.Add(u32s(0xffffffff), MaxBatch)
	f.Add(u32s(0xffffffff), 1<<30)
	f.Add(u32s(3, 0, 0, 0, 0), 1<<20)
	f.Add(u32s(0), -1)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		es, err := DecodeEntries(b, max)
		checkErr(t, "DecodeEntries", err, false)
		if cap(es) > len(b)/8 {
			t.Fatalf("entry slice cap %d from %d bytes (max %d)", cap(es), len(b), max)
		}
		if err != nil {
			return
		}
		if len(es) > max {
			t.Fatalf("accepted %d entries, max %d", len(es), max)
		}
		if got := EncodeEntries(nil, es); !bytes.Equal(got, b) {
			t.Fatalf("DecodeEntries then EncodeEntries changed the bytes:\n in  %x\n out %x", b, got)
		}
	})
}

func FuzzDecodeListOptions(f *testing.F) {
	f.Add(EncodeListOptions(nil, &ListOptions{}))
	f.Add(EncodeListOptions(nil, &ListOptions{Reverse: true, Limit: 10}))
	f.Add(EncodeListOptions(nil, &ListOptions{HasStart: true, Start: []byte("a"), HasEnd: true, End: []byte("z"), HasPrefix: true, Prefix: []byte{}}))
	f.Add(EncodeListOptions(nil, &ListOptions{HasStartAfter: true, StartAfter: []byte("m"), Limit: 0xffffffff}))
	f.Add(u32s(ListStart|ListStartAfter, 0, 0, 0))
	f.Add(u32s(1<<5, 0))
	f.Add(u32s(ListPrefix, 0, 0xffffffff))
	f.Add(u32s(ListEnd))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeListOptions(b)
		checkErr(t, "DecodeListOptions", err, false)
		if err != nil {
			return
		}
		if o.HasStart && o.HasStartAfter {
			t.Fatal("accepted start and startAfter together")
		}
		for _, c := range []struct {
			has bool
			v   []byte
		}{{o.HasStart, o.Start}, {o.HasStartAfter, o.StartAfter}, {o.HasEnd, o.End}, {o.HasPrefix, o.Prefix}} {
			if !c.has && c.v != nil {
				t.Fatalf("a bound without its flag: %+v", o)
			}
		}
		if got := EncodeListOptions(nil, o); !bytes.Equal(got, b) {
			t.Fatalf("DecodeListOptions then EncodeListOptions changed the bytes:\n in  %x\n out %x", b, got)
		}
	})
}

// The building block of every decoder: Count never admits more elements than max or than the
// remaining input can hold, and Bytes never returns more than the input.
func FuzzReaderCount(f *testing.F) {
	f.Add(u32s(5, 1, 2, 3, 4, 5), 10, 4)
	f.Add(u32s(0xffffffff), 1<<30, 8)
	f.Add(u32s(0x80000000), 1<<31-1, 1)
	f.Add(u32s(2, 0), 10, 0)
	f.Add(u32s(1), -5, 4)
	f.Add(u32s(3, 7), 10, -1)
	f.Fuzz(func(t *testing.T, b []byte, max int, minSize int) {
		r := Reader{B: b}
		n := r.Count("n", max, minSize)
		if n < 0 {
			t.Fatalf("Count returned %d", n)
		}
		if r.Err != nil {
			if n != 0 {
				t.Fatalf("Count returned %d with error %v", n, r.Err)
			}
			if !errors.Is(r.Err, ErrMalformed) {
				t.Fatalf("Count error %v does not wrap ErrMalformed", r.Err)
			}
			return
		}
		if n > max {
			t.Fatalf("Count admitted %d elements, max %d", n, max)
		}
		if minSize > 0 && int64(n)*int64(minSize) > int64(len(r.B)) {
			t.Fatalf("Count admitted %d elements of >= %d bytes with %d bytes left", n, minSize, len(r.B))
		}
		for i := 0; i < n && r.Err == nil; i++ {
			if v := r.Bytes("e"); len(v) > len(b) {
				t.Fatalf("Bytes returned %d bytes from %d", len(v), len(b))
			}
		}
	})
}

// allocBytes reports the bytes f allocates, averaged over runs.
func allocBytes(runs int, f func()) float64 {
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// Hostile counts: a few bytes claiming 2^32-1 (or exactly the limit of) elements allocate about
// nothing, whatever the decoder.
func TestHostileCountsAllocateLittle(t *testing.T) {
	inputs := map[string][]byte{
		"max u32":      u32s(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff),
		"at the limit": u32s(MaxBatch, 1<<12, 1<<16, 1<<16),
		"status+count": u32s(200, 1<<12, 0, 0),
	}
	decoders := map[string]func(b []byte){
		"DecodeRequest":       func(b []byte) { DecodeRequest(b) },
		"DecodeResponse":      func(b []byte) { DecodeResponse(b) },
		"DecodeKeys":          func(b []byte) { DecodeKeys(b) },
		"DecodeEntries":       func(b []byte) { DecodeEntries(b, MaxBatch) },
		"DecodeEntries(huge)": func(b []byte) { DecodeEntries(b, 1<<30) },
		"DecodeListOptions":   func(b []byte) { DecodeListOptions(b) },
	}
	for in, b := range inputs {
		for name, dec := range decoders {
			// An error value and its message, a small struct: far below a KiB. A count
			// honoured would cost at least 24 bytes per element (gigabytes here).
			if got := allocBytes(100, func() { dec(b) }); got > 1024 {
				t.Errorf("%s on %s (%d bytes): %.0f bytes allocated per call", name, in, len(b), got)
			}
			if got := testing.AllocsPerRun(100, func() { dec(b) }); got > 16 {
				t.Errorf("%s on %s: %.0f allocations per call", name, in, got)
			}
		}
	}
}
