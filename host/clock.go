package host

import (
	"sort"
	"sync"
	"time"
)

// Clock is the runtime's wall clock: alarm scheduling reads it, and guests read it as their WASI
// wall clock (so a guest's "now" and its alarms agree). Tests substitute a ManualClock to test
// alarms, retries and backoff without sleeping.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives once the clock reads t or later. (Not After(d): a
	// duration computed from an earlier Now would be late by however long ago that was.)
	At(t time.Time) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                  { return time.Now() }
func (systemClock) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// ManualClock is a Clock that moves only when told to (Advance, Set).
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualWaiter
}

type manualWaiter struct {
	at time.Time
	ch chan time.Time
}

// NewManualClock returns a clock stopped at start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At fires when the clock is set to at or later.
func (c *ManualClock) At(at time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !at.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, manualWaiter{at: at, ch: ch})
	return ch
}

// Advance moves the clock forward by d and fires the waiters it passes.
func (c *ManualClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the clock to t (never backwards) and fires the waiters it passes.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	sort.Slice(c.waiters, func(i, j int) bool { return c.waiters[i].at.Before(c.waiters[j].at) })
	n := 0
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			break
		}
		w.ch <- c.now
		n++
	}
	c.waiters = append(c.waiters[:0], c.waiters[n:]...)
}
