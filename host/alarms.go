package host

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/storage"
)

// Alarms. Each object has at most one alarm, stored in its own database (meta "alarm", decimal ms
// since the epoch; "alarm_retry", the number of failed attempts so far) inside the transaction of
// the event that set it. Each class has an index of its objects' alarms (storage.AlarmIndex) that
// the class's scheduler goroutine reads to wake objects when their alarm is due; the object's
// database stays the source of truth (see storage.AlarmIndex for the invariant that makes a crash
// delay an alarm but never lose it). An alarm is delivered as an event (eventAlarm) through the
// object's mailbox like any other, so it is serialized with the object's other events and runs
// under the same transaction and output gate.

const (
	metaAlarm      = "alarm"
	metaAlarmRetry = "alarm_retry"
)

// alarmBackoff is the delay before retry n (1-based): 2 s, 4 s, 8 s, ... with ±25% jitter.
func alarmBackoff(n int) time.Duration {
	d := time.Duration(abi.AlarmBackoffMs) * time.Millisecond << (n - 1)
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
}

func readMetaInt(db *storage.DB, key string) (int64, bool, error) {
	v, ok, err := db.Meta(key)
	if err != nil || !ok {
		return 0, false, err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("object database %s: metadata %s is %q, not a number", db.Path(), key, v)
	}
	return n, true, nil
}

// runAlarm runs an alarm event: if the object's alarm is due it calls the guest's handler with the
// alarm removed (so alarm_get sees only what the handler sets), and on failure puts the alarm back
// for a retry with backoff, or drops it after abi.MaxAlarmRetries retries or when the handler
// deleted it. An alarm that is not due (the index entry was early or stale) only repairs the
// index, after the batch commits.
func (o *object) runAlarm(db *storage.DB, ev *event) error {
	r := o.class.rt
	// The index is reconciled with the database after the batch, from a fresh read of the entry:
	// the entry that brought this event may have been written by a rebuild, not by this loop.
	o.alarmTouched, o.indexKnown = true, false
	now := r.cfg.Clock.Now().UnixMilli()
	t, ok, err := readMetaInt(db, metaAlarm)
	if err != nil {
		ev.result = eventResult{err: &EventError{Class: o.class.name, Object: o.idHex, Err: err}}
		return nil
	}
	if !ok || t > now {
		ev.result = eventResult{resp: &abi.Response{Status: 204}}
		return nil
	}
	retry, _, err := readMetaInt(db, metaAlarmRetry)
	if err != nil {
		ev.result = eventResult{err: &EventError{Class: o.class.name, Object: o.idHex, Err: err}}
		return nil
	}
	ev.alarmRetry, ev.alarmDeleted = int(retry), false
	r.alarmRuns.Add(1)
	if r.cfg.OnAlarm != nil {
		r.cfg.OnAlarm(o.class.name, time.UnixMilli(t), r.cfg.Clock.Now())
	}
	err = o.runEventWith(db, ev, func() error {
		if err := o.beginWrite(db, ev); err != nil {
			return err
		}
		if _, err := db.DeleteMeta(metaAlarm); err != nil {
			return err
		}
		return o.dispatch(ev)
	})
	if err != nil {
		return err // the batch's transaction is unusable
	}
	if ev.result.err == nil {
		// Success clears the retry count (a new alarm set by the handler has none either).
		if _, err := db.DeleteMeta(metaAlarmRetry); err != nil {
			return fmt.Errorf("clear alarm retry count: %w", err)
		}
		if retry > 0 {
			r.log.Info("alarm succeeded after retries", "class", o.class.name, "object", o.idHex, "retries", retry)
		}
		return nil
	}
	failure := ev.result.err
	r.alarmFailures.Add(1)
	if errors.Is(failure, ErrShuttingDown) {
		return nil // interrupted, not failed: the alarm is still there and fires after restart
	}
	drop := func(why string) error {
		if _, err := db.DeleteMeta(metaAlarm); err != nil {
			return err
		}
		if _, err := db.DeleteMeta(metaAlarmRetry); err != nil {
			return err
		}
		r.log.Error("alarm dropped: "+why, "class", o.class.name, "object", o.idHex, "retries", retry, "err", failure)
		return nil
	}
	if err := o.beginWrite(db, nil); err != nil {
		return err
	}
	// (The index is reconciled after the batch; a commit before a call of the handler may have
	// reconciled it already, for the alarm as it was then.)
	o.alarmTouched = true
	switch {
	case ev.alarmDeleted:
		return drop("the handler deleted it before failing")
	case retry >= abi.MaxAlarmRetries:
		return drop(fmt.Sprintf("the handler failed %d times", retry+1))
	}
	next := now + alarmBackoff(int(retry)+1).Milliseconds()
	if err := db.SetMeta(metaAlarm, strconv.AppendInt(nil, next, 10)); err != nil {
		return err
	}
	if err := db.SetMeta(metaAlarmRetry, strconv.AppendInt(nil, retry+1, 10)); err != nil {
		return err
	}
	r.log.Warn("alarm handler failed; retrying", "class", o.class.name, "object", o.idHex,
		"retry", retry+1, "of", abi.MaxAlarmRetries, "at", time.UnixMilli(next).UTC().Format(time.RFC3339Nano), "err", failure)
	return nil
}

// alarmBeforeCommit runs before the batch's commit when an event touched the alarm: the index must
// wake the object at or before the alarm about to be committed, durably, before the commit.
func (o *object) alarmBeforeCommit(db *storage.DB) error {
	x := o.class.alarms
	t, ok, err := readMetaInt(db, metaAlarm)
	if err != nil || !ok {
		return err
	}
	if err := o.loadIndexEntry(); err != nil {
		return err
	}
	if o.indexHas && o.indexAt <= t {
		return nil // already woken early enough
	}
	if err := x.Ensure(o.idHex, t); err != nil {
		return err
	}
	if !o.indexHas || t < o.indexAt {
		o.indexAt = t
	}
	o.indexHas = true
	o.class.kickAlarms()
	return nil
}

// alarmAfterCommit moves the index entry to the committed alarm (later, or away) once the commit
// made that safe.
func (o *object) alarmAfterCommit(db *storage.DB) {
	r := o.class.rt
	t, ok, err := readMetaInt(db, metaAlarm)
	if err != nil {
		r.log.Error("alarm index: reading the object's alarm", "class", o.class.name, "object", o.idHex, "err", err)
		return
	}
	if err := o.loadIndexEntry(); err != nil {
		r.log.Error("alarm index", "class", o.class.name, "object", o.idHex, "err", err)
		return
	}
	switch {
	case !ok && o.indexHas:
		if err = o.class.alarms.Remove(o.idHex); err == nil {
			o.indexHas = false
		}
	case ok && (!o.indexHas || o.indexAt != t):
		if err = o.class.alarms.Set(o.idHex, t); err == nil {
			o.indexAt, o.indexHas = t, true
			o.class.kickAlarms()
		}
	}
	if err != nil {
		// The entry stays early or stale, which only costs a spurious wake-up later.
		o.indexKnown = false
		r.log.Error("alarm index", "class", o.class.name, "object", o.idHex, "err", err)
	}
}

func (o *object) loadIndexEntry() error {
	if o.indexKnown {
		return nil
	}
	t, ok, err := o.class.alarms.Get(o.idHex)
	if err != nil {
		return err
	}
	o.indexAt, o.indexHas, o.indexKnown = t, ok, true
	return nil
}

// kickAlarms wakes the class's scheduler to look at the index again (an earlier alarm may have
// been added).
func (c *Class) kickAlarms() {
	select {
	case c.alarmKick <- struct{}{}:
	default:
	}
}

// runAlarms is the class's scheduler: it delivers an alarm event to every object whose index
// entry is due, oldest first, at most Config.AlarmConcurrency at a time across the runtime (so a
// backlog after downtime cannot starve live traffic), and sleeps until the next entry otherwise.
func (c *Class) runAlarms() {
	r := c.rt
	defer r.bg.Done()
	if c.alarms.NeedsRebuild() {
		dir := r.store.ClassDir(c.name)
		r.log.Debug("alarm index: rebuilding from the objects' databases", "class", c.name, "index", c.alarms.Path())
		err := c.alarms.Rebuild(r.shutdown, dir, func(scanned, alarms int) {
			if scanned > 0 { // a new class has nothing to say
				r.log.Info("alarm index: rebuilding from the objects' databases", "class", c.name, "index", c.alarms.Path(), "databases", scanned, "alarms", alarms)
			}
		}, func(path, aside string, err error) {
			if aside != "" {
				r.log.Error("alarm index: an object database is unreadable; moved aside, the object starts empty", "class", c.name, "file", path, "moved_to", aside, "err", err)
			} else {
				r.log.Error("alarm index: skipped a file it could not read", "class", c.name, "file", path, "err", err)
			}
		})
		if err != nil {
			if r.shutdown.Err() == nil {
				r.log.Error("alarm index: rebuild failed; alarms of this class may be late until a restart rebuilds it", "class", c.name, "err", err)
			}
		}
	}
	var mu sync.Mutex
	inflight := map[string]bool{}
	busy := func(id string) bool { mu.Lock(); defer mu.Unlock(); return inflight[id] }
	for r.shutdown.Err() == nil {
		if c.deleted.Load() {
			// A deleted class's alarms wait for it to be deployed again (DeployClass kicks).
			select {
			case <-c.alarmKick:
			case <-r.shutdown.Done():
			}
			continue
		}
		now := r.cfg.Clock.Now().UnixMilli()
		mu.Lock()
		n := len(inflight)
		mu.Unlock()
		due, err := c.alarms.Due(now, r.cfg.AlarmConcurrency+n)
		if err != nil {
			r.log.Error("alarm index: reading due alarms", "class", c.name, "err", err)
			select {
			case <-time.After(time.Second):
			case <-r.shutdown.Done():
			}
			continue
		}
		started := 0
		for _, e := range due {
			if busy(e.ID) {
				continue
			}
			select {
			case r.alarmSlots <- struct{}{}:
			case <-r.shutdown.Done():
				return
			}
			// Waiting for the slot may have taken a while: the entry read above may have been
			// delivered (and removed or moved) meanwhile. Check it again rather than wake the
			// object for nothing.
			if at, ok, err := c.alarms.Get(e.ID); err != nil || !ok || at > now || busy(e.ID) {
				<-r.alarmSlots
				continue
			}
			mu.Lock()
			inflight[e.ID] = true
			mu.Unlock()
			started++
			r.bg.Add(1)
			go func(e storage.AlarmEntry) {
				defer r.bg.Done()
				c.deliverAlarm(e)
				mu.Lock()
				delete(inflight, e.ID)
				mu.Unlock()
				<-r.alarmSlots
				c.kickAlarms()
			}(e)
		}
		if started > 0 {
			continue
		}
		var wake <-chan time.Time
		if t, ok, err := c.alarms.Next(now); err == nil && ok {
			wake = r.cfg.Clock.At(time.UnixMilli(t))
		}
		select {
		case <-wake:
		case <-c.alarmKick:
		case <-r.shutdown.Done():
		}
	}
}

// deliverAlarm sends one alarm event to the object and waits for it.
func (c *Class) deliverAlarm(e storage.AlarmEntry) {
	r := c.rt
	objID, err := c.ns.Parse(e.ID)
	if err != nil {
		// Not an ID of this class: nothing can ever fire it.
		r.log.Error("alarm index: dropping an entry that is not an object of this class", "class", c.name, "entry", e.ID, "err", err)
		c.alarms.Remove(e.ID)
		return
	}
	ev := &event{kind: eventAlarm, done: make(chan eventResult, 1)}
	if err := c.send(objID, ev); err != nil {
		if !errors.Is(err, ErrShuttingDown) {
			// Overloaded: try again a little later rather than spinning on the entry.
			r.log.Warn("alarm delayed", "class", c.name, "object", e.ID, "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.shutdown.Done():
			}
		}
		return
	}
	<-ev.done // the loop answers every event it took, also on shutdown
	r.alarmsDelivered.Add(1)
}
