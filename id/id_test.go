package id

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFromNameDeterministicAndSeparated(t *testing.T) {
	a, b := NewNamespace([]byte("key-a")), NewNamespace([]byte("key-b"))
	if a.FromName("x") != a.FromName("x") {
		t.Fatal("same name, same namespace: different IDs")
	}
	if a.FromName("x") == a.FromName("y") {
		t.Fatal("different names collide")
	}
	if a.FromName("x") == b.FromName("x") {
		t.Fatal("namespaces collide")
	}
	if s := a.FromName("x").String(); len(s) != 64 {
		t.Fatalf("hex form %q is not 64 chars", s)
	}
}

func TestParse(t *testing.T) {
	a, b := NewNamespace([]byte("key-a")), NewNamespace([]byte("key-b"))
	for _, want := range []ID{a.FromName("n"), a.NewUnique()} {
		got, err := a.Parse(want.String())
		if err != nil || got != want {
			t.Fatalf("Parse(%s) = %v, %v", want, got, err)
		}
		if _, err := b.Parse(want.String()); !errors.Is(err, ErrForeign) {
			t.Fatalf("foreign ID accepted by another namespace: %v", err)
		}
	}
	u := a.NewUnique().String()
	forged := "0" + u[1:]
	if forged == u {
		forged = "1" + u[1:]
	}
	if _, err := a.Parse(forged); !errors.Is(err, ErrForeign) {
		t.Fatalf("forged ID: %v", err)
	}
	for _, s := range []string{"", "abc", u[:63], u + "0", "G" + u[1:], "A" + u[1:]} {
		if _, err := a.Parse(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", s, err)
		}
	}
}

func TestUniqueIDsDiffer(t *testing.T) {
	n := NewNamespace(nil)
	seen := map[ID]bool{}
	for i := 0; i < 1000; i++ {
		u := n.NewUnique()
		if seen[u] {
			t.Fatal("duplicate unique ID")
		}
		seen[u] = true
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c", "namespace.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("key changed across loads: %v", err)
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, err := LoadOrCreateKey(p); err == nil {
		t.Fatal("corrupt key accepted")
	}
}

func FuzzParse(f *testing.F) {
	n := NewNamespace([]byte("k"))
	f.Add(n.FromName("a").String())
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := n.Parse(s)
		if err == nil && id.String() != s {
			t.Fatalf("accepted %q but it prints as %q", s, id.String())
		}
	})
}
