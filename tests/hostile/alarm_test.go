package hostile

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/host"
)

// testAlarmAlwaysFails: an object whose alarm handler re-arms a 1 ms alarm and fails, every time.
// The failure rolls the new alarm back, so the host's backoff applies: 1 + MaxAlarmRetries runs
// at 2 s, 4 s, 8 s, ... (±25%) apart, then the alarm is dropped with an error in the log. Time is
// a ManualClock the test moves 100 ms at a time (about 1 ms of real time per step), so a storm of
// 1 ms alarms would show up as a run at nearly every step.
func testAlarmAlwaysFails(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clock := host.NewManualClock(start)
	type run struct{ scheduled, started time.Time }
	var mu sync.Mutex
	var runs []run
	e := newEnv(t, host.Config{Clock: clock, OnAlarm: func(class string, scheduled, started time.Time) {
		if class == "alarm" {
			mu.Lock()
			runs = append(runs, run{scheduled, started})
			mu.Unlock()
		}
	}})
	e.load("alarm", assemble(t, "alarm.wat"))
	e.must("PUT", "/alarm/victim/", 204) // seeds "before", sets the alarm at start + 1 ms
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(runs) }

	m := e.startTenant()
	const step = 100 * time.Millisecond
	const horizon = 200 * time.Second // the whole schedule fits: 126 s at most +25%
	realStart := time.Now()
	steps := 0
	for elapsed := time.Duration(0); elapsed < horizon; elapsed += step {
		before := count()
		clock.Advance(step)
		steps++
		time.Sleep(time.Millisecond) // the scheduler sees the new time
		if n := count(); n > before {
			// An attempt started: wait until it has failed and its retry (or the drop) is
			// committed, so the clock does not run ahead of the bookkeeping.
			waitFor(t, "the failed attempt's bookkeeping", func() bool {
				st := e.rt.Stats()
				return st.AlarmFailures == st.AlarmRuns && int(st.AlarmRuns) >= n
			})
			retry, _ := e.storedMeta("alarm", "victim", "alarm_retry")
			_, armed := e.storedMeta("alarm", "victim", "alarm")
			t.Logf("t=+%5.1fs: attempt %d ran; alarm_retry now %q, alarm set: %v", clock.Now().Sub(start).Seconds(), n, retry, armed)
		}
		if count() > 1+abi.MaxAlarmRetries {
			break
		}
	}
	// Nothing more may happen: advance another 100 s.
	for i := 0; i < 100; i++ {
		clock.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	realTook := time.Since(realStart)
	st := m.finish()

	mu.Lock()
	got := append([]run(nil), runs...)
	mu.Unlock()
	want := 1 + abi.MaxAlarmRetries
	t.Logf("%d attempts over %s of alarm time (%d steps of %s, %s of real time)", len(got), (horizon + 100*time.Second), steps+100, step, realTook.Round(time.Millisecond))
	if len(got) != want {
		t.Errorf("the handler ran %d times, want %d (the first attempt and %d retries): a failing, re-arming alarm must follow the backoff schedule", len(got), want, abi.MaxAlarmRetries)
	}
	if len(got) > 0 && !got[0].scheduled.Equal(start.Add(time.Millisecond)) {
		t.Errorf("first attempt scheduled at %s, want start + 1 ms (%s): the guest's clock is not the host's", got[0].scheduled, start.Add(time.Millisecond))
	}
	var gaps []string
	for i := 1; i < len(got); i++ {
		// retry i was scheduled from the time attempt i-1 ran, which is at most a few steps
		// after its own schedule
		backoff := time.Duration(abi.AlarmBackoffMs) * time.Millisecond << (i - 1)
		gap := got[i].scheduled.Sub(got[i-1].scheduled)
		lo, hi := backoff*3/4, backoff*5/4+time.Second
		gaps = append(gaps, fmt.Sprintf("%.1fs", gap.Seconds()))
		if gap < lo || gap > hi {
			t.Errorf("retry %d scheduled %s after the previous attempt, want %s ±25%% (%s..%s)", i, gap, backoff, lo, hi)
		}
	}
	t.Logf("gaps between attempts: %s", strings.Join(gaps, ", "))
	// The end is logged as an error naming the object and the handler's message.
	hex := e.objectHex("alarm", "victim")
	dropped := e.logs.matching("alarm dropped", fmt.Sprintf("the handler failed %d times", want), hex, "alarm handler fails on purpose")
	if len(dropped) != 1 {
		t.Errorf("want one log record of the dropped alarm naming the object and the handler's error, got %d: %q", len(dropped), e.logs.matching("alarm"))
	}
	if retries := e.logs.matching("alarm handler failed; retrying", hex, "alarm handler fails on purpose"); len(retries) != abi.MaxAlarmRetries {
		t.Errorf("want %d log records of retries, got %d", abi.MaxAlarmRetries, len(retries))
	}
	if v, ok := e.storedMeta("alarm", "victim", "alarm"); ok {
		t.Errorf("the alarm is still set (%s) after %d failed attempts", v, len(got))
	}
	e.expectRolledBack("alarm", "victim")
	record(resultRow{Case: "alarm that always fails and re-arms in 1 ms", Stop: fmt.Sprintf("%d attempts in %.0f s of clock time, gaps %s; then dropped", len(got), (horizon + 100*time.Second).Seconds(), strings.Join(gaps, " ")),
		Outcome: fmt.Sprintf("each failure rolled back its write and its new alarm; `alarm dropped: the handler failed %d times` logged with the handler's message", want), Tenant: st})
}
