package id

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Fuzz targets for ID parsing and derivation:
//
//	go test -run '^$' -fuzz '^FuzzNamespaceParse$' -fuzztime 60s ./id/
//	go test -run '^$' -fuzz '^FuzzFromNameRoundTrip$' -fuzztime 60s ./id/
//	go test -run '^$' -fuzz '^FuzzForeignIDRefused$' -fuzztime 60s ./id/

// isLowerHex64 reports whether s is exactly 64 lowercase hex characters.
func isLowerHex64(s string) bool {
	if len(s) != 2*Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Parse never panics; it accepts only 64 lowercase hex characters carrying the namespace's MAC,
// which re-format to the same text; refusals are ErrMalformed (not 64 lowercase hex) or ErrForeign
// (well-formed, wrong MAC), and a refusal returns the zero ID.
func FuzzNamespaceParse(f *testing.F) {
	n := NewNamespace([]byte("fuzz key"))
	good := n.FromName("a").String()
	f.Add([]byte("fuzz key"), good)
	f.Add([]byte("fuzz key"), n.NewUnique().String())
	f.Add([]byte("fuzz key"), strings.ToUpper(good))
	f.Add([]byte("fuzz key"), good[:63]+"g")
	f.Add([]byte("fuzz key"), good[:63])
	f.Add([]byte("fuzz key"), good+"0")
	f.Add([]byte("fuzz key"), good[:32]+strings.Repeat("0", 32))
	f.Add([]byte("other key"), good)
	f.Add([]byte{}, strings.Repeat("0", 64))
	f.Add([]byte("fuzz key"), " "+good[1:])
	f.Add([]byte("fuzz key"), "\xff"+good[1:])
	f.Fuzz(func(t *testing.T, key []byte, s string) {
		ns := NewNamespace(key)
		got, err := ns.Parse(s)
		switch {
		case err == nil:
			if got.String() != s {
				t.Fatalf("accepted %q but it formats as %q", s, got.String())
			}
			if !isLowerHex64(s) {
				t.Fatalf("accepted %q, which is not 64 lowercase hex characters", s)
			}
			// Accepted means minted here: the MAC half is the namespace's MAC of the first.
			if !bytes.Equal(got[16:], ns.mac(got[:16])[:16]) {
				t.Fatalf("accepted %q without this namespace's MAC", s)
			}
			// Parsing is a pure function of the text.
			if again, err := ns.Parse(got.String()); err != nil || again != got {
				t.Fatalf("re-parsing %q: %v, %v", s, again, err)
			}
		case errors.Is(err, ErrMalformed):
			if isLowerHex64(s) {
				t.Fatalf("%q is 64 lowercase hex but was refused as malformed: %v", s, err)
			}
			if got != (ID{}) {
				t.Fatalf("refused %q but returned %v", s, got)
			}
		case errors.Is(err, ErrForeign):
			if !isLowerHex64(s) {
				t.Fatalf("%q is not well formed but was refused as foreign", s)
			}
			if got != (ID{}) {
				t.Fatalf("refused %q but returned %v", s, got)
			}
		default:
			t.Fatalf("Parse(%q): unexpected error %v", s, err)
		}
	})
}

// FromName is deterministic, formats as 64 lowercase hex and parses back to itself in its own
// namespace; distinct names give distinct IDs, and NewUnique IDs parse too.
func FuzzFromNameRoundTrip(f *testing.F) {
	f.Add([]byte("k"), "a", "b")
	f.Add([]byte("k"), "", "\x00")
	f.Add([]byte{}, "my-counter", "my-counter ")
	f.Add([]byte("k"), "\xff\xfe", strings.Repeat("x", 2000))
	f.Add([]byte("k"), "name:a", "a")
	f.Fuzz(func(t *testing.T, key []byte, name, other string) {
		ns := NewNamespace(key)
		a := ns.FromName(name)
		if a != ns.FromName(name) || a != NewNamespace(bytes.Clone(key)).FromName(name) {
			t.Fatalf("FromName(%q) is not deterministic", name)
		}
		s := a.String()
		if !isLowerHex64(s) {
			t.Fatalf("FromName(%q) formats as %q", name, s)
		}
		back, err := ns.Parse(s)
		if err != nil || back != a {
			t.Fatalf("Parse(FromName(%q)) = %v, %v; want %v", name, back, err, a)
		}
		if name != other && ns.FromName(other) == a {
			t.Fatalf("names %q and %q share the ID %s", name, other, s)
		}
		u := ns.NewUnique()
		if back, err := ns.Parse(u.String()); err != nil || back != u {
			t.Fatalf("Parse(NewUnique()) = %v, %v; want %v", back, err, u)
		}
	})
}

// An ID minted by one namespace (from a name or at random) is refused by a namespace with another
// key, as foreign (not malformed), so a client cannot reach another class's object by its ID.
func FuzzForeignIDRefused(f *testing.F) {
	f.Add([]byte("a"), []byte("b"), "x")
	f.Add([]byte{}, []byte{0}, "")
	f.Add([]byte("counter"), []byte("counter\x00"), "my-counter")
	f.Add([]byte("k"), []byte("K"), "\xff")
	f.Fuzz(func(t *testing.T, k1, k2 []byte, name string) {
		if bytes.Equal(k1, k2) {
			return // the same key is the same namespace
		}
		n1, n2 := NewNamespace(k1), NewNamespace(k2)
		for _, minted := range []ID{n1.FromName(name), n1.NewUnique()} {
			got, err := n2.Parse(minted.String())
			if err == nil {
				t.Fatalf("namespace %q accepted %s, minted by namespace %q", k2, minted, k1)
			}
			if !errors.Is(err, ErrForeign) || got != (ID{}) {
				t.Fatalf("namespace %q refused %s with %v (returned %v), want ErrForeign and the zero ID", k2, minted, err, got)
			}
		}
		if n1.FromName(name) == n2.FromName(name) {
			t.Fatalf("name %q has the same ID in namespaces %q and %q", name, k1, k2)
		}
	})
}
