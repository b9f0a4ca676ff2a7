package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/keygate/keygate/proxy"
)

// A busy keygate writes one access-log line per request. Written one at a
// time, each line is a write system call, and on a sidecar the container
// runtime reading the pipe wakes for each. lineBuffer gathers the lines and
// writes them together: when its buffer fills, logFlushDelay after the first
// line it holds, at once for a record at warn level or above (which takes
// the lines before it along), and on shutdown.
const (
	logFlushDelay = 100 * time.Millisecond
	logBufferSize = 64 << 10
)

// lineBuffer is an io.Writer that delays and batches writes to w. It is safe
// for concurrent use; the zero value is not usable (newLineBuffer).
type lineBuffer struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	delay  time.Duration
	timer  *time.Timer // armed while buf holds lines; nil before the first
	closed bool
}

func newLineBuffer(w io.Writer, delay time.Duration) *lineBuffer {
	return &lineBuffer{w: w, buf: make([]byte, 0, logBufferSize), delay: delay}
}

// Write appends p (one log record from a slog handler) to the buffer, first
// writing out what it holds when p would not fit. A record larger than the
// whole buffer is written on its own. After Close, writes go straight to w.
func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	if len(b.buf) == 0 {
		b.arm()
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// arm starts the countdown to the next flush; b.mu is held.
func (b *lineBuffer) arm() {
	if b.timer == nil {
		b.timer = time.AfterFunc(b.delay, func() { b.Flush() })
		return
	}
	b.timer.Reset(b.delay)
}

// Flush writes out the lines the buffer holds.
func (b *lineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *lineBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0] // a failed write drops the lines: the sink is broken, holding them would only grow
	return err
}

// Close writes out what the buffer holds and makes later writes go straight
// to w, so that lines logged during and after shutdown are not held back.
func (b *lineBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	b.closed = true
	return err
}

// flushingHandler flushes a lineBuffer after every record at warn level or
// above: warnings and errors are never held back, nor the lines before them.
type flushingHandler struct {
	slog.Handler
	buf *lineBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.buf.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(as), h.buf}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf}
}

// newServerLogger is newLogger for a long-running server: its lines go
// through a lineBuffer, and so do those of the access log it returns beside
// it (the same format; the logger's level decides). The returned function
// writes out what is held and must be called before the process exits.
func newServerLogger(c *Config, w io.Writer) (*slog.Logger, *proxy.AccessLog, func()) {
	buf := newLineBuffer(w, logFlushDelay)
	base := newLogger(c, buf)
	return slog.New(flushingHandler{base.Handler(), buf}), proxy.NewAccessLog(buf, c.LogFormat), func() { buf.Close() }
}
