package dowasm

import "strings"

// Header is one HTTP header line; repeated names appear repeatedly.
type Header struct {
	Name, Value string
}

// Headers is a list of header lines.
type Headers []Header

// Get returns the first value of name (case-insensitive), or "".
func (h Headers) Get(name string) string {
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			return x.Value
		}
	}
	return ""
}

// Request is an HTTP request delivered to an object.
type Request struct {
	Method  string
	Path    string // after /<class>/<name>, always starting with "/"
	Query   string // raw query string without "?"
	Headers Headers
	Body    []byte
}

// QueryParam returns the first value of a query parameter, percent-decoded, or "".
func (r *Request) QueryParam(name string) string {
	q := r.Query
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if unescape(k) == name {
			return unescape(v)
		}
	}
	return ""
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

// unescape decodes %XX and '+' (query encoding); malformed escapes are kept as they are.
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

func decodeRequest(b []byte) (*Request, bool) {
	r := reader{b: b}
	q := &Request{Method: string(r.bytes()), Path: string(r.bytes()), Query: string(r.bytes())}
	n := r.u32()
	if uint64(n)*8 > uint64(len(r.b)) {
		return nil, false
	}
	for i := uint32(0); i < n && !r.bad; i++ {
		q.Headers = append(q.Headers, Header{string(r.bytes()), string(r.bytes())})
	}
	q.Body = r.bytes()
	return q, !r.bad
}

// Response is what a handler answers.
type Response struct {
	Status  int
	Headers Headers
	Body    []byte
}

// Text returns a text/plain response.
func Text(status int, body string) *Response {
	return &Response{Status: status, Headers: Headers{{"Content-Type", "text/plain; charset=utf-8"}}, Body: []byte(body)}
}

// JSON returns an application/json response from an already encoded body.
func JSON(status int, body string) *Response {
	return &Response{Status: status, Headers: Headers{{"Content-Type", "application/json"}}, Body: []byte(body)}
}

// Bytes returns a response with a body and no headers.
func Bytes(status int, body []byte) *Response { return &Response{Status: status, Body: body} }

// WithHeader adds a header line and returns the response, for chaining.
func (r *Response) WithHeader(name, value string) *Response {
	r.Headers = append(r.Headers, Header{name, value})
	return r
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
