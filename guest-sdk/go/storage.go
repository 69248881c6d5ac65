package dowasm

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Limits enforced by the host (abi/ABI.md).
const (
	MaxKeySize   = 2048    // bytes per key
	MaxEntrySize = 2 << 20 // bytes per key plus value
	MaxBatch     = 128     // keys per batch operation
	MaxTxnDepth  = 16      // nested explicit transactions
)

// Storage is the object's private key-value storage. Keys and values are bytes; keys sort in
// byte order. Every call is part of the current event's transaction: its writes commit (and
// become visible to the next event) only if the event succeeds.
type Storage struct {
	buf []byte
}

// Entry is a key and its value.
type Entry struct {
	Key, Value []byte
}

// Get returns the value stored under key; ok is false when there is none.
func (s *Storage) Get(key []byte) (val []byte, ok bool, err error) {
	rc := host.get(key)
	if rc == -int32(StatusNotFound) {
		return nil, false, nil
	}
	n, err := check("get", rc)
	if err != nil {
		return nil, false, err
	}
	return readStaged(n), true, nil
}

// Put stores val under key.
func (s *Storage) Put(key, val []byte) error {
	_, err := check("put", host.put(key, val))
	return err
}

// Delete removes key and reports whether it existed.
func (s *Storage) Delete(key []byte) (bool, error) {
	n, err := check("delete", host.del(key))
	return n == 1, err
}

func (s *Storage) encodeKeys(keys [][]byte) []byte {
	b := appendU32(s.buf[:0], uint32(len(keys)))
	for _, k := range keys {
		b = appendBytes(b, k)
	}
	s.buf = b
	return b
}

// GetMany looks up to MaxBatch keys at once; vals[i] is nil and found[i] false for a missing key.
func (s *Storage) GetMany(keys [][]byte) (vals [][]byte, found []bool, err error) {
	n, err := check("get batch", host.getBatch(s.encodeKeys(keys)))
	if err != nil {
		return nil, nil, err
	}
	r := reader{b: readStaged(n)}
	count := r.u32()
	vals, found = make([][]byte, 0, count), make([]bool, 0, count)
	for i := uint32(0); i < count && !r.bad; i++ {
		f := r.u32() == 1
		v := r.bytes()
		if !f {
			v = nil
		}
		vals, found = append(vals, v), append(found, f)
	}
	if r.bad {
		return nil, nil, &Error{Op: "get batch", Status: StatusInvalidArgument}
	}
	return vals, found, nil
}

// PutMany stores up to MaxBatch entries atomically: all or none.
func (s *Storage) PutMany(entries []Entry) error {
	b := appendU32(s.buf[:0], uint32(len(entries)))
	for _, e := range entries {
		b = appendBytes(b, e.Key)
		b = appendBytes(b, e.Value)
	}
	s.buf = b
	_, err := check("put batch", host.putBatch(b))
	return err
}

// DeleteMany removes up to MaxBatch keys and returns how many existed.
func (s *Storage) DeleteMany(keys [][]byte) (int, error) {
	n, err := check("delete batch", host.deleteBatch(s.encodeKeys(keys)))
	return int(n), err
}

// ListOptions select entries. Start is inclusive; StartAfter (exclusive with Start) and End are
// exclusive; Prefix narrows further. Reverse lists from the highest key; Limit (0: no limit)
// counts from where the listing starts. Use nil for "not set".
type ListOptions struct {
	Start, StartAfter, End, Prefix []byte
	Reverse                        bool
	Limit                          int
}

// List returns the selected entries in key byte order (or reverse). A listing larger than the
// host's 32 MiB result limit fails with ErrResultTooLarge: use Limit and StartAfter to page.
func (s *Storage) List(o ListOptions) ([]Entry, error) {
	var flags uint32
	if o.Reverse {
		flags |= 1
	}
	if o.Start != nil {
		flags |= 2
	}
	if o.StartAfter != nil {
		flags |= 4
	}
	if o.End != nil {
		flags |= 8
	}
	if o.Prefix != nil {
		flags |= 16
	}
	if o.Limit < 0 {
		return nil, &Error{Op: "list", Status: StatusInvalidArgument}
	}
	b := appendU32(s.buf[:0], flags)
	b = appendU32(b, uint32(o.Limit))
	for _, f := range [][]byte{o.Start, o.StartAfter, o.End, o.Prefix} {
		if f != nil {
			b = appendBytes(b, f)
		}
	}
	s.buf = b
	n, err := check("list", host.list(b))
	if err != nil {
		return nil, err
	}
	r := reader{b: readStaged(n)}
	count := r.u32()
	if uint64(count)*8 > uint64(len(r.b)) {
		return nil, &Error{Op: "list", Status: StatusInvalidArgument}
	}
	out := make([]Entry, 0, count)
	for i := uint32(0); i < count && !r.bad; i++ {
		out = append(out, Entry{Key: r.bytes(), Value: r.bytes()})
	}
	if r.bad {
		return nil, &Error{Op: "list", Status: StatusInvalidArgument}
	}
	return out, nil
}

// DeleteAll removes every key of the object.
func (s *Storage) DeleteAll() error {
	_, err := check("delete all", host.deleteAll())
	return err
}

// ErrRollback may be returned by a Transaction function to roll back without reporting an
// error: Transaction then returns nil.
var ErrRollback = errors.New("dowasm: rollback")

// Transaction runs fn in an explicit transaction nested in the event's own. If fn returns nil
// its writes are kept (they commit with the event); otherwise they are rolled back and fn's
// error is returned (nil for ErrRollback). Transactions nest up to MaxTxnDepth.
func (s *Storage) Transaction(fn func(tx *Storage) error) error {
	if _, err := check("transaction begin", host.txnBegin()); err != nil {
		return err
	}
	ferr := fn(s)
	if ferr != nil {
		if _, err := check("transaction rollback", host.txnRollback()); err != nil {
			return err
		}
		if errors.Is(ferr, ErrRollback) {
			return nil
		}
		return ferr
	}
	_, err := check("transaction commit", host.txnCommit())
	return err
}

// GetString returns the string under key ("" and false when missing).
func (s *Storage) GetString(key string) (string, bool, error) {
	v, ok, err := s.Get([]byte(key))
	return string(v), ok, err
}

// PutString stores a string.
func (s *Storage) PutString(key, val string) error { return s.Put([]byte(key), []byte(val)) }

// GetInt64 returns the integer under key (0 and false when missing). Integers are stored as
// decimal text, so they stay readable with any SQLite tool.
func (s *Storage) GetInt64(key string) (int64, bool, error) {
	v, ok, err := s.Get([]byte(key))
	if err != nil || !ok {
		return 0, ok, err
	}
	n, perr := strconv.ParseInt(string(v), 10, 64)
	if perr != nil {
		return 0, true, errors.New("dowasm: value under " + strconv.Quote(key) + " is not an integer: " + perr.Error())
	}
	return n, true, nil
}

// PutInt64 stores an integer as decimal text.
func (s *Storage) PutInt64(key string, v int64) error {
	return s.Put([]byte(key), strconv.AppendInt(nil, v, 10))
}

// Uint64Key encodes v as 8 big-endian bytes: keys built with it sort numerically.
func Uint64Key(prefix string, v uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefix), v)
}
