package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dowasm/dowasm/abi"
	"github.com/dowasm/dowasm/internal/testutil"
	"github.com/dowasm/dowasm/storage"
	"github.com/dowasm/dowasm/toolchain"
)

var alarmEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// alarmRuntime is a runtime on a manual clock with the probe class loaded.
func alarmRuntime(t *testing.T, cfg Config) (*Runtime, *Class, *ManualClock) {
	t.Helper()
	clock, _ := cfg.Clock.(*ManualClock)
	if clock == nil {
		clock = NewManualClock(alarmEpoch)
		cfg.Clock = clock
	}
	rt := newTestRuntime(t, cfg)
	return rt, loadProbe(t, rt), clock
}

// waitFor polls cond for up to 20 s of real time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle gives the scheduler time to act on something it must NOT do (a negative check).
func settle() { time.Sleep(150 * time.Millisecond) }

// objectMeta reads an object's runtime metadata directly from its database.
func objectMeta(t *testing.T, rt *Runtime, c *Class, name, key string) (string, bool) {
	t.Helper()
	db, err := rt.Store().Acquire(context.Background(), c.name, c.ns.FromName(name).String())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Store().Release(db)
	v, ok, err := db.Meta(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(v), ok
}

func indexEntry(t *testing.T, c *Class, name string) (int64, bool) {
	t.Helper()
	at, ok, err := c.alarms.Get(c.ns.FromName(name).String())
	if err != nil {
		t.Fatal(err)
	}
	return at, ok
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func TestAlarmFiresAtItsTime(t *testing.T) {
	rt, c, clock := alarmRuntime(t, Config{})
	if got := mustDo(t, c, "a", "/alarm-in?d=5000"); got != "0" {
		t.Fatalf("alarm_set: %s", got)
	}
	want := ms(alarmEpoch.Add(5 * time.Second))
	if got := mustDo(t, c, "a", "/alarm-get"); got != want {
		t.Fatalf("alarm_get = %s, want %s", got, want)
	}
	if at, ok := indexEntry(t, c, "a"); !ok || strconv.FormatInt(at, 10) != want {
		t.Fatalf("index entry %d %v, want %s", at, ok, want)
	}
	clock.Advance(4999 * time.Millisecond)
	settle()
	if got := mustDo(t, c, "a", "/alarm-runs"); got != "|" {
		t.Fatalf("alarm ran early: %s", got)
	}
	clock.Advance(time.Millisecond)
	waitFor(t, "the alarm", func() bool { return mustDo(t, c, "a", "/alarm-runs") == "1|0/0/none;" })
	if got := mustDo(t, c, "a", "/alarm-get"); got != "none" {
		t.Fatalf("alarm still set after it ran: %s", got)
	}
	waitFor(t, "the index entry to go", func() bool { _, ok := indexEntry(t, c, "a"); return !ok })
	clock.Advance(time.Hour)
	settle()
	if s := rt.Stats(); s.AlarmRuns != 1 || s.AlarmFailures != 0 {
		t.Fatalf("stats after one alarm: %+v", s)
	}
}

func TestAlarmInThePastFiresAtOnce(t *testing.T) {
	_, c, _ := alarmRuntime(t, Config{})
	if got := mustDo(t, c, "a", "/alarm-set?t=1000"); got != "0" {
		t.Fatalf("alarm_set: %s", got)
	}
	waitFor(t, "a past alarm", func() bool { return mustDo(t, c, "a", "/alarm-runs") == "1|0/0/none;" })
}

func TestAlarmSetReplacesAndDeleteCancels(t *testing.T) {
	_, c, clock := alarmRuntime(t, Config{})
	mustDo(t, c, "a", "/alarm-in?d=1000")
	mustDo(t, c, "a", "/alarm-in?d=9000") // replaces: later
	if got, want := mustDo(t, c, "a", "/alarm-get"), ms(alarmEpoch.Add(9*time.Second)); got != want {
		t.Fatalf("alarm_get = %s, want %s", got, want)
	}
	clock.Advance(2 * time.Second)
	settle()
	if got := mustDo(t, c, "a", "/alarm-runs"); got != "|" {
		t.Fatalf("the replaced alarm fired: %s", got)
	}
	if got := mustDo(t, c, "a", "/alarm-delete"); got != "1" {
		t.Fatalf("alarm_delete = %s", got)
	}
	if got := mustDo(t, c, "a", "/alarm-delete"); got != "0" {
		t.Fatalf("second alarm_delete = %s", got)
	}
	waitFor(t, "the index entry to go", func() bool { _, ok := indexEntry(t, c, "a"); return !ok })
	clock.Advance(time.Minute)
	settle()
	if got := mustDo(t, c, "a", "/alarm-runs"); got != "|" {
		t.Fatalf("a deleted alarm fired: %s", got)
	}
}

// An alarm set by an event that fails is rolled back with it and never fires.
func TestAlarmOfRolledBackEventNeverFires(t *testing.T) {
	rt, c, clock := alarmRuntime(t, Config{})
	if st, _, err := do(c, "a", "/alarm-set-then-error"); err == nil {
		t.Fatalf("the failing event succeeded: %d", st)
	}
	if got := mustDo(t, c, "a", "/alarm-get"); got != "none" {
		t.Fatalf("rolled-back alarm is set: %s", got)
	}
	clock.Advance(time.Hour)
	settle()
	if s := rt.Stats(); s.AlarmRuns != 0 {
		t.Fatalf("a rolled-back alarm ran: %+v", s)
	}
}

func TestAlarmDeleteAllRemovesIt(t *testing.T) {
	rt, c, clock := alarmRuntime(t, Config{})
	mustDo(t, c, "a", "/alarm-in?d=1000")
	mustDo(t, c, "a", "/deleteall")
	if got := mustDo(t, c, "a", "/alarm-get"); got != "none" {
		t.Fatalf("alarm survived deleteAll: %s", got)
	}
	clock.Advance(time.Hour)
	settle()
	if s := rt.Stats(); s.AlarmRuns != 0 {
		t.Fatalf("an alarm removed by deleteAll ran: %+v", s)
	}
}

func TestAlarmBadTimes(t *testing.T) {
	_, c, _ := alarmRuntime(t, Config{AlarmHorizon: 24 * time.Hour})
	bad := "-" + strconv.Itoa(int(abi.InvalidArgument))
	for _, q := range []string{
		"t=-1",
		"t=-9223372036854775808",
		"t=" + ms(alarmEpoch.Add(24*time.Hour+time.Millisecond)),
		"t=9223372036854775807",
	} {
		if got := mustDo(t, c, "a", "/alarm-set?"+q); got != bad {
			t.Errorf("alarm_set(%s) = %s, want %s", q, got, bad)
		}
	}
	if got := mustDo(t, c, "a", "/alarm-set?t="+ms(alarmEpoch.Add(24*time.Hour))); got != "0" {
		t.Errorf("alarm_set at the horizon = %s", got)
	}
}

// A failing handler is retried after 2, 4, 8, 16, 32, 64 s (±25%), then the alarm is dropped.
func TestAlarmRetriesWithBackoffThenGivesUp(t *testing.T) {
	rt, c, clock := alarmRuntime(t, Config{})
	mustDo(t, c, "a", "/alarm-mode?m=fail")
	mustDo(t, c, "a", "/alarm-in?d=0")
	for n := 1; n <= abi.MaxAlarmRetries; n++ {
		waitFor(t, fmt.Sprintf("failure %d", n), func() bool { return rt.Stats().AlarmFailures == int64(n) })
		var retry, at string
		waitFor(t, "the retry to be stored", func() bool {
			var ok bool
			retry, _ = objectMeta(t, rt, c, "a", metaAlarmRetry)
			at, ok = objectMeta(t, rt, c, "a", metaAlarm)
			return ok && retry == strconv.Itoa(n)
		})
		next, _ := strconv.ParseInt(at, 10, 64)
		delay := time.Duration(next-clock.Now().UnixMilli()) * time.Millisecond
		base := 2 * time.Second << (n - 1)
		if delay < base*3/4 || delay > base*5/4 {
			t.Fatalf("retry %d after %s, want %s ±25%%", n, delay, base)
		}
		if e, ok := indexEntry(t, c, "a"); !ok || e > next {
			t.Fatalf("retry %d at %d but the index wakes the object at %d (%v)", n, next, e, ok)
		}
		clock.Advance(delay - time.Millisecond)
		settle()
		if got := rt.Stats().AlarmFailures; got != int64(n) {
			t.Fatalf("retry %d ran early", n)
		}
		clock.Advance(time.Millisecond)
	}
	waitFor(t, "the last failure", func() bool { return rt.Stats().AlarmFailures == abi.MaxAlarmRetries+1 })
	waitFor(t, "the alarm to be dropped", func() bool {
		_, ok := objectMeta(t, rt, c, "a", metaAlarm)
		return !ok
	})
	if _, ok := objectMeta(t, rt, c, "a", metaAlarmRetry); ok {
		t.Fatal("retry count left behind")
	}
	waitFor(t, "the index entry to go", func() bool { _, ok := indexEntry(t, c, "a"); return !ok })
	clock.Advance(24 * time.Hour)
	settle()
	if s := rt.Stats(); s.AlarmRuns != abi.MaxAlarmRetries+1 {
		t.Fatalf("attempts after giving up: %+v", s)
	}
}

// A retry that succeeds sees retry_count 1 and is_retry, and clears the retry state.
func TestAlarmRetrySuccessClearsRetryState(t *testing.T) {
	rt, c, clock := alarmRuntime(t, Config{})
	mustDo(t, c, "a", "/alarm-mode?m=fail-first")
	mustDo(t, c, "a", "/alarm-in?d=0")
	waitFor(t, "the first failure", func() bool { return rt.Stats().AlarmFailures == 1 })
	clock.Advance(3 * time.Second) // past 2 s + 25%
	waitFor(t, "the retry", func() bool { return mustDo(t, c, "a", "/alarm-runs") == "1|1/1/none;" })
	if _, ok := objectMeta(t, rt, c, "a", metaAlarmRetry); ok {
		t.Fatal("retry count kept after a success")
	}
	// the next alarm starts from zero again
	mustDo(t, c, "a", "/alarm-mode?m=ok")
	mustDo(t, c, "a", "/alarm-in?d=0")
	waitFor(t, "the next alarm", func() bool { return mustDo(t, c, "a", "/alarm-runs") == "2|1/1/none;0/0/none;" })
}

// Deleting the alarm in a handler that then fails cancels the retry; setting one in a handler
// that then fails is rolled back, and the alarm is retried.
func TestAlarmHandlerDeleteOrSetThenFail(t *testing.T) {
	rt, c, clock := alarmRuntime(t, Config{})
	mustDo(t, c, "del", "/alarm-mode?m=delete-fail")
	mustDo(t, c, "del", "/alarm-in?d=0")
	waitFor(t, "the failure", func() bool { return rt.Stats().AlarmFailures == 1 })
	waitFor(t, "the alarm to be dropped", func() bool { _, ok := objectMeta(t, rt, c, "del", metaAlarm); return !ok })

	mustDo(t, c, "set", "/alarm-mode?m=set-fail")
	mustDo(t, c, "set", "/alarm-in?d=0")
	waitFor(t, "the failure", func() bool { return rt.Stats().AlarmFailures == 2 })
	waitFor(t, "the retry to be stored", func() bool { v, _ := objectMeta(t, rt, c, "set", metaAlarmRetry); return v == "1" })
	clock.Advance(time.Hour)
	settle()
	if s := rt.Stats(); s.AlarmRuns < 3 {
		t.Fatalf("the retry did not run: %+v", s)
	}
}

// A handler sees no alarm while it runs, and an alarm it sets fires in turn.
func TestAlarmRearmFromHandler(t *testing.T) {
	_, c, clock := alarmRuntime(t, Config{})
	mustDo(t, c, "a", "/alarm-mode?m=rearm")
	mustDo(t, c, "a", "/alarm-in?d=0")
	waitFor(t, "the first run", func() bool { return mustDo(t, c, "a", "/alarm-runs") == "1|0/0/none;" })
	if got, want := mustDo(t, c, "a", "/alarm-get"), ms(alarmEpoch.Add(time.Second)); got != want {
		t.Fatalf("re-armed alarm %s, want %s", got, want)
	}
	clock.Advance(time.Second)
	waitFor(t, "the second run", func() bool { return strings.HasPrefix(mustDo(t, c, "a", "/alarm-runs"), "2|") })
}

// An index entry for an object without an alarm (left by a crash between the index write and
// the object's commit) costs one wake-up and is removed; the handler does not run.
func TestAlarmStaleIndexEntryIsRepaired(t *testing.T) {
	rt, c, clock := alarmRuntime(t, Config{})
	mustDo(t, c, "a", "/incr")
	if err := c.alarms.Ensure(c.ns.FromName("a").String(), clock.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	c.kickAlarms()
	// (AlarmDeliveries counts after the event's answer, which comes after the repair: wait for
	// both.)
	waitFor(t, "the stale entry to go and its delivery to end", func() bool {
		_, ok := indexEntry(t, c, "a")
		return !ok && rt.Stats().AlarmDeliveries == 1
	})
	if s := rt.Stats(); s.AlarmRuns != 0 || s.AlarmDeliveries != 1 {
		t.Fatalf("stale entry: %+v", s)
	}
	// an early entry (the alarm was moved later) is moved to the real time
	mustDo(t, c, "b", "/alarm-in?d=60000")
	if err := c.alarms.Ensure(c.ns.FromName("b").String(), clock.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}
	c.kickAlarms()
	want := clock.Now().Add(time.Minute).UnixMilli()
	waitFor(t, "the early entry to move", func() bool { at, _ := indexEntry(t, c, "b"); return at == want })
	if s := rt.Stats(); s.AlarmRuns != 0 {
		t.Fatalf("an alarm ran early: %+v", s)
	}
}

// Alarms survive a restart; a missing or corrupt index is rebuilt from the objects' databases.
func TestAlarmAfterRestartAndIndexLoss(t *testing.T) {
	for _, damage := range []string{"none", "deleted", "corrupt"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			clock := NewManualClock(alarmEpoch)
			rt, err := New(context.Background(), Config{DataDir: dir, Clock: clock, CacheDir: filepath.Join(os.TempDir(), "dowasm-test-wazero-cache")})
			if err != nil {
				t.Fatal(err)
			}
			c := loadProbe(t, rt)
			for _, name := range []string{"a", "b", "c"} {
				mustDo(t, c, name, "/alarm-in?d=5000")
			}
			mustDo(t, c, "noalarm", "/incr")
			if err := rt.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			index := filepath.Join(dir, "probe", "alarms.sqlite")
			switch damage {
			case "deleted":
				for _, suffix := range []string{"", "-wal", "-shm"} {
					os.Remove(index + suffix)
				}
			case "corrupt":
				for _, suffix := range []string{"-wal", "-shm"} {
					os.Remove(index + suffix)
				}
				if err := os.WriteFile(index, []byte(strings.Repeat("not a database ", 500)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(time.Minute) // the alarms are past due when the host comes back
			rt2, c2, _ := alarmRuntime(t, Config{DataDir: dir, Clock: clock})
			for _, name := range []string{"a", "b", "c"} {
				waitFor(t, "alarm of "+name, func() bool { return mustDo(t, c2, name, "/alarm-runs") == "1|0/0/none;" })
			}
			if s := rt2.Stats(); s.AlarmRuns != 3 {
				t.Fatalf("after restart: %+v", s)
			}
			if damage == "corrupt" {
				aside, _ := filepath.Glob(index + ".corrupt-*")
				if len(aside) != 1 {
					t.Fatalf("corrupt index not kept aside: %v", aside)
				}
			}
		})
	}
}

// Many objects with alarms due in the same second: each fires exactly once. 10,000 objects
// without the race detector (./task test runs this test once more without it), 1,000 with it.
func TestAlarmManyObjectsSameSecond(t *testing.T) {
	n := 10000
	if testing.Short() || raceEnabled {
		n = 1000
	}
	clock := NewManualClock(alarmEpoch)
	rt := newTestRuntime(t, Config{Clock: clock, Durability: storage.Relaxed, MaxInstances: 256})
	src := "tests/guests/probe"
	c, err := rt.LoadClass(context.Background(), "probe", src, testutil.Guest(t, src, toolchain.TinyGo))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, 1)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				// due within one second: 1000 ms + i%1000
				if st, body, err := do(c, "o"+strconv.Itoa(i), "/alarm-in?d="+strconv.Itoa(1000+i%1000)); err != nil || body != "0" {
					select {
					case errs <- fmt.Errorf("object %d: %d %q %v", i, st, body, err):
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if got, err := c.alarms.Count(); err != nil || got != n {
		t.Fatalf("index holds %d entries (%v), want %d", got, err, n)
	}
	t.Logf("%d alarms set in %s", n, time.Since(start))
	start = time.Now()
	clock.Advance(2 * time.Second)
	deadline := time.Now().Add(time.Duration(n/100+30) * time.Second)
	for rt.Stats().AlarmRuns < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d alarms ran: %+v", rt.Stats().AlarmRuns, n, rt.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d alarms fired in %s (%.0f/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
	settle()
	if s := rt.Stats(); s.AlarmRuns != int64(n) || s.AlarmFailures != 0 || s.AlarmDeliveries != int64(n) {
		t.Fatalf("want exactly %d runs and deliveries: %+v", n, s)
	}
	for i := 0; i < n; i += max(1, n/50) {
		if got := mustDo(t, c, "o"+strconv.Itoa(i), "/alarm-runs"); !strings.HasPrefix(got, "1|") {
			t.Fatalf("object %d: %s", i, got)
		}
	}
	if got, _ := c.alarms.Count(); got != 0 {
		t.Fatalf("index still holds %d entries", got)
	}
}

// A module without a dowasm_alarm export cannot set an alarm: alarm_set answers NOT_ALLOWED (and
// nothing is stored). The hand-made guest's fetch succeeds only if alarm_set returned -11.
func TestAlarmSetWithoutHandlerIsRefused(t *testing.T) {
	rt := newTestRuntime(t, Config{Clock: NewManualClock(alarmEpoch)})
	body := cat(i64const(alarmEpoch.UnixMilli()+1000), call(0), i32const(int32(abi.NotAllowed)), opI32Add)
	m := minimalGuest([]wimport{abiImport("alarm_set")}, body)
	c, err := rt.LoadClass(context.Background(), "noalarm", "test", m.encode())
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := do(c, "a", "/"); err != nil || st != 204 {
		t.Fatalf("alarm_set without dowasm_alarm: %d %v (want NOT_ALLOWED, so a 204)", st, err)
	}
	if _, ok := objectMeta(t, rt, c, "a", metaAlarm); ok {
		t.Fatal("an alarm was stored")
	}
}
