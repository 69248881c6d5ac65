package dowasm

import (
	"strconv"
	"strings"
)

// Header is one HTTP header line. A header with several values appears several times.
type Header struct {
	Name, Value string
}

// Headers is a list of header lines in the order they were received or added. Names from the
// host are in canonical form (Content-Type); lookups ignore ASCII case (header names are ASCII
// tokens).
type Headers []Header

// Get returns the first value of the named header, or "" when there is none.
func (h Headers) Get(name string) string {
	for _, x := range h {
		if equalFoldASCII(x.Name, name) {
			return x.Value
		}
	}
	return ""
}

// Values returns every value of the named header, in order.
func (h Headers) Values(name string) []string {
	var vs []string
	for _, x := range h {
		if equalFoldASCII(x.Name, name) {
			vs = append(vs, x.Value)
		}
	}
	return vs
}

// equalFoldASCII is strings.EqualFold for ASCII letters only. Header names are ASCII, and
// strings.EqualFold would link Unicode's case-folding tables, which cost TinyGo builds dearly:
// TinyGo scans global data conservatively, and words of those tables that look like heap
// addresses pin garbage. With them, a counter instance taking 64 KiB request bodies grew to
// 16 MiB of linear memory (6 MiB live after a collection); without them it stays at 2 MiB.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Add appends a header line.
func (h *Headers) Add(name, value string) { *h = append(*h, Header{name, value}) }

// Set replaces every line of the named header with one line.
func (h *Headers) Set(name, value string) {
	h.Del(name)
	h.Add(name, value)
}

// Del removes every line of the named header.
func (h *Headers) Del(name string) {
	out := (*h)[:0]
	for _, x := range *h {
		if !equalFoldASCII(x.Name, name) {
			out = append(out, x)
		}
	}
	*h = out
}

// Request is the HTTP request of a fetch event.
type Request struct {
	Method  string  // "GET", "POST", ...
	Path    string  // the part after /<class>/<name>, always starting with "/"
	Query   string  // the raw query string, without "?"
	Headers Headers // canonical names; repeated headers appear repeatedly
	Body    []byte
}

// Header returns the first value of the named request header, or "".
func (r *Request) Header(name string) string { return r.Headers.Get(name) }

// QueryParam returns the first value of the named query parameter, percent-decoded ('+' is a
// space), or "" when it is absent.
func (r *Request) QueryParam(name string) string {
	v, _ := r.LookupQueryParam(name)
	return v
}

// LookupQueryParam is QueryParam that also reports whether the parameter is present (?a and ?a=
// are present with an empty value).
func (r *Request) LookupQueryParam(name string) (string, bool) {
	q := r.Query
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name || unescape(k) == name {
			return unescape(v), true
		}
	}
	return "", false
}

// QueryInt returns the named query parameter as an int: def when it is absent or empty, and an
// error when it is not a decimal integer.
func (r *Request) QueryInt(name string, def int) (int, error) {
	s := r.QueryParam(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return def, &queryError{name, s}
	}
	return v, nil
}

type queryError struct{ name, value string }

func (e *queryError) Error() string {
	return "query parameter " + e.name + "=" + strconv.Quote(e.value) + " is not an integer"
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescape decodes %XX and '+' (query-string encoding); a malformed escape is kept as it is.
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s):
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
			} else {
				b = append(b, c)
			}
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// decodeRequest parses the request encoding. Body aliases b; the strings are copies, so keeping
// one (a path in a map, say) never pins the whole request buffer.
func decodeRequest(b []byte) (*Request, bool) {
	r := reader{b: b}
	q := &Request{Method: method(r.bytes()), Path: string(r.bytes()), Query: string(r.bytes())}
	if n := r.count(8); n > 0 {
		q.Headers = make(Headers, n)
		for i := range q.Headers {
			q.Headers[i] = Header{string(r.bytes()), string(r.bytes())}
		}
	}
	q.Body = r.bytes()
	if len(q.Body) == 0 {
		q.Body = nil
	}
	return q, r.done()
}

// method returns the common methods without allocating.
func method(b []byte) string {
	for _, m := range [...]string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"} {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

// Response is what a fetch handler answers. Status must be 200–599; headers may total 64 KiB and
// the body 32 MiB (the host refuses larger ones and the event fails).
type Response struct {
	Status  int
	Headers Headers
	Body    []byte
}

const textPlain = "text/plain; charset=utf-8"

// Text returns a text/plain response.
func Text(status int, body string) *Response {
	return &Response{Status: status, Headers: Headers{{"Content-Type", textPlain}}, Body: []byte(body)}
}

// JSON returns an application/json response with an already encoded body.
func JSON(status int, body string) *Response {
	return &Response{Status: status, Headers: Headers{{"Content-Type", "application/json"}}, Body: []byte(body)}
}

// Bytes returns a response with the given body and no headers (add a Content-Type with
// SetHeader). The body is not copied.
func Bytes(status int, body []byte) *Response { return &Response{Status: status, Body: body} }

// NotFound returns a 404 text response.
func NotFound() *Response { return Text(404, "not found\n") }

// MethodNotAllowed returns a 405 text response with an Allow header listing the allowed methods
// ("GET, POST").
func MethodNotAllowed(allow string) *Response {
	return Text(405, "method not allowed\n").SetHeader("Allow", allow)
}

// SetHeader replaces every line of the named header with one line and returns r, for chaining.
func (r *Response) SetHeader(name, value string) *Response {
	r.Headers.Set(name, value)
	return r
}

// WithHeader adds a header line (keeping existing ones of that name) and returns r, for
// chaining.
func (r *Response) WithHeader(name, value string) *Response {
	r.Headers.Add(name, value)
	return r
}

// Response limits (abi/ABI.md, "response").
const (
	MaxHeaderSize  = 64 << 10 // all header names and values together
	MaxHeaderCount = 4096
	MaxBodySize    = 32 << 20
)

// check returns why the host would refuse r, or "".
func (r *Response) check() string {
	if r.Status < 200 || r.Status > 599 {
		return "status " + strconv.Itoa(r.Status) + " is not 200-599"
	}
	if len(r.Headers) > MaxHeaderCount {
		return strconv.Itoa(len(r.Headers)) + " headers; the limit is 4096"
	}
	total := 0
	for _, h := range r.Headers {
		total += len(h.Name) + len(h.Value)
	}
	if total > MaxHeaderSize {
		return "headers total " + strconv.Itoa(total) + " bytes; the limit is 64 KiB"
	}
	if len(r.Body) > MaxBodySize {
		return "body is " + strconv.Itoa(len(r.Body)) + " bytes; the limit is 32 MiB"
	}
	return ""
}

func (r *Response) encode(b []byte) []byte {
	b = appendU32(b, uint32(r.Status))
	b = appendU32(b, uint32(len(r.Headers)))
	for _, h := range r.Headers {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	return appendBytes(b, r.Body)
}
