package dowasm

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Limits enforced by the host (abi/ABI.md). Exceeding one fails the call with the status named.
const (
	MaxKeySize    = 2048     // bytes per key (KEY_TOO_LARGE)
	MaxEntrySize  = 2 << 20  // bytes per key plus value (VALUE_TOO_LARGE)
	MaxBatch      = 128      // keys or entries per batch call (TOO_MANY_KEYS)
	MaxTxnDepth   = 16       // nested explicit transactions (TOO_DEEP)
	MaxResultSize = 32 << 20 // one listing or batch result (RESULT_TOO_LARGE)
)

// Storage is the object's private key-value storage. Keys and values are byte strings; keys
// sort in byte order (memcmp). Every call acts inside the current event's transaction: its writes
// become durable, and visible to later events, only if the event succeeds, and the response is
// released only after they are committed. Reads see the event's own writes.
//
// Slices passed in are copied by the host during the call; slices returned are new and belong to
// the caller.
type Storage struct {
	buf []byte // encoding buffer for batch and list calls, reused
}

// Entry is a key and its value.
type Entry struct {
	Key, Value []byte
}

// Get returns the value stored under key; ok is false (and err nil) when there is none.
func (s *Storage) Get(key []byte) (val []byte, ok bool, err error) {
	rc := host.get(key)
	if rc == -int32(StatusNotFound) {
		return nil, false, nil
	}
	n, err := check("storage_get", rc)
	if err != nil {
		return nil, false, err
	}
	val, err = readStaged("storage_get", n)
	return val, err == nil, err
}

// Put stores val under key (an empty or nil val stores an empty value).
func (s *Storage) Put(key, val []byte) error {
	_, err := check("storage_put", host.put(key, val))
	return err
}

// Delete removes key and reports whether it existed.
func (s *Storage) Delete(key []byte) (existed bool, err error) {
	n, err := check("storage_delete", host.del(key))
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

// release drops the encoding buffer after a large call so it is not kept between events.
func (s *Storage) release() {
	if cap(s.buf) > 64<<10 {
		s.buf = nil
	}
}

// GetMany looks up at most MaxBatch keys in one call. vals[i] and found[i] answer keys[i]; a
// missing key has a nil value and found false.
func (s *Storage) GetMany(keys [][]byte) (vals [][]byte, found []bool, err error) {
	defer s.release()
	n, err := check("storage_get_batch", host.getBatch(s.encodeKeys(keys)))
	if err != nil {
		return nil, nil, err
	}
	b, err := readStaged("storage_get_batch", n)
	if err != nil {
		return nil, nil, err
	}
	r := reader{b: b}
	count := r.count(8)
	vals, found = make([][]byte, count), make([]bool, count)
	for i := range count {
		found[i] = r.u32() == 1
		v := r.bytes()
		if found[i] {
			vals[i] = resultSlice(v)
		}
	}
	if !r.done() || count != len(keys) {
		return nil, nil, &Error{Op: "storage_get_batch (malformed result)", Status: StatusInvalidArgument}
	}
	return vals, found, nil
}

// PutMany stores at most MaxBatch entries atomically: every entry is checked first, and a failure
// writes none of them.
func (s *Storage) PutMany(entries []Entry) error {
	defer s.release()
	b := appendU32(s.buf[:0], uint32(len(entries)))
	for _, e := range entries {
		b = appendBytes(b, e.Key)
		b = appendBytes(b, e.Value)
	}
	s.buf = b
	_, err := check("storage_put_batch", host.putBatch(b))
	return err
}

// DeleteMany removes at most MaxBatch keys and returns how many of them existed.
func (s *Storage) DeleteMany(keys [][]byte) (int, error) {
	defer s.release()
	n, err := check("storage_delete_batch", host.deleteBatch(s.encodeKeys(keys)))
	return int(n), err
}

// ListOptions select a range of keys. A nil field is unset; a non-nil empty slice ([]byte{}) is
// set to the empty key.
type ListOptions struct {
	Start      []byte // first key, inclusive
	StartAfter []byte // list keys after this one (exclusive); cannot be combined with Start
	End        []byte // stop before this key (exclusive)
	Prefix     []byte // only keys with this prefix
	Reverse    bool   // from the highest key down; Limit then counts from that end
	Limit      int    // at most this many entries; 0 means no limit
}

// List fetches the selected entries in key byte order (highest first with Reverse). One listing
// is at most 32 MiB (ErrResultTooLarge beyond): page with Limit and StartAfter (or End, in
// reverse).
func (s *Storage) List(o ListOptions) ([]Entry, error) {
	if o.Limit < 0 || uint64(o.Limit) > 1<<32-1 {
		return nil, &Error{Op: "storage_list (limit out of range)", Status: StatusInvalidArgument}
	}
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
	b := appendU32(s.buf[:0], flags)
	b = appendU32(b, uint32(o.Limit))
	for _, f := range [...][]byte{o.Start, o.StartAfter, o.End, o.Prefix} {
		if f != nil {
			b = appendBytes(b, f)
		}
	}
	s.buf = b
	n, err := check("storage_list", host.list(b))
	s.release()
	if err != nil {
		return nil, err
	}
	res, err := readStaged("storage_list", n)
	if err != nil {
		return nil, err
	}
	// Keys and values alias res (one allocation for the whole listing) except under TinyGo
	// (see resultSlice).
	r := reader{b: res}
	count := r.count(8)
	out := make([]Entry, count)
	for i := range out {
		out[i] = Entry{Key: resultSlice(r.bytes()), Value: resultSlice(r.bytes())}
	}
	if !r.done() {
		return nil, &Error{Op: "storage_list (malformed result)", Status: StatusInvalidArgument}
	}
	return out, nil
}

// DeleteAll removes every key of the object (atomically, as part of the event's transaction), and
// its alarm.
func (s *Storage) DeleteAll() error {
	_, err := check("storage_delete_all", host.deleteAll())
	return err
}

// SetAlarm sets the object's alarm to ms, milliseconds since the Unix epoch (see Now), replacing
// any alarm already set: an object has at most one. The alarm is stored with the event's writes,
// so it takes effect when the event commits and is discarded if the event fails. At or after that
// time the host calls the class's Alarm method (see Alarmer); a time in the past fires as soon as
// possible. Setting an alarm also resets the retry count of a failing one.
//
// Errors: ErrNotAllowed when the class does not implement Alarmer (the host is not called),
// ErrInvalidArgument for a negative time or one beyond the host's horizon (10 years from now by
// default, alarm_horizon in the host's configuration).
func (s *Storage) SetAlarm(ms int64) error {
	if inst.constructing {
		// The class does not exist yet: runInit checks it once the constructor returns.
		inst.alarmSetInConstruct = true
	} else if _, ok := inst.class.(Alarmer); !ok {
		return errNoAlarmMethod
	}
	if ms < 0 {
		return &Error{Op: "alarm_set", Status: StatusInvalidArgument,
			Msg: "alarm time " + strconv.FormatInt(ms, 10) + " ms is negative"}
	}
	rc := host.alarmSet(ms)
	if rc == -int32(StatusInvalidArgument) {
		return &Error{Op: "alarm_set", Status: StatusInvalidArgument,
			Msg: "alarm time " + strconv.FormatInt(ms, 10) + " ms is beyond the host's alarm horizon"}
	}
	_, err := check("alarm_set", rc)
	return err
}

// errNoAlarmMethod is SetAlarm's error for a class that does not implement Alarmer.
var errNoAlarmMethod = &Error{Op: "alarm_set", Status: StatusNotAllowed,
	Msg: "the class has no Alarm method; implement dowasm.Alarmer to use alarms"}

// GetAlarm returns the time the object's alarm is set to (ms since the Unix epoch), as of the
// event's own writes; ok is false (and err nil) when no alarm is set. While Alarm runs, the alarm
// being delivered is no longer set: GetAlarm reports none unless the handler set a new one.
func (s *Storage) GetAlarm() (ms int64, ok bool, err error) {
	rc := host.alarmGet()
	if rc == -int32(StatusNotFound) {
		return 0, false, nil
	}
	n, err := check("alarm_get", rc)
	if err != nil {
		return 0, false, err
	}
	b, err := readStaged("alarm_get", n)
	if err != nil {
		return 0, false, err
	}
	ms, ok = decodeAlarmTime(b)
	if !ok {
		return 0, false, &Error{Op: "alarm_get", Status: StatusInvalidArgument,
			Msg: "malformed result: " + strconv.Itoa(len(b)) + " bytes, not 8"}
	}
	return ms, true, nil
}

// decodeAlarmTime decodes alarm_get's result: a little-endian int64.
func decodeAlarmTime(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(b)), true
}

// DeleteAlarm deletes the object's alarm (with the event's writes) and reports whether one was
// set. Called from a failing Alarm, it also cancels the retry. DeleteAll deletes the alarm too.
func (s *Storage) DeleteAlarm() (existed bool, err error) {
	n, err := check("alarm_delete", host.alarmDelete())
	return n == 1, err
}

// ErrRollback, returned by a Transaction function, rolls the transaction back without failing:
// Transaction then returns nil. (Wrapped errors count too: errors.Is is used.)
var ErrRollback = errors.New("dowasm: transaction rolled back")

// Transaction runs fn inside an explicit transaction nested in the event's own (a savepoint).
// If fn returns nil, its writes are kept: they commit with the event. If fn returns an error,
// every write made since the transaction began is discarded and the error is returned (nil for
// ErrRollback). Transactions nest up to MaxTxnDepth deep (ErrTooDeep beyond).
//
// tx is the same storage as s; it is passed so the function reads naturally. Only storage is
// transactional: restore any in-memory state fn changed yourself when it fails. If fn panics,
// the transaction stays open and is rolled back with the failed event.
func (s *Storage) Transaction(fn func(tx *Storage) error) error {
	if _, err := check("txn_begin", host.txnBegin()); err != nil {
		return err
	}
	if ferr := fn(s); ferr != nil {
		if _, err := check("txn_rollback", host.txnRollback()); err != nil {
			return errors.Join(ferr, err)
		}
		if errors.Is(ferr, ErrRollback) {
			return nil
		}
		return ferr
	}
	_, err := check("txn_commit", host.txnCommit())
	return err
}

// GetString returns the value under key as a string ("" and false when missing).
func (s *Storage) GetString(key string) (string, bool, error) {
	v, ok, err := s.Get([]byte(key))
	return string(v), ok, err
}

// PutString stores a string value under key.
func (s *Storage) PutString(key, val string) error { return s.Put([]byte(key), []byte(val)) }

// GetInt64 returns the integer under key (0 and false when missing). Integers are stored as
// decimal text ("42"), so they stay readable with any SQLite tool; a value that is not a decimal
// integer is an error.
func (s *Storage) GetInt64(key string) (int64, bool, error) {
	v, ok, err := s.Get([]byte(key))
	if err != nil || !ok {
		return 0, ok, err
	}
	n, perr := strconv.ParseInt(string(v), 10, 64)
	if perr != nil {
		return 0, true, errors.New("dowasm: the value under " + strconv.Quote(key) + " is not a decimal integer: " + strconv.Quote(string(v)))
	}
	return n, true, nil
}

// PutInt64 stores an integer as decimal text.
func (s *Storage) PutInt64(key string, v int64) error {
	return s.Put([]byte(key), strconv.AppendInt(nil, v, 10))
}

// Uint64Key returns prefix followed by v as 8 big-endian bytes: such keys sort numerically.
func Uint64Key(prefix string, v uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefix), v)
}

// KeyUint64 decodes the 8 big-endian bytes that follow prefix in a key made by Uint64Key; ok is
// false when key does not have that shape.
func KeyUint64(key []byte, prefix string) (v uint64, ok bool) {
	if len(key) < len(prefix)+8 || string(key[:len(prefix)]) != prefix {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), true
}

// PaddedKey returns prefix followed by v in decimal, zero-padded to 20 digits (the width of the
// largest uint64): such keys sort numerically and stay readable ("ticket:00000000000000000042").
func PaddedKey(prefix string, v uint64) []byte {
	var d [20]byte
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append([]byte(prefix), d[:]...)
}
