package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf, logJSON, slog.LevelInfo).Info("hello", "app", "a1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["app"] != "a1" {
		t.Errorf("json log line %q (%v); want an object with msg and app", buf.String(), err)
	}
	buf.Reset()
	newLogger(&buf, logText, slog.LevelInfo).Info("hello", "app", "a1")
	if line := buf.String(); !strings.Contains(line, "msg=hello app=a1") {
		t.Errorf("text log line %q; want msg=hello app=a1", line)
	}
	buf.Reset()
	newLogger(&buf, logJSON, slog.LevelWarn).Info("quiet")
	if buf.Len() != 0 {
		t.Errorf("an info line passed level warn: %q", buf.String())
	}
}
