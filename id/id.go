// Package id mints and checks object IDs. An ID is 32 bytes, written as 64 lowercase hex
// characters: 16 bytes that identify the object followed by a 16-byte MAC over them, keyed by
// the namespace's secret key. Named IDs are deterministic (the first half is itself a MAC of the
// name); unique IDs have a random first half. Because every ID carries its namespace's MAC,
// Parse rejects IDs minted by another namespace (or forged) before any file is touched.
package id

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dowasm/dowasm/internal/durablefs"
)

// Size is the length of an ID in bytes.
const Size = 32

// KeySize is the length of a namespace key in bytes.
const KeySize = 32

// ID identifies one object within a namespace.
type ID [Size]byte

// String returns the 64-character lowercase hex form.
func (i ID) String() string { return hex.EncodeToString(i[:]) }

// ErrMalformed is returned for text that is not 64 hex characters.
var ErrMalformed = errors.New("malformed object ID")

// ErrForeign is returned for a well-formed ID that this namespace did not mint.
var ErrForeign = errors.New("object ID does not belong to this namespace")

// Namespace derives and verifies the IDs of one object class.
type Namespace struct {
	key [KeySize]byte
}

// NewNamespace returns a namespace using key (any length; it is hashed into the MAC key so that
// the raw secret is never used directly).
func NewNamespace(key []byte) *Namespace {
	n := &Namespace{}
	n.key = sha256.Sum256(append([]byte("dowasm namespace key v1\x00"), key...))
	return n
}

func (n *Namespace) mac(b []byte) []byte {
	m := hmac.New(sha256.New, n.key[:])
	m.Write(b)
	return m.Sum(nil)
}

// FromName returns the deterministic ID for name: HMAC(key, "name:"+name)[0:16] followed by the
// MAC of that half. The domain prefix keeps named IDs apart from anything else MAC'd by the key.
func (n *Namespace) FromName(name string) ID {
	var out ID
	copy(out[:16], n.mac(append([]byte("name:"), name...)))
	copy(out[16:], n.mac(out[:16]))
	return out
}

// NewUnique returns a random ID carrying this namespace's MAC.
func (n *Namespace) NewUnique() ID {
	var out ID
	if _, err := rand.Read(out[:16]); err != nil {
		panic(fmt.Sprintf("id: crypto/rand failed: %v", err)) // crypto/rand never fails on Linux
	}
	copy(out[16:], n.mac(out[:16]))
	return out
}

// Parse checks that s is the hex form of an ID minted by this namespace.
func (n *Namespace) Parse(s string) (ID, error) {
	var out ID
	if len(s) != 2*Size {
		return out, fmt.Errorf("%w: %d characters, want %d", ErrMalformed, len(s), 2*Size)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return out, fmt.Errorf("%w: character %q at %d is not lowercase hex", ErrMalformed, c, i)
		}
	}
	if _, err := hex.Decode(out[:], []byte(s)); err != nil {
		return out, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !hmac.Equal(out[16:], n.mac(out[:16])[:16]) {
		return ID{}, ErrForeign
	}
	return out, nil
}

// LoadOrCreateKey reads the namespace key at path, creating it with fresh random bytes if the
// file does not exist. The key is written to a temporary file, fsynced and renamed into place
// so a crash never leaves a partial key (which would silently change every ID).
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != KeySize {
			return nil, fmt.Errorf("namespace key %s: %d bytes, want %d (file corrupt?)", path, len(b), KeySize)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("namespace key %s: %w", path, err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := durablefs.MkdirAll(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("namespace key %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, fmt.Errorf("namespace key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("namespace key %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("namespace key %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// Link rather than rename: if another process created the key meanwhile, keep theirs.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateKey(path)
		}
		return nil, fmt.Errorf("namespace key %s: %w", path, err)
	}
	if err := durablefs.SyncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("namespace key %s: %w", path, err)
	}
	return key, nil
}
