package abi

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	q := &Request{Method: "POST", Path: "/increment", Query: "a=1&b=2",
		Headers: []Header{{"Content-Type", "text/plain"}, {"X-A", "1"}, {"X-A", "2"}}, Body: []byte("hello")}
	got, err := DecodeRequest(EncodeRequest(nil, q))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, q) {
		t.Fatalf("round trip: got %+v want %+v", got, q)
	}
}

// The byte-by-byte example in ABI.md.
func TestRequestEncodingExample(t *testing.T) {
	got := EncodeRequest(nil, &Request{Method: "GET", Path: "/x", Query: "y=1"})
	want := []byte{3, 0, 0, 0, 'G', 'E', 'T', 2, 0, 0, 0, '/', 'x', 3, 0, 0, 0, 'y', '=', '1', 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
}

func TestDecodeResponseRejects(t *testing.T) {
	ok := EncodeResponse(nil, &Response{Status: 200, Body: []byte("x")})
	if _, err := DecodeResponse(ok); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":      nil,
		"truncated":  ok[:len(ok)-1],
		"trailing":   append(append([]byte{}, ok...), 0),
		"bad status": EncodeResponse(nil, &Response{Status: 42}),
		"huge count": {200, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
		"huge body":  {200, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, // truncated: claims 2 GiB
	}
	for name, b := range cases {
		if _, err := DecodeResponse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestDecodeResponseTooLarge(t *testing.T) {
	b := EncodeResponse(nil, &Response{Status: 200, Body: make([]byte, MaxBodySize+1)})
	if _, err := DecodeResponse(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("body over the limit: %v", err)
	}
	b = EncodeResponse(nil, &Response{Status: 200, Headers: []Header{{"X", string(make([]byte, MaxHeaderSize))}}})
	if _, err := DecodeResponse(b); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("headers over the limit: %v", err)
	}
}

func TestKeysAndEntries(t *testing.T) {
	keys := [][]byte{{}, {0}, []byte("abc")}
	got, err := DecodeKeys(EncodeKeys(nil, keys))
	if err != nil || len(got) != 3 || !bytes.Equal(got[2], []byte("abc")) || len(got[0]) != 0 {
		t.Fatalf("keys: %v %q", err, got)
	}
	many := make([][]byte, MaxBatch+1)
	if _, err := DecodeKeys(EncodeKeys(nil, many)); err == nil {
		t.Fatal("129 keys accepted")
	}
	es := []Entry{{[]byte("k"), []byte("v")}}
	ge, err := DecodeEntries(EncodeEntries(nil, es), 10)
	if err != nil || !reflect.DeepEqual(ge, es) {
		t.Fatalf("entries: %v %v", err, ge)
	}
}

func TestListOptions(t *testing.T) {
	o := &ListOptions{Prefix: []byte("p"), HasPrefix: true, End: []byte("z"), HasEnd: true, Reverse: true, Limit: 5}
	got, err := DecodeListOptions(EncodeListOptions(nil, o))
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("got %+v %v", got, err)
	}
	both := EncodeListOptions(nil, &ListOptions{HasStart: true, HasStartAfter: true})
	if _, err := DecodeListOptions(both); err == nil {
		t.Fatal("start+startAfter accepted")
	}
	if _, err := DecodeListOptions([]byte{0x40, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(EncodeRequest(nil, &Request{Method: "GET", Path: "/"}))
	f.Add(EncodeResponse(nil, &Response{Status: 200}))
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeRequest(b)
		DecodeResponse(b)
		DecodeKeys(b)
		DecodeEntries(b, MaxBatch)
		DecodeListOptions(b)
	})
}
