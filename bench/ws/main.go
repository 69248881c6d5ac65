// Command ws is the load client of bench/ws.sh: it speaks the cursors protocol
// (examples/cursors/README.md) to dowasm's cursors class or to the bare floor (bench/wsfloor),
// in its own process so that each side has its own file descriptors.
//
//	ws broadcast -url ws://127.0.0.1:P -path-fmt '/cursors/%s/ws?name=%s' -n 1000 -msgs 1000 -senders 1,4 [-pid P]
//	    n sockets join one room; after the join storm has drained, a phase per -senders entry:
//	    that many senders send -msgs moves in all ("m <x> <y>", the send sequence encoded in x and
//	    y), each at most -window moves ahead of a designated receiver (the last socket to join,
//	    which both servers serve last). Then a latency phase of -latency-msgs moves, one at a time,
//	    each once every receiver has the previous one. Every receiver checks that it gets every
//	    move of every sender exactly once and in order, and records the latency of each delivery.
//	    Reports deliveries/s, latency p50/p99, and CPU time per delivery of the server (-pid)
//	    and of this client.
//	ws idle -url ... -path-fmt ... -n 10000 -rooms 100 -pid <server pid> [-stats http://.../_dowasm/stats]
//	    n sockets spread over rooms; the server's VmRSS before connecting, after every socket has
//	    joined, and after the rooms hibernated (live_instances 0 in -stats) and at least -settle
//	    passed; bytes per idle socket = (after - before) / n. With -no-join (the echo floor) the
//	    sockets only connect.
//	ws echo -url ws://127.0.0.1:P/echo -c 16 -d 5s
//	    round trips/s of 16 connections each sending a move-sized message and awaiting its echo.
//
// Results are printed as one "RESULT ..." line per measurement (key=value) for the script.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

var t0 = time.Now()

func now() int64 { return int64(time.Since(t0)) } // monotonic ns

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] "+format+"\n", append([]any{time.Since(t0).Seconds()}, args...)...)
}

// --- messages ----------------------------------------------------------------------------------

// field returns the integer after `"key":` at or after from, and the index past it.
func field(b []byte, key string, from int) (int, int, bool) {
	i := indexFrom(b, key, from)
	if i < 0 {
		return 0, 0, false
	}
	i += len(key)
	neg := false
	if i < len(b) && b[i] == '-' {
		neg, i = true, i+1
	}
	n, start := 0, i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i == start {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

func indexFrom(b []byte, s string, from int) int {
	if from > len(b) {
		return -1
	}
	i := strings.Index(string(b[from:]), s) // no copy: the conversion does not escape
	if i < 0 {
		return -1
	}
	return from + i
}

// msgType returns the value of the leading "type" field of a server message.
func msgType(b []byte) string {
	const p = `{"type":"`
	if len(b) < len(p) || string(b[:len(p)]) != p {
		return ""
	}
	rest := b[len(p):]
	for i, c := range rest {
		if c == '"' {
			switch string(rest[:i]) { // constant strings: no allocation per message
			case "move":
				return "move"
			case "hello":
				return "hello"
			case "join":
				return "join"
			case "leave":
				return "leave"
			}
			return string(rest[:i])
		}
	}
	return ""
}

// --- sockets -----------------------------------------------------------------------------------

type peer struct {
	i      int
	room   int
	conn   *websocket.Conn
	id     atomic.Int64 // socket id from the hello (0 until then)
	others atomic.Int64 // members listed in the hello; -1 until then
	joins  atomic.Int64
	closed atomic.Pointer[string]
}

type client struct {
	url, pathFmt string
	peers        []*peer
	roomSize     []int
	roomName     func(int) string
	stopping     atomic.Bool
	phase        atomic.Pointer[phase]
	unexpected   atomic.Int64
	firstErr     atomic.Pointer[string]
	pid          int  // the server's, for its CPU time and RSS (0: unknown)
	noJoin       bool // the server is the echo floor: no hello, no joins
}

func (c *client) problem(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.firstErr.CompareAndSwap(nil, &s)
}

func (c *client) dial(p *peer) error {
	u := c.url + fmt.Sprintf(c.pathFmt, c.roomName(p.room), "u"+strconv.Itoa(p.i))
	var lastErr error
	for try := 0; try < 5; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
		cancel()
		if err == nil {
			conn.SetReadLimit(16 << 20)
			p.conn = conn
			go c.read(p)
			return nil
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("%s: %s", u, resp.Status)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	return lastErr
}

// read is the socket's reader: it reuses one buffer and parses by hand (the client shares the
// machine's two CPUs with the server under test, so it must stay cheap).
func (c *client) read(p *peer) {
	buf := make([]byte, 0, 512)
	for {
		_, r, err := p.conn.Reader(context.Background())
		if err == nil {
			buf = buf[:0]
			for {
				if len(buf) == cap(buf) {
					buf = slices.Grow(buf, cap(buf))
				}
				var n int
				n, err = r.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if err != nil {
					break
				}
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		if err != nil {
			if !c.stopping.Load() {
				s := err.Error()
				p.closed.Store(&s)
				c.problem("socket %d (id %d) ended: %v", p.i, p.id.Load(), err)
			}
			return
		}
		c.handle(p, buf)
	}
}

func (c *client) handle(p *peer, b []byte) {
	switch msgType(b) {
	case "move":
		ph := c.phase.Load()
		if ph == nil {
			c.unexpected.Add(1)
			c.problem("socket %d: move outside a phase: %s", p.i, b)
			return
		}
		ph.move(c, p, b)
	case "join":
		p.joins.Add(1)
	case "hello":
		id, end, ok := field(b, `"id":`, 0)
		if !ok {
			c.problem("socket %d: bad hello %s", p.i, b)
			return
		}
		n := int64(0)
		for i := end; ; n++ {
			if i = indexFrom(b, `{"id":`, i); i < 0 {
				break
			}
			i++
		}
		p.id.Store(int64(id))
		p.others.Store(n)
	default:
		c.unexpected.Add(1)
		if len(b) > 200 {
			b = b[:200]
		}
		c.problem("socket %d: unexpected message %s", p.i, b)
	}
}

// connect dials every peer with conc dials in flight, then waits until each has its hello and
// the joins of everyone after it (the join storm has drained).
func (c *client) connect(conc int) {
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var dialErr atomic.Pointer[string]
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(c.peers) || dialErr.Load() != nil {
					return
				}
				if err := c.dial(c.peers[i]); err != nil {
					s := fmt.Sprintf("dial socket %d: %v", i, err)
					dialErr.CompareAndSwap(nil, &s)
					return
				}
				if d := done.Add(1); d%1000 == 0 || int(d) == len(c.peers) {
					logf("connected %d/%d", d, len(c.peers))
				}
			}
		}()
	}
	wg.Wait()
	if e := dialErr.Load(); e != nil {
		fail("%s", *e)
	}
	if c.noJoin {
		logf("all %d sockets connected in %.1fs", len(c.peers), time.Since(start).Seconds())
		return
	}
	last, lastAt := -1, time.Now()
	for {
		joined := 0
		for _, p := range c.peers {
			if o := p.others.Load(); o >= 0 && int(o+p.joins.Load()) == c.roomSize[p.room]-1 {
				joined++
			}
		}
		if e := c.firstErr.Load(); e != nil {
			fail("while joining: %s", *e)
		}
		if joined == len(c.peers) {
			break
		}
		if joined != last {
			last, lastAt = joined, time.Now()
		} else if time.Since(lastAt) > 60*time.Second {
			for _, p := range c.peers {
				if o := p.others.Load(); !(o >= 0 && int(o+p.joins.Load()) == c.roomSize[p.room]-1) {
					fail("join storm did not drain: %d/%d sockets complete; e.g. socket %d: hello listed %d, %d joins, want %d in all", joined, len(c.peers), p.i, o, p.joins.Load(), c.roomSize[p.room]-1)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	logf("all %d sockets joined and the join storm drained in %.1fs", len(c.peers), time.Since(start).Seconds())
}

// --- broadcast ---------------------------------------------------------------------------------

type phase struct {
	senders   int
	perSender int
	window    int
	gateAll   bool          // one sender, one move at a time: the next goes when every receiver has this one
	ids       map[int64]int // socket id -> sender index
	sentAt    [][]atomic.Int64
	sem       []chan struct{} // per sender: one token per move not yet at the designated receiver
	designate *peer
	next      [][]int32 // [peer][sender] next expected sequence (each row is its reader's)
	lat       [][]int32 // [peer] latencies in µs
	delivered atomic.Int64
	lastAt    atomic.Int64
	bad       atomic.Int64
}

func encode(seq int) (x, y int) { return seq % 10000, seq / 10000 }

func (ph *phase) move(c *client, p *peer, b []byte) {
	t := now()
	id, i, ok1 := field(b, `"id":`, 0)
	x, i, ok2 := field(b, `"x":`, i)
	y, _, ok3 := field(b, `"y":`, i)
	s, ok4 := ph.ids[int64(id)]
	if !ok1 || !ok2 || !ok3 || !ok4 {
		ph.bad.Add(1)
		c.problem("socket %d: move not from a sender: %s", p.i, b)
		return
	}
	seq := y*10000 + x
	if want := ph.next[p.i][s]; int32(seq) != want {
		ph.bad.Add(1)
		c.problem("socket %d: from sender %d got move %d, want %d (duplicate, loss or reordering)", p.i, s, seq, want)
	}
	ph.next[p.i][s] = int32(seq) + 1
	if seq < 0 || seq >= ph.perSender {
		ph.bad.Add(1)
		c.problem("socket %d: move %d out of range", p.i, seq)
		return
	}
	ph.lat[p.i] = append(ph.lat[p.i], int32((t-ph.sentAt[s][seq].Load())/1000))
	d := ph.delivered.Add(1)
	for {
		l := ph.lastAt.Load()
		if t <= l || ph.lastAt.CompareAndSwap(l, t) {
			break
		}
	}
	if ph.gateAll {
		if d%int64(len(ph.next)-1) == 0 {
			<-ph.sem[s]
		}
	} else if p == ph.designate {
		<-ph.sem[s]
	}
}

func (c *client) broadcast(senders, msgs, window int, gateAll bool) {
	n := len(c.peers)
	ph := &phase{senders: senders, perSender: msgs / senders, window: window, gateAll: gateAll, ids: map[int64]int{}, designate: c.peers[n-1]}
	if gateAll && (senders != 1 || window != 1) {
		fail("a latency phase has one sender and a window of 1")
	}
	if ph.perSender*senders != msgs {
		fail("-msgs %d is not a multiple of %d senders", msgs, senders)
	}
	for s := 0; s < senders; s++ {
		ph.ids[c.peers[s].id.Load()] = s
		ph.sentAt = append(ph.sentAt, make([]atomic.Int64, ph.perSender))
		ph.sem = append(ph.sem, make(chan struct{}, window))
	}
	ph.next = make([][]int32, n)
	ph.lat = make([][]int32, n)
	for i := range c.peers {
		ph.next[i] = make([]int32, senders)
		ph.lat[i] = make([]int32, 0, msgs)
	}
	c.phase.Store(ph)
	want := int64(senders) * int64(ph.perSender) * int64(n-1)
	serverCPU, selfCPU := cpu(c.pid), cpu(os.Getpid())
	start := now()
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := c.peers[s].conn
			for seq := 0; seq < ph.perSender; seq++ {
				ph.sem[s] <- struct{}{}
				x, y := encode(seq)
				ph.sentAt[s][seq].Store(now())
				if err := conn.Write(context.Background(), websocket.MessageText, []byte("m "+strconv.Itoa(x)+" "+strconv.Itoa(y))); err != nil {
					c.problem("sender %d: %v", s, err)
					return
				}
			}
		}()
	}
	last, lastAt := int64(-1), time.Now()
	for {
		d := ph.delivered.Load()
		if d == want {
			break
		}
		if e := c.firstErr.Load(); e != nil {
			fail("broadcast with %d senders: %s (%d of %d deliveries)", senders, *e, d, want)
		}
		if d != last {
			last, lastAt = d, time.Now()
		} else if time.Since(lastAt) > 30*time.Second {
			for i, row := range ph.next {
				for s, got := range row {
					if i != s && int(got) != ph.perSender {
						fail("broadcast with %d senders: stalled at %d of %d deliveries; e.g. socket %d has %d of sender %d's %d moves", senders, d, want, i, got, s, ph.perSender)
					}
				}
			}
			fail("broadcast with %d senders: stalled at %d of %d deliveries", senders, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	serverCPU, selfCPU = cpu(c.pid)-serverCPU, cpu(os.Getpid())-selfCPU
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // anything extra (a duplicate) shows up as a problem
	if e := c.firstErr.Load(); e != nil {
		fail("broadcast with %d senders: %s", senders, *e)
	}
	for i, row := range ph.next {
		for s, got := range row {
			wantN := ph.perSender
			if i == s {
				wantN = 0 // a sender does not get its own moves
			}
			if int(got) != wantN {
				fail("socket %d got %d of sender %d's moves, want %d", i, got, s, wantN)
			}
		}
	}
	c.phase.Store(nil)
	elapsed := float64(ph.lastAt.Load()-start) / 1e9
	all := make([]int32, 0, want)
	for _, l := range ph.lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(q float64) int32 { return all[int(q*float64(len(all)-1))] }
	win := strconv.Itoa(window)
	if gateAll {
		win = "all"
	}
	fmt.Printf("RESULT mode=broadcast n=%d senders=%d window=%s moves=%d deliveries=%d elapsed_s=%.3f deliveries_per_s=%.0f p50_us=%d p99_us=%d max_us=%d server_cpu_ns_per_delivery=%.0f client_cpu_ns_per_delivery=%.0f\n",
		n, senders, win, msgs, want, elapsed, float64(want)/elapsed, pct(0.50), pct(0.99), all[len(all)-1],
		float64(serverCPU)/float64(want), float64(selfCPU)/float64(want))
	logf("broadcast, %d sender(s), window %s: %d moves, %d deliveries in %.2fs, all exactly once and in order", senders, win, msgs, want, elapsed)
}

// --- server CPU --------------------------------------------------------------------------------

// cpu returns the CPU time (user + system) the process has used, from /proc/<pid>/stat in clock
// ticks of 1/100 s (USER_HZ on Linux).
func cpu(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fail("read server stat: %v", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	ut, _ := strconv.ParseInt(f[11], 10, 64)                 // field 14: utime
	st, _ := strconv.ParseInt(f[12], 10, 64)                 // field 15: stime
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// --- idle memory -------------------------------------------------------------------------------

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fail("read server status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	fail("no VmRSS in /proc/%d/status", pid)
	return 0
}

type stats struct {
	Live, Sockets int64
}

func getStats(url string) stats {
	resp, err := http.Get(url)
	if err != nil {
		fail("stats: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	live, _, ok1 := field(b, `"live_instances":`, 0)
	socks, _, ok2 := field(b, `"websockets":`, 0)
	if !ok1 || !ok2 {
		fail("stats: unexpected answer %s", b)
	}
	return stats{int64(live), int64(socks)}
}

func (c *client) idle(statsURL string, settle time.Duration) {
	pid, n := c.pid, len(c.peers)
	before := rss(pid)
	c.connect(64)
	joinedAt := time.Now()
	connected := rss(pid)
	hib := time.Duration(0)
	if statsURL != "" {
		for {
			st := getStats(statsURL)
			if st.Live == 0 {
				if st.Sockets != int64(n) {
					fail("after hibernation the server holds %d sockets, want %d", st.Sockets, n)
				}
				break
			}
			if time.Since(joinedAt) > 120*time.Second {
				fail("rooms did not hibernate within 120s: %d live instances", st.Live)
			}
			time.Sleep(100 * time.Millisecond)
		}
		hib = time.Since(joinedAt)
		logf("all rooms hibernated %.1fs after the last join", hib.Seconds())
	}
	if d := settle - time.Since(joinedAt); d > 0 {
		time.Sleep(d)
	}
	after := rss(pid)
	if e := c.firstErr.Load(); e != nil {
		fail("while idle: %s", *e)
	}
	open := 0
	for _, p := range c.peers {
		if p.closed.Load() == nil {
			open++
		}
	}
	if open != n {
		fail("%d of %d sockets still open", open, n)
	}
	fmt.Printf("RESULT mode=idle n=%d rooms=%d rss_before=%d rss_connected=%d rss_idle=%d hibernated_after_s=%.1f waited_s=%.1f bytes_per_socket=%.0f bytes_per_socket_connected=%.0f\n",
		n, len(c.roomSize), before, connected, after, hib.Seconds(), time.Since(joinedAt).Seconds(), float64(after-before)/float64(n), float64(connected-before)/float64(n))
}

// --- echo --------------------------------------------------------------------------------------

func echo(url string, conns int, d time.Duration) {
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	msg := []byte(`{"type":"move","id":17,"name":"u17","x":1234,"y":0}`)
	for i := 0; i < conns; i++ {
		conn, _, err := websocket.Dial(context.Background(), url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			fail("dial %s: %v", url, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.CloseNow()
			n := int64(0)
			for time.Now().Before(deadline) {
				if err := conn.Write(context.Background(), websocket.MessageText, msg); err != nil {
					fail("echo write: %v", err)
				}
				if _, b, err := conn.Read(context.Background()); err != nil || len(b) != len(msg) {
					fail("echo read: %v", err)
				}
				n++
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	fmt.Printf("RESULT mode=echo conns=%d round_trips_per_s=%.0f\n", conns, float64(total.Load())/d.Seconds())
}

// --- main --------------------------------------------------------------------------------------

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ws broadcast|idle|echo [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	url := fs.String("url", "", "ws://host:port (echo: the full URL)")
	pathFmt := fs.String("path-fmt", "/cursors/%s/ws?name=%s", "path of a room's socket: room, then name")
	n := fs.Int("n", 1000, "sockets")
	msgs := fs.Int("msgs", 2000, "broadcast: moves per phase, split among its senders")
	senderList := fs.String("senders", "1,4", "broadcast: phases, each with this many concurrent senders")
	window := fs.Int("window", 16, "broadcast: moves of one sender not yet at the designated receiver")
	latMsgs := fs.Int("latency-msgs", 200, "broadcast: moves of a last phase that sends one move at a time, each once every receiver has the previous one (latency without queueing); 0 skips it")
	rooms := fs.Int("rooms", 100, "idle: rooms")
	pid := fs.Int("pid", 0, "the server's pid: idle reads its VmRSS, broadcast its CPU time (/proc/<pid>/...)")
	noJoin := fs.Bool("no-join", false, "idle: the server is the echo floor (path-fmt like '/echo?r=%s&n=%s'): expect no hello or joins")
	statsURL := fs.String("stats", "", "idle: dowasm's /_dowasm/stats URL (wait until live_instances is 0)")
	settle := fs.Duration("settle", 5*time.Second, "idle: wait at least this long after the last join before the last RSS")
	conns := fs.Int("c", 16, "echo: connections")
	dur := fs.Duration("d", 5*time.Second, "echo: duration")
	fs.Parse(os.Args[2:])
	if *url == "" {
		fail("-url is required")
	}
	if mode == "echo" {
		echo(*url, *conns, *dur)
		return
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	c := &client{url: *url, pathFmt: *pathFmt, pid: *pid, noJoin: *noJoin}
	nrooms := 1
	switch mode {
	case "broadcast":
		c.roomName = func(int) string { return "bench-" + run }
	case "idle":
		nrooms = *rooms
		c.roomName = func(r int) string { return "idle-" + run + "-" + strconv.Itoa(r) }
	default:
		fail("unknown mode %q", mode)
	}
	c.roomSize = make([]int, nrooms)
	for i := 0; i < *n; i++ {
		p := &peer{i: i, room: i % nrooms}
		p.others.Store(-1)
		c.peers = append(c.peers, p)
		c.roomSize[p.room]++
	}
	switch mode {
	case "broadcast":
		c.connect(16)
		for _, f := range strings.Split(*senderList, ",") {
			k, err := strconv.Atoi(f)
			if err != nil || k < 1 || k >= *n {
				fail("bad -senders %q", *senderList)
			}
			c.broadcast(k, *msgs, *window, false)
		}
		if *latMsgs > 0 {
			c.broadcast(1, *latMsgs, 1, true)
		}
	case "idle":
		if *pid == 0 {
			fail("-pid is required")
		}
		c.idle(*statsURL, *settle)
	}
	c.stopping.Store(true)
}
