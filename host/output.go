package host

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// guestOutput forwards a guest's stdout and stderr (WASI fd_write) to the structured log, one
// record per line. A line longer than maxLine is cut into several records so a guest cannot make
// the host buffer without bound.
type guestOutput struct {
	log           *slog.Logger
	class, object string

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
	w.log.Log(context.Background(), slog.LevelInfo, string(w.buf), "class", w.class, "object", w.object, "source", "guest-stdout")
	if bytes.HasPrefix(w.buf, []byte("panic: ")) {
		w.panicLine = string(w.buf[:min(len(w.buf), maxPanicLine)])
	}
	w.buf = w.buf[:0]
}
