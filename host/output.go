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
	w.buf = w.buf[:0]
}
