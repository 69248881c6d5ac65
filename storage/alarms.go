package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dowasm/dowasm/internal/durablefs"
	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver for database/sql
)

// AlarmIndex is one class's index of its objects' alarm times: which objects to wake, and when,
// without opening every object's database. It lives in <data>/<class>/alarms.sqlite.
//
// The objects' own databases are the source of truth. The index keeps one invariant: for every
// object whose committed alarm is at T, the index holds an entry for it at or before T. The host
// keeps it by writing an entry durably (Ensure) before the object's commit that sets or moves the
// alarm earlier, and by moving entries later or removing them (Set, Remove) only after the commit
// that did so. A crash between the two leaves an entry that is early or stale: the host wakes the
// object, finds the real alarm in its database and repairs the entry. An alarm can therefore be
// delayed by a crash but never lost. A missing, partial or corrupt index is rebuilt from the
// objects' databases (Rebuild).
//
// Writes go through one goroutine that applies every queued write in one transaction (a group
// commit), so thousands of objects setting alarms at once share fsyncs.
type AlarmIndex struct {
	path  string
	class string
	db    *sql.DB

	reqs    chan *indexWrite
	done    chan struct{}
	mu      sync.Mutex // guards closing
	closing bool

	// complete is false until the index holds every object's alarm (after a rebuild).
	complete bool
}

type indexWrite struct {
	op   byte // 'e' ensure (keep the earlier), 's' set, 'r' remove
	id   string
	t    int64
	done chan error
}

// AlarmEntry is an object due (or next due) according to the index.
type AlarmEntry struct {
	ID   string
	Time int64 // ms since the epoch
}

const alarmSchema = `
CREATE TABLE IF NOT EXISTS alarms (id TEXT PRIMARY KEY, time INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alarms_by_time ON alarms (time, id);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`

// OpenAlarmIndex opens (or creates) the alarm index of class in the store's directory. A file
// that is not a usable database is moved aside (to alarms.sqlite.corrupt-<time>) and a new index
// is started; NeedsRebuild then reports true, as it does for a new index of a class that already
// has objects.
func (s *Store) OpenAlarmIndex(class string) (*AlarmIndex, error) {
	dir := filepath.Join(s.opts.Dir, class)
	if err := durablefs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("alarm index of class %s: %w", class, err)
	}
	path := filepath.Join(dir, "alarms.sqlite")
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("alarm index of class %s: %w", class, err)
	}
	x, err := openAlarmIndex(path, class, s.opts.Durability)
	if err != nil {
		if _, statErr := os.Stat(path); statErr != nil {
			return nil, err
		}
		// Unusable (corrupt, or not a database): keep it for inspection, start a new one.
		aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().UnixNano())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("%w (and moving it aside failed: %v)", err, rerr)
		}
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		if err := createPrivate(path); err != nil {
			return nil, fmt.Errorf("alarm index of class %s: %w", class, err)
		}
		x, err = openAlarmIndex(path, class, s.opts.Durability)
		if err != nil {
			return nil, err
		}
	}
	return x, nil
}

func openAlarmIndex(path, class string, dur Durability) (*AlarmIndex, error) {
	sync := "FULL"
	if dur == Relaxed {
		sync = "NORMAL"
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate&_busy_timeout=5000&_journal_mode=WAL&_synchronous="+sync)
	if err != nil {
		return nil, fmt.Errorf("alarm index %s: %w", path, err)
	}
	// One connection: writes are serialized by the writer goroutine anyway, and reads are
	// short indexed lookups.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(alarmSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("alarm index %s: %w", path, err)
	}
	var v string
	err = db.QueryRow("SELECT value FROM info WHERE key = 'complete'").Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		db.Close()
		return nil, fmt.Errorf("alarm index %s: %w", path, err)
	}
	x := &AlarmIndex{path: path, class: class, db: db, complete: v == "1",
		reqs: make(chan *indexWrite, 1024), done: make(chan struct{})}
	go x.writer()
	return x, nil
}

// Path is the index's file.
func (x *AlarmIndex) Path() string { return x.path }

// NeedsRebuild reports whether the index may lack objects' alarms (it is new or a rebuild was
// interrupted) and must be rebuilt from their databases before it is trusted.
func (x *AlarmIndex) NeedsRebuild() bool { return !x.complete }

var errIndexClosed = errors.New("alarm index closed")

func (x *AlarmIndex) submit(w *indexWrite) error {
	x.mu.Lock()
	if x.closing {
		x.mu.Unlock()
		return errIndexClosed
	}
	x.reqs <- w // under mu, so Close cannot close the channel first
	x.mu.Unlock()
	return <-w.done
}

// Ensure makes sure the index wakes object id at or before t, durably, before returning: an
// existing earlier entry is kept. Call it before committing an alarm at t.
func (x *AlarmIndex) Ensure(id string, t int64) error {
	return x.submit(&indexWrite{op: 'e', id: id, t: t, done: make(chan error, 1)})
}

// Set records that object id's alarm is at t (after the commit that put it there).
func (x *AlarmIndex) Set(id string, t int64) error {
	return x.submit(&indexWrite{op: 's', id: id, t: t, done: make(chan error, 1)})
}

// Remove forgets object id (after the commit that deleted its alarm).
func (x *AlarmIndex) Remove(id string) error {
	return x.submit(&indexWrite{op: 'r', id: id, done: make(chan error, 1)})
}

// writer applies queued writes in batches, one transaction (one fsync) per batch.
func (x *AlarmIndex) writer() {
	defer close(x.done)
	var batch []*indexWrite
	for w := range x.reqs {
		batch = append(batch[:0], w)
	drain:
		for len(batch) < 4096 {
			select {
			case w, ok := <-x.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, w)
			default:
				break drain
			}
		}
		err := x.apply(batch)
		for _, w := range batch {
			w.done <- err
		}
	}
}

func (x *AlarmIndex) apply(batch []*indexWrite) error {
	tx, err := x.db.Begin()
	if err != nil {
		return fmt.Errorf("alarm index %s: %w", x.path, err)
	}
	for _, w := range batch {
		switch w.op {
		case 'e':
			_, err = tx.Exec(`INSERT INTO alarms (id, time) VALUES (?, ?)
				ON CONFLICT (id) DO UPDATE SET time = min(time, excluded.time)`, w.id, w.t)
		case 's':
			_, err = tx.Exec(`INSERT INTO alarms (id, time) VALUES (?, ?)
				ON CONFLICT (id) DO UPDATE SET time = excluded.time`, w.id, w.t)
		case 'r':
			_, err = tx.Exec(`DELETE FROM alarms WHERE id = ?`, w.id)
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("alarm index %s: %w", x.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("alarm index %s: commit: %w", x.path, err)
	}
	return nil
}

// Get returns the index's entry for object id.
func (x *AlarmIndex) Get(id string) (int64, bool, error) {
	var t int64
	err := x.db.QueryRow("SELECT time FROM alarms WHERE id = ?", id).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("alarm index %s: %w", x.path, err)
	}
	return t, true, nil
}

// Due returns up to limit entries at or before now, earliest first.
func (x *AlarmIndex) Due(now int64, limit int) ([]AlarmEntry, error) {
	rows, err := x.db.Query("SELECT id, time FROM alarms WHERE time <= ? ORDER BY time, id LIMIT ?", now, limit)
	if err != nil {
		return nil, fmt.Errorf("alarm index %s: %w", x.path, err)
	}
	defer rows.Close()
	var out []AlarmEntry
	for rows.Next() {
		var e AlarmEntry
		if err := rows.Scan(&e.ID, &e.Time); err != nil {
			return nil, fmt.Errorf("alarm index %s: %w", x.path, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Next returns the earliest entry after now, if any.
func (x *AlarmIndex) Next(now int64) (int64, bool, error) {
	var t sql.NullInt64
	if err := x.db.QueryRow("SELECT min(time) FROM alarms WHERE time > ?", now).Scan(&t); err != nil {
		return 0, false, fmt.Errorf("alarm index %s: %w", x.path, err)
	}
	return t.Int64, t.Valid, nil
}

// Count returns how many objects the index holds.
func (x *AlarmIndex) Count() (int, error) {
	var n int
	err := x.db.QueryRow("SELECT count(*) FROM alarms").Scan(&n)
	return n, err
}

// Rebuild scans every object database of the class under dir (the store's layout) and ensures
// an index entry for each alarm found; then the index is complete. It is safe while objects run:
// their own index writes go through the same writer, and an entry left early or stale is repaired
// when it fires. progress, if not nil, is called every 10,000 databases and at the end.
//
// One unreadable database must not stop the alarms of every other object: a file SQLite says is
// not a database or is corrupt is moved aside (to <file>.unreadable-<unix ns>, with its -wal and
// -shm) and the scan goes on; an alarm that is not a number is reported and ignored; any other
// failure to read a file or directory (permissions, I/O) skips it, and the index is then left
// incomplete so the next start scans again. Each is reported to bad (aside is "" when the file
// stayed where it was).
func (x *AlarmIndex) Rebuild(ctx context.Context, dir string, progress func(scanned, alarms int), bad func(path, aside string, err error)) error {
	scanned, alarms, skipped := 0, 0, 0
	report := func(path, aside string, err error) {
		if bad != nil {
			bad(path, aside, err)
		}
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			skipped++
			report(path, "", err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".sqlite") || path == x.path {
			return nil
		}
		id := strings.TrimSuffix(d.Name(), ".sqlite")
		if len(id) != 64 {
			return nil
		}
		scanned++
		t, ok, err := readAlarm(path)
		if err != nil {
			if errors.Is(err, errNotAlarm) {
				report(path, "", err)
				return nil
			}
			if !isUnreadable(err) {
				skipped++
				report(path, "", err)
				return nil
			}
			aside, merr := setAside(path)
			if merr != nil {
				skipped++
				report(path, "", fmt.Errorf("%w (and moving it aside failed: %v)", err, merr))
				return nil
			}
			report(path, aside, err)
			return nil
		}
		if ok {
			alarms++
			if err := x.Ensure(id, t); err != nil {
				return err
			}
		}
		if progress != nil && scanned%10000 == 0 {
			progress(scanned, alarms)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if progress != nil {
		progress(scanned, alarms)
	}
	if skipped > 0 {
		return fmt.Errorf("alarm index %s: %d files or directories could not be read (see above); the index is incomplete and is rebuilt again at the next start", x.path, skipped)
	}
	if _, err := x.db.Exec("INSERT OR REPLACE INTO info (key, value) VALUES ('complete', '1')"); err != nil {
		return fmt.Errorf("alarm index %s: %w", x.path, err)
	}
	x.complete = true
	return nil
}

// isUnreadable reports whether SQLite found that a file is not a usable database (as opposed to
// failing to read it).
func isUnreadable(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt)
}

// createPrivate creates an empty file at path (which SQLite takes as an empty database) readable
// only by the server's user, unless it exists, and makes its directory entry durable.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, durablefs.FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	f.Close()
	return durablefs.SyncDir(filepath.Dir(path))
}

// setAside moves an unreadable database (and its -wal and -shm) out of the store's layout,
// keeping it for inspection, and returns its new path.
func setAside(path string) (string, error) {
	aside := fmt.Sprintf("%s.unreadable-%d", path, time.Now().UnixNano())
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	for _, ext := range []string{"-wal", "-shm"} {
		if err := os.Rename(path+ext, aside+ext); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return aside, err
		}
	}
	return aside, durablefs.SyncDir(filepath.Dir(path))
}

var errNotAlarm = errors.New("the stored alarm is not a number")

// readAlarm reads the alarm time stored in one object's database, read-only.
func readAlarm(path string) (int64, bool, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return 0, false, err
	}
	defer db.Close()
	var v []byte
	err = db.QueryRow("SELECT value FROM meta WHERE key = 'alarm'").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	t, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: %q", errNotAlarm, v)
	}
	return t, true, nil
}

// Close stops the writer (after the writes already queued) and closes the database.
func (x *AlarmIndex) Close() error {
	x.mu.Lock()
	if x.closing {
		x.mu.Unlock()
		return nil
	}
	x.closing = true
	close(x.reqs)
	x.mu.Unlock()
	<-x.done
	return x.db.Close()
}
