package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records every Write call it gets, and signals each one.
type writes struct {
	mu    sync.Mutex
	calls []string
	got   chan struct{}
}

func newWrites() *writes { return &writes{got: make(chan struct{}, 100)} }

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.calls = append(w.calls, string(p))
	w.mu.Unlock()
	w.got <- struct{}{}
	return len(p), nil
}

func (w *writes) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func TestLineBuffer(t *testing.T) {
	hour := time.Hour // never fires during a test: only what the case does writes
	big := strings.Repeat("x", logBufferSize+1)
	tests := []struct {
		name string
		do   func(b *lineBuffer)
		want []string // the Write calls the sink got, in order
	}{
		{"held until flushed", func(b *lineBuffer) { b.Write([]byte("a\n")); b.Write([]byte("b\n")) }, nil},
		{"flush writes all at once", func(b *lineBuffer) {
			b.Write([]byte("a\n"))
			b.Write([]byte("b\n"))
			b.Flush()
		}, []string{"a\nb\n"}},
		{"a full buffer is written first", func(b *lineBuffer) {
			b.Write([]byte("a\n"))
			b.Write([]byte(strings.Repeat("y", logBufferSize-1)))
		}, []string{"a\n"}},
		{"a record larger than the buffer goes on its own, after what was held", func(b *lineBuffer) {
			b.Write([]byte("a\n"))
			b.Write([]byte(big))
		}, []string{"a\n", big}},
		{"close flushes, then writes go straight through", func(b *lineBuffer) {
			b.Write([]byte("a\n"))
			b.Close()
			b.Write([]byte("b\n"))
		}, []string{"a\n", "b\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWrites()
			tc.do(newLineBuffer(w, hour))
			if got := w.list(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("writes = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLineBufferFlushesAfterDelay: a line is not held for longer than the
// delay, with no further writes or flushes to push it out.
func TestLineBufferFlushesAfterDelay(t *testing.T) {
	w := newWrites()
	b := newLineBuffer(w, time.Millisecond)
	for _, line := range []string{"a\n", "b\n"} {
		b.Write([]byte(line))
		<-w.got // the timer wrote it: this blocks forever (test timeout) if nothing does
	}
	if got := w.list(); fmt.Sprint(got) != fmt.Sprint([]string{"a\n", "b\n"}) {
		t.Errorf("writes = %q, want one per line, after the delay", got)
	}
}

// TestServerLoggerFlushesWarnings: warnings and errors are written at once,
// with the info lines before them, in order; info lines alone wait.
func TestServerLoggerFlushesWarnings(t *testing.T) {
	w := newWrites()
	buf := newLineBuffer(w, time.Hour)
	log := slog.New(flushingHandler{slog.NewJSONHandler(buf, nil), buf}).With("replica", 1)
	log.Info("request", "n", 1)
	log.Info("request", "n", 2)
	if got := w.list(); len(got) != 0 {
		t.Fatalf("info lines written at once: %q", got)
	}
	log.Warn("upstream failed")
	got := w.list()
	if len(got) != 1 || strings.Count(got[0], "\n") != 3 ||
		!(strings.Index(got[0], `"n":1`) < strings.Index(got[0], `"n":2`) && strings.Index(got[0], `"n":2`) < strings.Index(got[0], "upstream failed")) {
		t.Fatalf("after a warning, writes = %q, want one write of the three lines in order", got)
	}
	log.WithGroup("g").Error("boom")
	if got := w.list(); len(got) != 2 || !strings.Contains(got[1], "boom") {
		t.Errorf("after an error from a derived logger, writes = %q, want it written at once", got)
	}
}

// TestLineBufferConcurrent: lines written concurrently arrive whole.
func TestLineBufferConcurrent(t *testing.T) {
	var sink bytes.Buffer
	var mu sync.Mutex
	b := newLineBuffer(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return sink.Write(p)
	}), time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				fmt.Fprintf(b, "line %d %d %s\n", g, i, strings.Repeat("z", i%200))
			}
		}()
	}
	wg.Wait()
	b.Close()
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSuffix(sink.String(), "\n"), "\n")
	if len(lines) != 8*2000 {
		t.Fatalf("%d lines, want %d", len(lines), 8*2000)
	}
	for _, l := range lines {
		var g, i int
		var z string
		if n, _ := fmt.Sscanf(l, "line %d %d %s", &g, &i, &z); n < 2 || (i%200 > 0 && len(z) != i%200) {
			t.Fatalf("line %q is torn", l)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
