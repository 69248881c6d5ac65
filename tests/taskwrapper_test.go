package tests

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dowasm/dowasm/internal/testutil"
	"gopkg.in/yaml.v3"
)

// The README's first command, `./task counter`, serves until it gets a signal. A signal sent to
// the wrapper's PID alone (as a supervisor, `kill PID` or exec.Cmd does, unlike a terminal's
// Ctrl-C, which reaches the whole process group) must stop the server gracefully, leave nothing
// listening or running, and the wrapper must exit with the server's status (0 after a graceful
// shutdown).
func TestTaskWrapperSignalStopsServer(t *testing.T) {
	dir := t.TempDir()
	// one class (the README's counter) keeps each start short; a second --config wins over the
	// task's --config dowasm.yaml
	config := filepath.Join(dir, "dowasm.yaml")
	if err := os.WriteFile(config, []byte("data: "+filepath.Join(dir, "data")+"\nclasses:\n  - name: counter\n    source: "+testutil.Path("examples/counter/go")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sig  syscall.Signal
		args []string
	}{
		{"counter/SIGTERM", syscall.SIGTERM, []string{"counter"}},
		{"counter/SIGINT", syscall.SIGINT, []string{"counter"}},
		{"run/SIGTERM", syscall.SIGTERM, []string{"run"}},
		// A go-task flag makes the wrapper hand the command line to go-task (as it does for
		// every task but build, counter and run); go-task ignores a signal sent to it alone (it
		// expects a terminal to signal its children too), so the wrapper signals go-task's
		// process group.
		{"via-go-task/SIGTERM", syscall.SIGTERM, []string{"--silent", "counter"}},
		{"via-go-task/SIGINT", syscall.SIGINT, []string{"--silent", "counter"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			viaTask := c.args[0] != "counter" && c.args[0] != "run"
			if _, err := os.Stat(testutil.Path(".bin/task")); err != nil && viaTask {
				t.Skip("go-task is not installed yet (.bin/task): any ./task command but build, counter and run installs it (./task test does)")
			}
			runWrapperUntilSignal(t, c.sig, !viaTask, dir, append(c.args, "--", "--config", config, "--listen", "127.0.0.1:0")...)
		})
	}
}

// The tasks ./task runs without go-task are single scripts in Taskfile.yml too, so the two ways
// to run them cannot drift apart.
func TestTaskfileAgreesWithWrapper(t *testing.T) {
	b, err := os.ReadFile(testutil.Path("Taskfile.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tasks map[string]struct {
			Deps []any
			Cmds []any
		}
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]any{
		"build":   {"bash scripts/build.sh"},
		"counter": {"bash scripts/counter.sh {{.CLI_ARGS}}"},
		"run":     {map[string]any{"task": "counter"}},
	} {
		task, ok := tf.Tasks[name]
		if !ok || len(task.Deps) != 0 || !reflect.DeepEqual(task.Cmds, want) {
			t.Errorf("Taskfile.yml: task %s has deps %v and cmds %v, want no deps and cmds %v: ./task runs it without go-task (change both)", name, task.Deps, task.Cmds, want)
		}
	}
	w, err := os.ReadFile(testutil.Path("task"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"build) script=scripts/build.sh ;;", "counter | run) script=scripts/counter.sh ;;"} {
		if !strings.Contains(string(w), want) {
			t.Errorf("./task does not contain %q", want)
		}
	}
}

// runWrapperUntilSignal starts `./task ARGS...` in a process group of its own, waits until the
// server answers HTTP, sends sig to the wrapper's PID only and checks that everything stops.
// Every process whose command line mentions marker is the server (or go-task) started here; with
// inPlace, the server must be the wrapper's own process (exec'd, no go-task).
func runWrapperUntilSignal(t *testing.T, sig syscall.Signal, inPlace bool, marker string, args ...string) {
	cmd := exec.Command(testutil.Path("task"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	t.Cleanup(func() {
		// whatever a failure left: the wrapper's process group and this run's processes
		syscall.Kill(-pid, syscall.SIGKILL)
		for _, p := range processesMentioning(marker) {
			syscall.Kill(p, syscall.SIGKILL)
		}
		<-exited
	})
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := testutil.ListenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { waitErr = cmd.Wait(); close(exited) }()

	var url string
	select {
	case url = <-urlc:
	case <-exited:
		t.Fatalf("./task %s exited before listening: %v\n%s", strings.Join(args, " "), waitErr, stderr)
	case <-time.After(5 * time.Minute):
		t.Fatalf("./task %s did not listen within 5 minutes\n%s", strings.Join(args, " "), stderr)
	}
	req, _ := http.NewRequest("POST", url+"/counter/signal/increment", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("the server does not answer: %v\n%s", err, stderr)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /counter/signal/increment: %d\n%s", resp.StatusCode, stderr)
	}
	servers := processesMentioning(marker)
	if len(servers) == 0 {
		t.Fatalf("found no process whose command line mentions %s", marker)
	}

	if err := syscall.Kill(pid, sig); err != nil { // the wrapper's PID, not its group
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("./task %s still runs 20 s after %v to its PID (processes %v still run)\n%s", strings.Join(args, " "), sig, processesMentioning(marker), stderr)
	}
	if waitErr != nil {
		t.Fatalf("./task %s exited with %v after %v, want the server's status after a graceful shutdown (0)\n%s", strings.Join(args, " "), waitErr, sig, stderr)
	}
	// the server (and go-task) are gone, not orphaned
	deadline := time.Now().Add(5 * time.Second)
	for left := processesMentioning(marker); len(left) > 0; left = processesMentioning(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("processes %v (of %v) still run after ./task exited\n%s", left, servers, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	host := strings.TrimPrefix(url, "http://")
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Fatalf("something still listens on %s", host)
	}
	if inPlace && !reflect.DeepEqual(servers, []int{pid}) {
		t.Fatalf("./task %s: want the server in the wrapper's process %d (exec, no go-task), found processes %v", strings.Join(args, " "), pid, servers)
	}
}

// processesMentioning lists the processes (not zombies) whose command line contains s.
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}
