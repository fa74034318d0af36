package main

import (
	"fmt"
	"io"
	"log/slog"
)

// logFormat is serve's --log-format: "text" (slog's key=value lines, for
// people) or "json" (one object a line, for log shippers).
type logFormat string

const (
	logText logFormat = "text"
	logJSON logFormat = "json"
)

func (f *logFormat) String() string { return string(*f) }

// Set accepts text or json; anything else is a usage error (exit 2).
func (f *logFormat) Set(s string) error {
	switch logFormat(s) {
	case logText, logJSON:
		*f = logFormat(s)
		return nil
	}
	return fmt.Errorf("want text or json, got %q", s)
}

// newLogger returns serve's logger writing lines of format to w.
func newLogger(w io.Writer, format logFormat, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == logJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
