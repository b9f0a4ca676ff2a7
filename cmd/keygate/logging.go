package main

import (
	"io"
	"log/slog"
	"strings"
)

// newLogger returns the structured logger the configuration asks for.
// Durations are written as Go duration strings ("20s"), not nanoseconds.
func newLogger(c *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[strings.ToLower(c.LogLevel)], ReplaceAttr: durationsAsText}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
