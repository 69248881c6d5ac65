// Package storage keeps each object's private key-value data in its own SQLite database (WAL)
// and pools the open handles: a million stored objects must work on a machine where only a few
// thousand databases can be open at once. The runtime leases a handle to an object's loop for
// one batch of events; the batch runs in one transaction with a savepoint per event.
package storage

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/dowasm/dowasm/internal/durablefs"
)

// Durability is how hard a commit works before it returns.
type Durability int

const (
	// Full fsyncs every commit (synchronous=FULL): a committed write survives power loss.
	Full Durability = iota
	// Relaxed does not fsync the WAL on commit (synchronous=NORMAL): a committed write survives
	// a process crash but possibly not an OS crash or power loss.
	Relaxed
)

// Limits, the same as the guest ABI's (abi.MaxKeySize etc.; a host test checks they agree).
const (
	MaxKeySize   = 2048
	MaxEntrySize = 2 << 20
	MaxBatch     = 128
)

var (
	ErrKeyTooLarge   = errors.New("key too large")
	ErrValueTooLarge = errors.New("key plus value too large")
	ErrTooManyKeys   = errors.New("too many keys in one batch")
	ErrInvalid       = errors.New("invalid argument")
	ErrClosed        = errors.New("storage closed")
	// ErrTxLost: SQLite rolled back the open transaction by itself after an error (DB.TxLost).
	ErrTxLost = errors.New("the transaction was rolled back by SQLite after an earlier storage error; no more writes until it ends")
)

// Options configure a Store.
type Options struct {
	Dir        string
	Durability Durability
	// MaxOpen bounds open database handles (each holds 3 file descriptors in WAL mode).
	// Default 4096.
	MaxOpen int
	// Quota bounds all objects together (a tenant's); the zero value is unlimited.
	Quota Quota
}

// Stats count handle activity.
type Stats struct {
	Open, Leased   int
	Opens, Closes  int64
	Creates        int64
	EvictedForRoom int64 // closed inline by an Acquire that found the pool full
	Trimmed        int64 // closed in the background to keep room in the pool
}

// Store is the set of all objects' databases under one directory.
type Store struct {
	opts Options

	mu      sync.Mutex
	cond    *sync.Cond
	handles map[string]*DB
	idle    list.List // of *DB not leased, most recently used at the front
	open    int       // handles open, being opened or being closed
	closed  bool
	stats   Stats
	usage   usage

	// The trimmer closes least recently used idle handles in the background once the pool is
	// above its high-water mark, so that leases rarely pay for closing one (a WAL checkpoint,
	// ~0.3 ms) on the event path.
	trim        chan struct{}
	trimmerDone chan struct{}
}

// Open prepares a store rooted at opts.Dir, creating the directory if needed.
func Open(opts Options) (*Store, error) {
	if opts.MaxOpen <= 0 {
		opts.MaxOpen = 4096
	}
	if err := durablefs.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("storage directory %s: %w", opts.Dir, err)
	}
	s := &Store{opts: opts, handles: map[string]*DB{}}
	if opts.Quota.set() {
		if err := s.scanUsage(); err != nil {
			return nil, err
		}
	}
	s.cond = sync.NewCond(&s.mu)
	s.trim = make(chan struct{}, 1)
	s.trimmerDone = make(chan struct{})
	go s.trimmer()
	return s, nil
}

// Path is where the object's database lives: a sharded tree so no directory holds more than a
// few thousand files even with millions of objects.
func (s *Store) Path(class, id string) string {
	if len(id) < 4 {
		return filepath.Join(s.opts.Dir, class, "_", id+".sqlite")
	}
	return filepath.Join(s.opts.Dir, class, id[0:2], id[2:4], id+".sqlite")
}

// ClassDir is the directory holding a class's object databases (and its alarm index).
func (s *Store) ClassDir(class string) string { return filepath.Join(s.opts.Dir, class) }

// Exists reports whether the object has a database, without creating one.
func (s *Store) Exists(class, id string) bool {
	_, err := os.Stat(s.Path(class, id))
	return err == nil
}

// Stats returns a snapshot of the pool's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Open = s.open
	st.Leased = s.open - s.idle.Len()
	return st
}

// Acquire leases the object's database, opening it if it exists, until Release. An object with
// no database yet gets an absent handle: reads find nothing and the first write creates the file.
// A second Acquire of the same object waits for the first lease to end. When MaxOpen handles
// are open, the least recently used idle handle is closed to make room; when every handle is
// leased, Acquire waits. ctx cancels the wait.
func (s *Store) Acquire(ctx context.Context, class, id string) (*DB, error) {
	key := class + "/" + id
	s.mu.Lock()
	// A waiter must wake when ctx ends; the hook is only registered once Acquire has to wait
	// (the common lease of an idle open handle never waits).
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	wait := func() {
		if stop == nil {
			stop = context.AfterFunc(ctx, func() {
				s.mu.Lock()
				s.cond.Broadcast()
				s.mu.Unlock()
			})
		}
		s.cond.Wait()
	}
	for {
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if d := s.handles[key]; d != nil {
			if d.leased {
				wait()
				continue
			}
			d.leased = true
			s.idle.Remove(d.elem)
			d.elem = nil
			s.mu.Unlock()
			return d, nil
		}
		if s.open < s.opts.MaxOpen {
			d := &DB{store: s, key: key, path: s.Path(class, id), leased: true}
			s.handles[key] = d
			s.open++
			s.mu.Unlock()
			_, err := d.open(s.opts.Durability, false)
			s.mu.Lock()
			if err != nil {
				delete(s.handles, key)
				s.open--
				s.cond.Broadcast()
				s.mu.Unlock()
				return nil, err
			}
			if !d.absent {
				s.stats.Opens++
			}
			if s.open > s.highWater() && !s.closed {
				select {
				case s.trim <- struct{}{}:
				default:
				}
			}
			s.mu.Unlock()
			return d, nil
		}
		if e := s.idle.Back(); e != nil {
			victim := e.Value.(*DB)
			s.idle.Remove(e)
			victim.elem = nil
			delete(s.handles, victim.key)
			s.stats.EvictedForRoom++
			s.stats.Closes++
			s.mu.Unlock()
			victim.close()
			s.mu.Lock()
			s.open--
			continue
		}
		wait()
	}
}

func (s *Store) highWater() int { return s.opts.MaxOpen - s.opts.MaxOpen/8 }
func (s *Store) lowWater() int  { return s.opts.MaxOpen - s.opts.MaxOpen/4 }

func (s *Store) trimmer() {
	defer close(s.trimmerDone)
	for range s.trim {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		var victims []*DB
		for s.open-len(victims) > s.lowWater() {
			e := s.idle.Back()
			if e == nil {
				break
			}
			d := e.Value.(*DB)
			s.idle.Remove(e)
			d.elem = nil
			delete(s.handles, d.key)
			victims = append(victims, d)
		}
		s.mu.Unlock()
		for _, d := range victims {
			d.close()
		}
		s.mu.Lock()
		s.open -= len(victims)
		s.stats.Closes += int64(len(victims))
		s.stats.Trimmed += int64(len(victims))
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// Release ends a lease. A handle whose connection failed is closed rather than reused.
func (s *Store) Release(d *DB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.leased = false
	if s.closed || d.broken {
		delete(s.handles, d.key)
		s.open--
		s.stats.Closes++
		d.close()
	} else {
		d.elem = s.idle.PushFront(d)
	}
	s.cond.Broadcast()
}

// Close closes every idle handle; handles still leased are closed when released. Acquire fails
// with ErrClosed afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var first error
	for e := s.idle.Front(); e != nil; e = e.Next() {
		d := e.Value.(*DB)
		delete(s.handles, d.key)
		s.open--
		s.stats.Closes++
		if err := d.close(); err != nil && first == nil {
			first = err
		}
	}
	s.idle.Init()
	s.cond.Broadcast()
	close(s.trim) // senders check s.closed under s.mu first
	s.mu.Unlock()
	<-s.trimmerDone // it may still be closing handles it took before Close
	return first
}
