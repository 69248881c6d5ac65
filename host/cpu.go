package host

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// cpuMeter measures the CPU time one event uses: the time its thread spends running guest code
// and host functions (SQLite included), not the time it waits for another object (a call), for
// a scheduler slot or for the disk. The event's run is cut into segments (one per guest call,
// split around each call to another object); waits between segments are not counted.
//
// Reading a thread's CPU clock is a system call (~0.7 µs here) and needs the goroutine locked to
// its thread, which most events are too short to be worth: a segment starts by reading only the
// wall clock, an upper bound of its CPU. Once a segment has run for preciseAfter, the meter locks
// the goroutine to its thread and reads the thread's CPU clock from then on (at most every
// preciseAfter; in between it adds wall time, again an upper bound, and reads the clock before
// calling a limit exceeded). So short events cost two wall-clock reads, and a long one is
// charged its real CPU plus at most preciseAfter of wall time per segment.
//
// Events are run by their object's loop goroutine, one at a time, so a meter needs no lock.
type cpuMeter struct {
	on      bool          // the event has a CPU limit (otherwise the meter does nothing)
	used    time.Duration // CPU charged for the completed segments
	running bool
	start   time.Time // the running segment's start (wall, monotonic)
	// precise: the running segment is locked to its thread; base is the wall time charged for
	// its start (before the lock), cpu0 the thread's CPU clock then; lastWall and lastCPU are
	// the latest reading
	precise       bool
	base          time.Duration
	cpu0, lastCPU time.Duration
	lastWall      time.Time
}

// preciseAfter is how long a segment runs on wall-clock estimates before the meter reads the
// thread's CPU clock, and how often it reads it after that.
const preciseAfter = time.Millisecond

// threadCPU reads the calling thread's CPU clock (user + system time).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// resume starts a segment.
func (m *cpuMeter) resume() {
	if !m.on || m.running {
		return
	}
	m.running, m.precise, m.start = true, false, time.Now()
}

// pause ends the running segment, charging it.
func (m *cpuMeter) pause() {
	if !m.running {
		return
	}
	if m.precise {
		m.used = m.charged(threadCPU())
		runtime.UnlockOSThread()
	} else {
		m.used += time.Since(m.start)
	}
	m.running, m.precise = false, false
}

// total is the CPU charged so far, the running segment included (exact as of this call for a
// precise segment).
func (m *cpuMeter) total() time.Duration {
	if !m.running {
		return m.used
	}
	if !m.precise {
		return m.used + time.Since(m.start)
	}
	return m.charged(threadCPU())
}

// charged is the CPU charged with the precise segment running and its thread's clock at cpu.
func (m *cpuMeter) charged(cpu time.Duration) time.Duration {
	return m.used + m.base + max(cpu-m.cpu0, 0)
}

// exceeds reports whether the event has used more than limit. Called often (every refill and
// host function call); reads the thread's CPU clock only when an estimate is not enough.
func (m *cpuMeter) exceeds(limit time.Duration) bool {
	if !m.running {
		return m.used > limit
	}
	now := time.Now()
	if !m.precise {
		w := now.Sub(m.start)
		if w < preciseAfter {
			return m.used+w > limit // (wall time is an upper bound of CPU time)
		}
		runtime.LockOSThread()
		c := threadCPU()
		m.precise, m.base, m.cpu0, m.lastCPU, m.lastWall = true, w, c, c, now
		return m.used+w > limit
	}
	if since := now.Sub(m.lastWall); since < preciseAfter && m.charged(m.lastCPU)+since <= limit {
		return false
	}
	m.lastCPU, m.lastWall = threadCPU(), now
	return m.charged(m.lastCPU) > limit
}
