package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The byte layouts that cross the boundary. Every integer is a little-endian u32; a "bytes"
// field is a u32 length followed by that many bytes. See ABI.md, "Encodings".

// Header is one HTTP header line. Repeated names are repeated entries.
type Header struct {
	Name, Value string
}

// Request is an HTTP request as the guest sees it.
type Request struct {
	Method  string
	Path    string // the path after /<class>/<name>, always starting with "/"
	Query   string // raw query without "?"
	Headers []Header
	Body    []byte
}

// Response is what a guest's fetch handler answers.
type Response struct {
	Status  int
	Headers []Header
	Body    []byte
}

// ListOptions are storage_list's options.
type ListOptions struct {
	Start, StartAfter, End, Prefix []byte
	HasStart, HasStartAfter        bool
	HasEnd, HasPrefix              bool
	Reverse                        bool
	Limit                          uint32 // 0: no limit
}

// Entry is a key and its value.
type Entry struct {
	Key, Value []byte
}

// ErrMalformed is returned (wrapped) for any encoding that does not parse.
var ErrMalformed = errors.New("malformed encoding")

// ErrTooLarge is returned (wrapped) for a well-formed response over its size limits.
var ErrTooLarge = errors.New("too large")

// Writer appends encoded fields to a byte slice.
type Writer struct{ B []byte }

func (w *Writer) U32(v uint32)    { w.B = binary.LittleEndian.AppendUint32(w.B, v) }
func (w *Writer) Bytes(b []byte)  { w.U32(uint32(len(b))); w.B = append(w.B, b...) }
func (w *Writer) String(s string) { w.U32(uint32(len(s))); w.B = append(w.B, s...) }

// Reader consumes encoded fields; the first failure sticks in Err.
type Reader struct {
	B   []byte
	Err error
}

func (r *Reader) fail(what string) {
	if r.Err == nil {
		r.Err = fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
}

func (r *Reader) U32(what string) uint32 {
	if r.Err != nil {
		return 0
	}
	if len(r.B) < 4 {
		r.fail(what)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.B)
	r.B = r.B[4:]
	return v
}

// Bytes returns a sub-slice of the input (no copy).
func (r *Reader) Bytes(what string) []byte {
	n := r.U32(what + " length")
	if r.Err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.B)) {
		r.fail(what)
		return nil
	}
	b := r.B[:n:n]
	r.B = r.B[n:]
	return b
}

// Count reads a u32 element count and checks it against max and against the bytes left (each
// element needs at least minSize bytes), so a hostile count never drives a large allocation.
func (r *Reader) Count(what string, max int, minSize int) int {
	n := r.U32(what)
	if r.Err != nil {
		return 0
	}
	if int64(n) > int64(max) {
		r.Err = fmt.Errorf("%w: %s %d exceeds %d", ErrMalformed, what, n, max)
		return 0
	}
	if int64(n)*int64(minSize) > int64(len(r.B)) {
		r.fail(what)
		return 0
	}
	return int(n)
}

// Done reports an error if input remains after a complete value.
func (r *Reader) Done(what string) error {
	if r.Err == nil && len(r.B) != 0 {
		r.Err = fmt.Errorf("%w: %d trailing bytes after %s", ErrMalformed, len(r.B), what)
	}
	return r.Err
}

// EncodeRequest appends the request's encoding to dst.
func EncodeRequest(dst []byte, q *Request) []byte {
	w := Writer{B: dst}
	w.String(q.Method)
	w.String(q.Path)
	w.String(q.Query)
	w.U32(uint32(len(q.Headers)))
	for _, h := range q.Headers {
		w.String(h.Name)
		w.String(h.Value)
	}
	w.Bytes(q.Body)
	return w.B
}

// DecodeRequest parses a request encoding.
func DecodeRequest(b []byte) (*Request, error) {
	r := Reader{B: b}
	q := &Request{}
	q.Method = string(r.Bytes("method"))
	q.Path = string(r.Bytes("path"))
	q.Query = string(r.Bytes("query"))
	n := r.Count("header count", 1<<16, 8)
	for i := 0; i < n && r.Err == nil; i++ {
		q.Headers = append(q.Headers, Header{string(r.Bytes("header name")), string(r.Bytes("header value"))})
	}
	q.Body = r.Bytes("body")
	return q, r.Done("request")
}

// EncodeResponse appends the response's encoding to dst.
func EncodeResponse(dst []byte, s *Response) []byte {
	w := Writer{B: dst}
	w.U32(uint32(s.Status))
	w.U32(uint32(len(s.Headers)))
	for _, h := range s.Headers {
		w.String(h.Name)
		w.String(h.Value)
	}
	w.Bytes(s.Body)
	return w.B
}

// DecodeResponse parses and validates a response encoding: status 200..599, header sizes within
// MaxHeaderSize, body within MaxBodySize. The body aliases b.
func DecodeResponse(b []byte) (*Response, error) {
	r := Reader{B: b}
	s := &Response{Status: int(r.U32("status"))}
	n := r.Count("header count", 1<<12, 8)
	total := 0
	for i := 0; i < n && r.Err == nil; i++ {
		name, value := r.Bytes("header name"), r.Bytes("header value")
		total += len(name) + len(value)
		s.Headers = append(s.Headers, Header{string(name), string(value)})
	}
	s.Body = r.Bytes("body")
	if err := r.Done("response"); err != nil {
		return nil, err
	}
	if s.Status < 200 || s.Status > 599 {
		return nil, fmt.Errorf("%w: status %d is not an HTTP status", ErrMalformed, s.Status)
	}
	if total > MaxHeaderSize {
		return nil, fmt.Errorf("%w: headers total %d bytes, limit %d", ErrTooLarge, total, MaxHeaderSize)
	}
	if len(s.Body) > MaxBodySize {
		return nil, fmt.Errorf("%w: body %d bytes, limit %d", ErrTooLarge, len(s.Body), MaxBodySize)
	}
	return s, nil
}

// EncodeKeys appends a key list encoding.
func EncodeKeys(dst []byte, keys [][]byte) []byte {
	w := Writer{B: dst}
	w.U32(uint32(len(keys)))
	for _, k := range keys {
		w.Bytes(k)
	}
	return w.B
}

// DecodeKeys parses a key list of at most MaxBatch keys. Keys alias b.
func DecodeKeys(b []byte) ([][]byte, error) {
	r := Reader{B: b}
	n := r.Count("key count", MaxBatch, 4)
	keys := make([][]byte, 0, n)
	for i := 0; i < n && r.Err == nil; i++ {
		keys = append(keys, r.Bytes("key"))
	}
	return keys, r.Done("key list")
}

// EncodeEntries appends an entry list encoding.
func EncodeEntries(dst []byte, es []Entry) []byte {
	w := Writer{B: dst}
	w.U32(uint32(len(es)))
	for _, e := range es {
		w.Bytes(e.Key)
		w.Bytes(e.Value)
	}
	return w.B
}

// DecodeEntries parses an entry list of at most max entries. Keys and values alias b.
func DecodeEntries(b []byte, max int) ([]Entry, error) {
	r := Reader{B: b}
	n := r.Count("entry count", max, 8)
	es := make([]Entry, 0, n)
	for i := 0; i < n && r.Err == nil; i++ {
		es = append(es, Entry{r.Bytes("key"), r.Bytes("value")})
	}
	return es, r.Done("entry list")
}

// EncodeListOptions appends storage_list's options encoding.
func EncodeListOptions(dst []byte, o *ListOptions) []byte {
	w := Writer{B: dst}
	var flags uint32
	if o.Reverse {
		flags |= ListReverse
	}
	if o.HasStart {
		flags |= ListStart
	}
	if o.HasStartAfter {
		flags |= ListStartAfter
	}
	if o.HasEnd {
		flags |= ListEnd
	}
	if o.HasPrefix {
		flags |= ListPrefix
	}
	w.U32(flags)
	w.U32(o.Limit)
	if o.HasStart {
		w.Bytes(o.Start)
	}
	if o.HasStartAfter {
		w.Bytes(o.StartAfter)
	}
	if o.HasEnd {
		w.Bytes(o.End)
	}
	if o.HasPrefix {
		w.Bytes(o.Prefix)
	}
	return w.B
}

// DecodeListOptions parses storage_list's options. start and startAfter are exclusive.
func DecodeListOptions(b []byte) (*ListOptions, error) {
	r := Reader{B: b}
	flags := r.U32("flags")
	o := &ListOptions{Limit: r.U32("limit")}
	if r.Err != nil {
		return nil, r.Err
	}
	if flags&^uint32(ListReverse|ListStart|ListStartAfter|ListEnd|ListPrefix) != 0 {
		return nil, fmt.Errorf("%w: unknown list flags %#x", ErrMalformed, flags)
	}
	o.Reverse = flags&ListReverse != 0
	o.HasStart = flags&ListStart != 0
	o.HasStartAfter = flags&ListStartAfter != 0
	o.HasEnd = flags&ListEnd != 0
	o.HasPrefix = flags&ListPrefix != 0
	if o.HasStart && o.HasStartAfter {
		return nil, fmt.Errorf("%w: start and startAfter are exclusive", ErrMalformed)
	}
	if o.HasStart {
		o.Start = r.Bytes("start")
	}
	if o.HasStartAfter {
		o.StartAfter = r.Bytes("startAfter")
	}
	if o.HasEnd {
		o.End = r.Bytes("end")
	}
	if o.HasPrefix {
		o.Prefix = r.Bytes("prefix")
	}
	return o, r.Done("list options")
}
