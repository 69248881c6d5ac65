package storage

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/dowasm/dowasm/internal/durablefs"
	"github.com/mattn/go-sqlite3"
)

// DB is one object's database, leased to one goroutine at a time (not safe for concurrent use).
// It talks to SQLite at the driver level with statements prepared once per handle: the object
// loop runs a few statements per event and database/sql's pooling and conversions would cost
// more than the statements themselves.
type DB struct {
	store *Store
	key   string
	path  string

	conn  *sqlite3.SQLiteConn
	stmts map[string]driver.Stmt
	// inTx: Begin opened a transaction that Commit or Rollback has not ended. SQLite may end it
	// by itself on an error (see TxLost); then every statement but ROLLBACK is refused.
	inTx bool
	dur  Durability
	// absent: the object has no database file yet. Reads find nothing; the first write creates
	// the file (materialize), so reading an object that never wrote costs no file and no fsync.
	absent bool
	// broken is set after an error that may leave the connection unusable (I/O, corruption,
	// full disk); the handle is closed on Release instead of being reused.
	broken bool
	// maxBytes is the object's storage limit (0: none); applied is what the open connection
	// was told (-1: nothing yet).
	maxBytes, applied int64
	// appliedPages is the max_page_count the connection has; quotaBound says it came from the
	// store's quota
	appliedPages int64
	quotaBound   bool
	// txBytes is what the open transaction wrote (keys and values), for trimWAL
	txBytes int64

	// size is the database's size on disk (file and WAL) as last counted in the store's usage
	// (only when the store has a quota)
	size int64

	// pool bookkeeping, guarded by store.mu
	leased bool
	elem   *list.Element

	args [8]driver.NamedValue // List binds at most 6
	dest [2]driver.Value
}

const schema = `
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
`

// open opens the database file, or with create also creates it; without create a missing file
// leaves the handle absent. created reports a new file.
func (d *DB) open(dur Durability, create bool) (created bool, err error) {
	d.dur = dur
	dir := filepath.Dir(d.path)
	if _, err := os.Stat(d.path); errors.Is(err, os.ErrNotExist) {
		if !create {
			d.absent = true
			return false, nil
		}
		created = true
		if err := durablefs.MkdirAll(dir); err != nil {
			return false, fmt.Errorf("database %s: %w", d.path, err)
		}
		// Created here, not by SQLite, so that it is private to the server's user (SQLite
		// would make it 0644); its -wal and -shm files take the database file's mode.
		f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, durablefs.FileMode)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return false, fmt.Errorf("database %s: %w", d.path, err)
		}
		if f != nil {
			f.Close()
		}
	}
	c, err := (&sqlite3.SQLiteDriver{}).Open("file:" + d.path + "?_txlock=immediate")
	if err != nil {
		return false, fmt.Errorf("database %s: %w", d.path, err)
	}
	d.conn = c.(*sqlite3.SQLiteConn)
	d.stmts = map[string]driver.Stmt{}
	d.applied, d.appliedPages = -1, maxPages
	sync := "FULL"
	if dur == Relaxed {
		sync = "NORMAL"
	}
	for _, q := range []string{
		"PRAGMA busy_timeout=5000",
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous=" + sync,
		// Small per-handle page cache: thousands of handles may be open at once.
		"PRAGMA cache_size=-512",
		schema,
	} {
		if _, err := d.conn.Exec(q, nil); err != nil {
			d.close()
			return false, fmt.Errorf("database %s: %w (is it a dowasm object database?)", d.path, err)
		}
	}
	if !created && d.store.opts.Quota.set() {
		d.size = usedBytes(d.path) // as the store's scan counted it, or measure before a close
	}
	if err := d.applyMaxBytes(); err != nil {
		d.close()
		return false, fmt.Errorf("database %s: %w", d.path, err)
	}
	if created {
		// Make the new file's directory entry durable, so a crash after the first commit
		// cannot lose the whole database.
		if err := durablefs.SyncDir(dir); err != nil {
			d.close()
			return false, fmt.Errorf("database %s: %w", d.path, err)
		}
	}
	return created, nil
}

func (d *DB) close() error {
	for _, st := range d.stmts {
		st.Close()
	}
	d.stmts = nil
	if d.conn == nil {
		return nil
	}
	err := d.conn.Close()
	d.conn = nil
	return err
}

// pageSize is SQLite's default page size, which dowasm databases keep.
const pageSize = 4096

// SetMaxBytes bounds the object's database to n bytes (0: SQLite's own maximum) from now on: a
// write that would grow it further fails with an error for which IsFull is true. When the
// store has a byte quota, the bound is also what the quota has left for this database (see
// QuotaBound). It is cheap when nothing changed.
func (d *DB) SetMaxBytes(n int64) error {
	d.maxBytes = n
	if d.conn == nil {
		return nil
	}
	return d.applyMaxBytes()
}

// maxPages is SQLite's largest max_page_count, its default.
const maxPages = 4294967294

func (d *DB) applyMaxBytes() error {
	if d.applied != d.maxBytes && !(d.applied == -1 && d.maxBytes == 0) {
		// max_page_count bounds the database file, not its WAL, which keeps its largest size
		// after a big transaction unless journal_size_limit truncates it when it is reset; the
		// checkpoint comes when the WAL reaches that size (and see trimWAL). So disk use stays
		// within the limit plus walLimit, besides the transaction being written.
		wal := walLimit(d.maxBytes)
		for _, q := range []string{
			fmt.Sprintf("PRAGMA journal_size_limit=%d", wal),
			fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", wal/pageSize),
		} {
			if _, err := d.conn.Exec(q, nil); err != nil {
				return fmt.Errorf("setting the storage limit: %w", err)
			}
		}
		d.applied = d.maxBytes
	}
	limit, byQuota := d.maxBytes, false
	if q := d.store.opts.Quota.MaxBytes; q > 0 {
		// What the store's quota has left, as of the last commits: a transaction cannot take
		// more. (Batches of other objects running at the same moment may each take it: the
		// quota can be exceeded by what they write together before their commits count.)
		if room := d.size + max(q-d.store.usage.bytes.Load(), 0); limit == 0 || room < limit {
			limit, byQuota = room, true
		}
	}
	d.quotaBound = byQuota
	pages := int64(maxPages)
	if limit > 0 {
		pages = max(1, limit/pageSize)
	}
	if pages == d.appliedPages {
		return nil
	}
	if _, err := d.conn.Exec(fmt.Sprintf("PRAGMA max_page_count=%d", pages), nil); err != nil {
		return fmt.Errorf("setting the storage limit: %w", err)
	}
	d.appliedPages = pages
	return nil
}

// QuotaBound reports whether the database's current bound comes from the store's byte quota
// (all objects together) rather than the object's own limit: a write failing with IsFull then
// means the quota is used up.
func (d *DB) QuotaBound() bool { return d.quotaBound }

// walLimit is the size the WAL of a database limited to maxBytes (0: unlimited) is truncated
// to at each checkpoint: a quarter of the limit, between 64 KiB and 4 MiB (SQLite's default
// checkpoint size, 1000 pages).
func walLimit(maxBytes int64) int64 {
	if maxBytes <= 0 {
		return 4 << 20
	}
	return min(max(maxBytes/4, 64<<10), 4<<20)
}

// IsFull reports whether err is SQLite's "database or disk is full": the object's storage limit
// (SetMaxBytes) or the disk.
func IsFull(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// Exists reports whether the object's database file exists (it is created by the first write).
func (d *DB) Exists() bool { return !d.absent }

// materialize creates the database of an absent handle before its first write.
func (d *DB) materialize() error {
	if !d.absent {
		return nil
	}
	if err := d.store.reserveObject(); err != nil {
		return fmt.Errorf("database %s: %w", d.path, err)
	}
	created, err := d.open(d.dur, true)
	if err != nil || !created {
		d.store.usage.objects.Add(-1) // (not created: made meanwhile by another process)
	}
	if err != nil {
		return err
	}
	d.absent = false
	d.measure()
	d.store.mu.Lock()
	d.store.stats.Opens++
	if created {
		d.store.stats.Creates++
	}
	d.store.mu.Unlock()
	return nil
}

func (d *DB) stmt(q string) (driver.Stmt, error) {
	if st, ok := d.stmts[q]; ok {
		return st, nil
	}
	st, err := d.conn.Prepare(q)
	if err != nil {
		return nil, d.fail(err)
	}
	d.stmts[q] = st
	return st, nil
}

// fail wraps an error with the file and marks the handle broken when SQLite says the
// connection or file is in trouble.
func (d *DB) fail(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrIoErr, sqlite3.ErrCorrupt, sqlite3.ErrFull, sqlite3.ErrNotADB, sqlite3.ErrCantOpen, sqlite3.ErrNomem, sqlite3.ErrReadonly:
			d.broken = true
		}
	}
	return fmt.Errorf("database %s: %w", d.path, err)
}

func (d *DB) bind(vals ...any) []driver.NamedValue {
	a := d.args[:len(vals)]
	for i, v := range vals {
		if b, ok := v.([]byte); ok && b == nil {
			v = []byte{} // a nil slice binds NULL; keys and values are never NULL
		}
		a[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return a
}

func (d *DB) exec(q string, vals ...any) (int64, error) {
	if d.inTx && q != "ROLLBACK" && d.TxLost() {
		// Run now, the statement would be its own transaction: durable at once, outside the
		// batch that a failure is about to roll back.
		return 0, fmt.Errorf("database %s: %w", d.path, ErrTxLost)
	}
	st, err := d.stmt(q)
	if err != nil {
		return 0, err
	}
	res, err := st.(driver.StmtExecContext).ExecContext(context.Background(), d.bind(vals...))
	if err != nil {
		return 0, d.fail(err)
	}
	return res.RowsAffected()
}

// query runs q and calls fn for each row; the row's values are fresh copies.
func (d *DB) query(q string, ncol int, fn func(row []driver.Value) error, vals ...any) error {
	st, err := d.stmt(q)
	if err != nil {
		return err
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), d.bind(vals...))
	if err != nil {
		return d.fail(err)
	}
	defer rows.Close()
	dest := d.dest[:ncol]
	for {
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return nil
			}
			return d.fail(err)
		}
		if err := fn(dest); err != nil {
			return err
		}
	}
}

// Begin opens the batch's transaction (BEGIN IMMEDIATE: the loop is this object's only writer).
func (d *DB) Begin() error {
	if err := d.materialize(); err != nil {
		return err
	}
	if _, err := d.exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	d.inTx, d.txBytes = true, 0
	return nil
}

// Commit commits the transaction; under Full durability it returns after the fsync.
func (d *DB) Commit() error {
	if _, err := d.exec("COMMIT"); err != nil {
		return err
	}
	d.inTx = false
	d.trimWAL()
	d.measure()
	return nil
}

// trimWAL keeps the WAL near walLimit. The automatic checkpoint copies a big transaction into the
// database but leaves the WAL at the transaction's size until the next write resets it (and
// journal_size_limit truncates it then), so an object that wrote close to its storage limit
// once would use twice its limit on disk. A truncating checkpoint after such a commit ends that.
// Only a transaction that wrote at least the limit can have grown the WAL past it (small ones
// reuse it from its start once it is checkpointed), so only those pay for looking (a stat, ~3 µs
// here: 15% of a relaxed commit).
func (d *DB) trimWAL() {
	if d.txBytes < walLimit(d.maxBytes) {
		return
	}
	// (Up to twice the limit is ordinary: the automatic checkpoint lets the WAL reach the limit
	// plus the last transaction, and truncating it each time would cost every such commit.)
	fi, err := os.Stat(d.path + "-wal")
	if err != nil || fi.Size() <= 2*walLimit(d.maxBytes) {
		return
	}
	// Best effort: a reader (an alarm index rebuild) may hold the WAL; the next commit tries
	// again.
	// (Not a cached statement: it returns a row, and a statement left stepping would keep the
	// next transaction from committing.)
	if _, err := d.conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)", nil); err != nil {
		d.fail(err)
	}
}

// Rollback abandons the transaction. It is a no-op outside one.
func (d *DB) Rollback() error {
	if !d.inTx {
		return nil
	}
	d.inTx = false
	if d.conn == nil || d.conn.AutoCommit() {
		return nil // SQLite already rolled back (e.g. after an I/O error)
	}
	_, err := d.exec("ROLLBACK")
	return err
}

// InTx reports whether Begin opened a transaction that has not been committed or rolled back
// (it may have been lost: see TxLost).
func (d *DB) InTx() bool { return d.inTx }

// TxLost reports whether the transaction Begin opened is gone although neither Commit nor
// Rollback ended it: SQLite rolls back a whole transaction by itself on some errors (SQLITE_FULL,
// IOERR, NOMEM, BUSY: "it might be necessary for SQLite to rollback and cancel the entire
// transaction"), savepoints included. Every write of the transaction is then lost, and every
// statement but Rollback fails with ErrTxLost.
func (d *DB) TxLost() bool {
	return d.inTx && (d.conn == nil || d.conn.AutoCommit())
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty savepoint name", ErrInvalid)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w: savepoint name %q", ErrInvalid, name)
		}
	}
	return nil
}

// Savepoint opens a nested transaction named name.
func (d *DB) Savepoint(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := d.materialize(); err != nil {
		return err
	}
	_, err := d.exec("SAVEPOINT " + name)
	return err
}

// ReleaseSavepoint keeps the savepoint's writes in the enclosing transaction.
func (d *DB) ReleaseSavepoint(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := d.exec("RELEASE " + name)
	return err
}

// RollbackTo discards the savepoint's writes and ends it.
func (d *DB) RollbackTo(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, err := d.exec("ROLLBACK TO " + name); err != nil {
		return err
	}
	_, err := d.exec("RELEASE " + name)
	return err
}

func checkKey(k []byte) error {
	if len(k) > MaxKeySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(k), MaxKeySize)
	}
	return nil
}

func checkEntry(k, v []byte) error {
	if err := checkKey(k); err != nil {
		return err
	}
	if len(k)+len(v) > MaxEntrySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(k)+len(v), MaxEntrySize)
	}
	return nil
}

// Get returns a copy of the value under key.
func (d *DB) Get(key []byte) ([]byte, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	if d.absent {
		return nil, false, nil
	}
	var val []byte
	found := false
	err := d.query("SELECT value FROM kv WHERE key = ?", 1, func(row []driver.Value) error {
		val, _ = row[0].([]byte)
		if val == nil {
			val = []byte{}
		}
		found = true
		return nil
	}, key)
	return val, found, err
}

// Put stores value under key.
func (d *DB) Put(key, val []byte) error {
	if err := checkEntry(key, val); err != nil {
		return err
	}
	if err := d.store.checkBytes(); err != nil {
		return fmt.Errorf("database %s: %w", d.path, err)
	}
	if err := d.materialize(); err != nil {
		return err
	}
	d.txBytes += int64(len(key) + len(val))
	_, err := d.exec("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", key, val)
	return err
}

// Delete removes key and reports whether it existed.
func (d *DB) Delete(key []byte) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	if d.absent {
		return false, nil
	}
	n, err := d.exec("DELETE FROM kv WHERE key = ?", key)
	return n > 0, err
}

// GetMany looks up to MaxBatch keys.
func (d *DB) GetMany(keys [][]byte) ([][]byte, []bool, error) {
	if len(keys) > MaxBatch {
		return nil, nil, fmt.Errorf("%w: %d keys, limit %d", ErrTooManyKeys, len(keys), MaxBatch)
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, nil, err
		}
	}
	vals := make([][]byte, len(keys))
	found := make([]bool, len(keys))
	for i, k := range keys {
		v, ok, err := d.Get(k)
		if err != nil {
			return nil, nil, err
		}
		vals[i], found[i] = v, ok
	}
	return vals, found, nil
}

// Entry is a key and its value.
type Entry struct{ Key, Value []byte }

// PutMany stores up to MaxBatch entries: all are checked first, and a failure midway is rolled
// back, so either every entry is written or none.
func (d *DB) PutMany(es []Entry) error {
	if len(es) > MaxBatch {
		return fmt.Errorf("%w: %d entries, limit %d", ErrTooManyKeys, len(es), MaxBatch)
	}
	for _, e := range es {
		if err := checkEntry(e.Key, e.Value); err != nil {
			return err
		}
	}
	return d.atomically(func() error {
		for _, e := range es {
			if err := d.Put(e.Key, e.Value); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteMany deletes up to MaxBatch keys and returns how many existed.
func (d *DB) DeleteMany(keys [][]byte) (int, error) {
	if len(keys) > MaxBatch {
		return 0, fmt.Errorf("%w: %d keys, limit %d", ErrTooManyKeys, len(keys), MaxBatch)
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return 0, err
		}
	}
	if d.absent {
		return 0, nil
	}
	n := 0
	err := d.atomically(func() error {
		for _, k := range keys {
			ok, err := d.Delete(k)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	})
	return n, err
}

// atomically runs fn in a savepoint of its own.
func (d *DB) atomically(fn func() error) error {
	if err := d.Savepoint("batch_op"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		d.RollbackTo("batch_op")
		return err
	}
	return d.ReleaseSavepoint("batch_op")
}

// DeleteAll removes every key.
func (d *DB) DeleteAll() error {
	if d.absent {
		return nil
	}
	d.txBytes = math.MaxInt64 / 2 // (it may rewrite every page)
	_, err := d.exec("DELETE FROM kv")
	return err
}

// ListOptions select a range of keys. Start is inclusive, StartAfter and End exclusive; Prefix
// intersects with the rest. Reverse iterates from the highest key; Limit (0: none) counts from
// where the iteration starts.
type ListOptions struct {
	Start, StartAfter, End, Prefix             []byte
	HasStart, HasStartAfter, HasEnd, HasPrefix bool
	Reverse                                    bool
	Limit                                      int
}

// prefixEnd is the smallest key greater than every key with the prefix, or nil when there is
// none (the prefix is empty or all 0xFF).
func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for len(e) > 0 && e[len(e)-1] == 0xff {
		e = e[:len(e)-1]
	}
	if len(e) == 0 {
		return nil
	}
	e[len(e)-1]++
	return e
}

// List calls fn for each selected entry in key byte order (SQLite compares BLOBs with memcmp).
// The slices passed to fn are valid only during the call.
func (d *DB) List(o ListOptions, fn func(key, val []byte) error) error {
	if o.HasStart && o.HasStartAfter {
		return fmt.Errorf("%w: start and startAfter are exclusive", ErrInvalid)
	}
	if o.Limit < 0 {
		return fmt.Errorf("%w: negative limit", ErrInvalid)
	}
	if d.absent {
		return nil
	}
	var where []string
	var args []any
	if o.HasStart {
		where, args = append(where, "key >= ?"), append(args, o.Start)
	}
	if o.HasStartAfter {
		where, args = append(where, "key > ?"), append(args, o.StartAfter)
	}
	if o.HasEnd {
		where, args = append(where, "key < ?"), append(args, o.End)
	}
	if o.HasPrefix && len(o.Prefix) > 0 {
		where, args = append(where, "key >= ?"), append(args, o.Prefix)
		if e := prefixEnd(o.Prefix); e != nil {
			where, args = append(where, "key < ?"), append(args, e)
		}
	}
	q := "SELECT key, value FROM kv"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if o.Reverse {
		q += " ORDER BY key DESC"
	} else {
		q += " ORDER BY key"
	}
	if o.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, int64(o.Limit))
	}
	return d.query(q, 2, func(row []driver.Value) error {
		k, _ := row[0].([]byte)
		v, _ := row[1].([]byte)
		return fn(k, v)
	}, args...)
}

// Meta reads the runtime's own metadata (not visible to the guest).
func (d *DB) Meta(key string) ([]byte, bool, error) {
	if d.absent {
		return nil, false, nil
	}
	var val []byte
	found := false
	err := d.query("SELECT value FROM meta WHERE key = ?", 1, func(row []driver.Value) error {
		val, _ = row[0].([]byte)
		found = true
		return nil
	}, key)
	return val, found, err
}

// SetMeta writes the runtime's own metadata (not bounded by the store's quota: the runtime's
// own writes, such as an alarm's retry count, must not fail because the guest filled it).
func (d *DB) SetMeta(key string, val []byte) error {
	if err := d.materialize(); err != nil {
		return err
	}
	_, err := d.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, val)
	return err
}

// DeleteMeta removes a metadata key and reports whether it existed.
func (d *DB) DeleteMeta(key string) (bool, error) {
	if d.absent {
		return false, nil
	}
	n, err := d.exec("DELETE FROM meta WHERE key = ?", key)
	return n > 0, err
}
