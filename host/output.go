package host

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// guestOutput forwards a guest's stdout and stderr (WASI fd_write) to the structured log, one
// record per line. A line longer than maxLine is cut into several records so a guest cannot make
// the host buffer without bound, and lines past the object's log rate are dropped (guestLog).
type guestOutput struct {
	log           *slog.Logger
	class, object string
	obj           *object

	mu  sync.Mutex
	buf []byte
	// panicLine is the last line starting with "panic: " the guest printed since takePanic:
	// TinyGo prints one and then traps, with no other way to say why.
	panicLine string
}

// maxPanicLine bounds the panic line kept for an error message.
const maxPanicLine = 1024

// takePanic returns the last "panic: " line printed since the previous call (a line still
// being written included) and forgets it.
func (w *guestOutput) takePanic() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.panicLine
	if bytes.HasPrefix(w.buf, []byte("panic: ")) {
		p = string(w.buf[:min(len(w.buf), maxPanicLine)])
	}
	w.panicLine = ""
	return p
}

const maxLine = 16 << 10

func (w *guestOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLine - len(w.buf)
			if len(p) < room {
				w.buf = append(w.buf, p...)
				break
			}
			w.buf = append(w.buf, p[:room]...)
			p = p[room:]
			w.flush()
			continue
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		w.flush()
	}
	return n, nil
}

func (w *guestOutput) flush() {
	if len(w.buf) > maxLine {
		w.buf = w.buf[:maxLine]
	}
	if w.obj.guestLog(len(w.buf)) {
		w.log.Log(context.Background(), slog.LevelInfo, string(w.buf), "class", w.class, "object", w.object, "source", "guest-stdout")
	}
	if bytes.HasPrefix(w.buf, []byte("panic: ")) {
		w.panicLine = string(w.buf[:min(len(w.buf), maxPanicLine)])
	}
	w.buf = w.buf[:0]
}

// guestLog reports whether the object may write n more bytes to the log now, within its own rate
// and the runtime's (Config.GuestLogRate...). What it may not write is dropped; the log says how
// much, at most once a second per object. Called on the object's loop goroutine only.
func (o *object) guestLog(n int) bool {
	r := o.class.rt
	if o.logRate == nil {
		o.logRate = rate.NewLimiter(rate.Limit(r.cfg.GuestLogRate), r.cfg.GuestLogBurst)
	}
	now := time.Now()
	if o.logRate.AllowN(now, min(n, r.cfg.GuestLogBurst)) && r.logRate.AllowN(now, min(n, r.cfg.GuestLogBurstTotal)) {
		return true
	}
	o.logDropped += int64(n)
	if now.Sub(o.logReported) >= time.Second {
		r.log.Warn("guest log output dropped: over the rate limit", "class", o.class.name, "object", o.idHex,
			"dropped_bytes", o.logDropped, "object_rate", r.cfg.GuestLogRate, "total_rate", r.cfg.GuestLogRateTotal)
		o.logDropped, o.logReported = 0, now
	}
	return false
}
