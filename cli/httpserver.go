package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dowasm/dowasm/config"
)

// newHTTPServer returns the server for h and a listener that holds at most lim.MaxConnections
// connections on ln. Every connection's descriptor comes out of the same budget as the
// objects' SQLite handles, so each stage of a request is bounded in time: headers
// (HeaderTimeout), body (BodyTimeout), response (WriteTimeout) and the wait between requests
// (IdleTimeout).
//
// net/http's own ReadTimeout and WriteTimeout are left unset on purpose: both run from the end
// of the headers, so they would also bound the event. A read deadline that passes while the
// handler runs fails net/http's background read, which cancels the request's context (the event
// rolls back); a write deadline that passes drops the finished response. withTimeouts sets the
// body and write deadlines per request instead, around the body and the response only.
func newHTTPServer(h http.Handler, ln net.Listener, lim config.HTTP, log *slog.Logger) (*http.Server, net.Listener) {
	lim = lim.OrDefaults()
	if lim.MaxConnections <= 0 {
		lim.MaxConnections = defaultMaxConnections()
	}
	log.Info("connection limits", "max_connections", lim.MaxConnections, "header_timeout", lim.HeaderTimeout,
		"body_timeout", lim.BodyTimeout, "write_timeout", lim.WriteTimeout, "idle_timeout", lim.IdleTimeout)
	srv := &http.Server{
		Handler:           withTimeouts(h, lim.BodyTimeout, lim.WriteTimeout),
		ReadHeaderTimeout: lim.HeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
	}
	return srv, newLimitListener(ln, lim.MaxConnections, log)
}

// defaultMaxConnections is half the process's open-file limit (Go raises the soft limit to the
// hard one at start), leaving the other half to databases, modules and logs; at least 64.
func defaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	return int(max(64, min(rl.Cur/2, 1<<20)))
}

// withTimeouts bounds the request body's arrival to body (from the start of the handler, right
// after the headers) and the response's sending to write (from its first byte). Between the two,
// while the event runs, the connection has no deadline.
func withTimeouts(h http.Handler, body, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// A keep-alive connection still has the previous response's write deadline.
		rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			rc.SetReadDeadline(time.Now().Add(body))
			r.Body = &timedBody{ReadCloser: r.Body, rc: rc, limit: body}
		}
		tw := &timedWriter{ResponseWriter: w, rc: rc, limit: write}
		h.ServeHTTP(tw, r)
		// What the handler did not write (an empty response, the buffered end) is sent after it
		// returns, under the same limit.
		if !tw.hijacked {
			tw.start()
		}
	})
}

// timedBody lifts the body's read deadline once the body is complete: net/http then reads the
// connection in the background to notice a client going away, and a deadline passing there
// would cancel the event.
type timedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	limit time.Duration
	done  bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF && !b.done:
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("request body not received within %s (the body timeout): %w", b.limit, err)
	}
	return n, err
}

// timedWriter sets the write deadline when the response starts. A WebSocket upgrade starts its
// 101 response here too, but its Hijack clears the connection's deadlines (net/http does so in
// hijackLocked), so sockets live as long as the host keeps them.
type timedWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	limit    time.Duration
	started  bool
	hijacked bool
}

func (w *timedWriter) start() {
	if !w.started {
		w.started = true
		w.rc.SetWriteDeadline(time.Now().Add(w.limit))
	}
}

func (w *timedWriter) WriteHeader(status int) {
	w.start()
	w.ResponseWriter.WriteHeader(status)
}

func (w *timedWriter) Write(b []byte) (int, error) {
	w.start()
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps http.FileServer's sendfile path.
func (w *timedWriter) ReadFrom(r io.Reader) (int64, error) {
	w.start()
	return io.Copy(w.ResponseWriter, r)
}

func (w *timedWriter) Flush() {
	w.start()
	w.rc.Flush()
}

func (w *timedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return w.rc.Hijack()
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (w *timedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limitListener holds at most cap(slots) connections open: past it, Accept waits until one is
// closed, and new connections wait in the kernel's accept queue (a client sees a slow connect,
// not an error). Hijacked connections (WebSockets) keep their slot until the host closes them.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	log       *slog.Logger
	lastWarn  atomic.Int64 // unix ns of the last "full" warning
}

func newLimitListener(ln net.Listener, n int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}), log: log}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.warnFull()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

// warnFull logs that the cap is reached, at most once a minute.
func (l *limitListener) warnFull() {
	now := time.Now().UnixNano()
	if last := l.lastWarn.Load(); now-last > int64(time.Minute) && l.lastWarn.CompareAndSwap(last, now) {
		l.log.Warn("connection limit reached: new connections wait until one closes", "max_connections", cap(l.slots))
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
