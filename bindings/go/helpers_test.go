package breakglass

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// allKeys is every configuration key, from the library's own table; resetConfig unsets them
// all.
var allKeys = func() []string {
	keys, err := ConfigKeys()
	if err != nil {
		panic(err)
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	return names
}()

// fresh starts a test from the default configuration and an empty slot, and restores both
// when the test ends.
func fresh(t *testing.T) {
	t.Helper()
	resetConfig(t)
	t.Cleanup(func() { resetConfig(t) })
}

func resetConfig(t *testing.T) {
	t.Helper()
	for _, k := range allKeys {
		if err := Unset(k); err != nil {
			t.Errorf("Unset(%s): %v", k, err)
		}
	}
	if err := Clear(); err != nil {
		t.Errorf("Clear: %v", err)
	}
}

// set configures key=value pairs and unsets each key when the test ends.
func set(t *testing.T, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		key, value := kv[i], kv[i+1]
		if err := Configure(key, value); err != nil {
			t.Fatalf("Configure(%s, %q): %v", key, value, err)
		}
		t.Cleanup(func() {
			if err := Unset(key); err != nil {
				t.Errorf("Unset(%s): %v", key, err)
			}
		})
	}
}

func mustGenerate(t *testing.T) string {
	t.Helper()
	code, err := Generate()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return code
}

func mustStats(t *testing.T) DeliveryStats {
	t.Helper()
	s, err := Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

// mustFlush waits (at most d) for the queue to drain.
func mustFlush(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got %v, want %v", what, err, target)
	}
}

// ---------------------------------------------------------------- test servers

type mailEvent struct {
	MailFrom string   `json:"mail_from"`
	RcptTos  []string `json:"rcpt_tos"`
	Data     string   `json:"data"`
}

type httpEvent struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// servers is a running tests/servers/bgserve.py: a real SMTP server and an HTTP server on
// 127.0.0.1, and what they received.
type servers struct {
	SMTPPort int `json:"smtp_port"`
	HTTPPort int `json:"http_port"`

	mu       sync.Mutex
	mails    []mailEvent
	requests []httpEvent
}

func (s *servers) smtpURL() string {
	return "smtp://127.0.0.1:" + strconv.Itoa(s.SMTPPort) + "?tls=opportunistic"
}

func (s *servers) hookURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.HTTPPort) + "/hook"
}

// python returns the interpreter that has aiosmtpd: $BG_TEST_PYTHON, else the repository's
// build/venv. Tests that need the servers are skipped when neither is set up, unless
// BG_TEST_PYTHON was given explicitly.
func python(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BG_TEST_PYTHON"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "build", "venv", "bin", "python"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no test Python (%s; run `make deps` or set BG_TEST_PYTHON)", p)
	}
	return p
}

// startServers runs bgserve.py with the given modes; it stops when the test ends (its stdin
// is closed).
func startServers(t *testing.T, smtpMode, httpMode string) *servers {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "tests", "servers", "bgserve.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python(t), script, "--smtp", smtpMode, "--http", httpMode, "--lifetime", "120")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", script, err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	s := &servers{}
	first := make(chan error, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		gotPorts := false
		for sc.Scan() {
			line := sc.Bytes()
			if !gotPorts {
				gotPorts = true
				first <- json.Unmarshal(line, s)
				continue
			}
			var kind struct {
				Kind string `json:"kind"`
			}
			_ = json.Unmarshal(line, &kind)
			s.mu.Lock()
			switch kind.Kind {
			case "mail":
				var m mailEvent
				if json.Unmarshal(line, &m) == nil {
					s.mails = append(s.mails, m)
				}
			case "http":
				var r httpEvent
				if json.Unmarshal(line, &r) == nil {
					s.requests = append(s.requests, r)
				}
			}
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
		if !gotPorts {
			first <- errors.New("exited before printing its ports")
		}
		_ = cmd.Wait()
	}()
	select {
	case err := <-first:
		if err != nil || s.SMTPPort == 0 || s.HTTPPort == 0 {
			t.Fatalf("bgserve.py: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bgserve.py did not start; stderr:\n%s", stderr.String())
	}
	return s
}

// wait waits until at least mails messages and requests requests arrived, or d passed.
func (s *servers) wait(t *testing.T, mails, requests int, d time.Duration) ([]mailEvent, []httpEvent) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		m := append([]mailEvent(nil), s.mails...)
		r := append([]httpEvent(nil), s.requests...)
		s.mu.Unlock()
		if len(m) >= mails && len(r) >= requests {
			return m, r
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %d mail(s) and %d request(s); got %d and %d", d, mails, requests, len(m), len(r))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ---------------------------------------------------------------- a recording slog handler

type record struct {
	Level   slog.Level
	Message string
}

// recorder is a slog.Handler that keeps every record at or above its level.
type recorder struct {
	level slog.Level
	mu    sync.Mutex
	recs  []record
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, record{rec.Level, rec.Message})
	return nil
}

func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

// find returns the first record at level whose message contains text.
func (r *recorder) find(level slog.Level, text string) (record, bool) {
	for _, rec := range r.records() {
		if rec.Level == level && strings.Contains(rec.Message, text) {
			return rec, true
		}
	}
	return record{}, false
}

// useRecorder installs a recorder at level as the library's logger until the test ends.
func useRecorder(t *testing.T, level slog.Level) *recorder {
	t.Helper()
	rec := &recorder{level: level}
	SetLogger(slog.New(rec))
	t.Cleanup(quietLogger)
	return rec
}

// quietLogger keeps the library's records out of the test output (the default logger writes
// them to stderr); tests that install their own logger restore this one.
func quietLogger() {
	SetLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func TestMain(m *testing.M) {
	quietLogger()
	code := m.Run()
	SetLogger(nil)
	os.Exit(code)
}
