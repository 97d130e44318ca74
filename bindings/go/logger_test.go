package breakglass

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSetLoggerReceivesRecords(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "ok")
	// Everything, trace included: even then no record may hold the code.
	rec := useRecorder(t, slog.LevelDebug-4)
	configureMail(t, s)
	code := mustGenerate(t)
	if err := SendOTP(code); err != nil {
		t.Fatalf("SendOTP: %v", err)
	}
	mustFlush(t, 20*time.Second)
	s.wait(t, 1, 0, 10*time.Second)
	if _, ok := rec.find(slog.LevelInfo, "accepted"); !ok {
		t.Errorf("no info record saying the email was accepted; records: %+v", rec.records())
	}
	if err := Verify(code); err != nil {
		t.Errorf("Verify: %v", err)
	}
	wantIs(t, "Verify again", Verify(code), ErrNoPendingOTP)
	for _, r := range rec.records() {
		if strings.Contains(r.Message, code) {
			t.Errorf("a record holds the code although dev_otp_log is off: %+v", r)
		}
	}

	// Records logged on the calling goroutine arrive too (a refused configuration, at warn).
	_ = Configure("otp_ttl_seconds", "0")
	if _, ok := rec.find(slog.LevelWarn, "otp_ttl_seconds"); !ok {
		t.Errorf("no warn record for a refused Configure; records: %+v", rec.records())
	}

	// Detached: nothing more arrives.
	SetLogger(nil)
	n := len(rec.records())
	_ = Configure("otp_ttl_seconds", "0")
	if got := len(rec.records()); got != n {
		t.Errorf("%d records arrived after SetLogger(nil)", got-n)
	}
}

func TestSetLoggerDevOTPLog(t *testing.T) {
	fresh(t)
	rec := useRecorder(t, slog.LevelInfo)
	set(t, "dev_otp_log", "true")
	code := mustGenerate(t)
	wantIs(t, "SendOTP unconfigured", SendOTP(code), ErrNotConfigured)
	if _, ok := rec.find(slog.LevelWarn, code); !ok {
		t.Errorf("dev_otp_log on: the code was not logged at warn; records: %+v", rec.records())
	}
}

func TestSetLoggerLevels(t *testing.T) {
	fresh(t)
	cases := []struct {
		level slog.Level
		want  int
	}{
		{slog.LevelDebug - 4, libLevelTrace}, {slog.LevelDebug, libLevelDebug},
		{slog.LevelInfo, libLevelInfo}, {slog.LevelWarn, libLevelWarn},
		{slog.LevelError, libLevelError}, {slog.LevelError + 1, libLevelOff},
	}
	for _, c := range cases {
		if got := maxLevel(slog.New(&recorder{level: c.level})); got != c.want {
			t.Errorf("maxLevel(handler at %v) = %d, want %d", c.level, got, c.want)
		}
	}
	for lib, want := range map[int]slog.Level{
		1: slog.LevelError, 2: slog.LevelWarn, 3: slog.LevelInfo, 4: slog.LevelDebug, 5: slog.LevelDebug,
	} {
		if got := slogLevel(lib); got != want {
			t.Errorf("slogLevel(%d) = %v, want %v", lib, got, want)
		}
	}

	// An error-only logger gets no warn record (the refused Configure); a silent one nothing.
	errorsOnly := &recorder{level: slog.LevelError}
	SetLogger(slog.New(errorsOnly))
	t.Cleanup(quietLogger)
	_ = Configure("otp_ttl_seconds", "0")
	if err := Alert("192.0.2.9"); err != nil { // no channel: logged at error
		t.Fatal(err)
	}
	if _, ok := errorsOnly.find(slog.LevelError, "reached no one"); !ok {
		t.Errorf("error record missing: %+v", errorsOnly.records())
	}
	for _, r := range errorsOnly.records() {
		if r.Level < slog.LevelError {
			t.Errorf("an error-only logger got %+v", r)
		}
	}
	silent := &recorder{level: slog.LevelError + 100}
	SetLogger(slog.New(silent))
	_ = Alert("192.0.2.9")
	if n := len(silent.records()); n != 0 {
		t.Errorf("a silent logger got %d records", n)
	}
}

// panicky is a handler that panics on every record.
type panicky struct{ recorder }

func (p *panicky) Handle(context.Context, slog.Record) error { panic("handler panic") }

func TestLoggerCallbackRecoversPanics(t *testing.T) {
	fresh(t)
	before := callbackPanics.Load()
	SetLogger(slog.New(&panicky{recorder{level: slog.LevelDebug}}))
	t.Cleanup(quietLogger)
	_ = Configure("otp_ttl_seconds", "0") // logs at warn: the handler panics, C never sees it
	if callbackPanics.Load() == before {
		t.Error("the handler's panic was not recovered in the callback")
	}
	// The library is still fine.
	code := mustGenerate(t)
	if err := Verify(code); err != nil {
		t.Errorf("Verify after a panicking logger: %v", err)
	}
}

// TestSetLoggerSwapUnderLoad replaces the logger over and over while other goroutines log:
// every record must reach a live logger (a deleted handle would panic in the callback).
func TestSetLoggerSwapUnderLoad(t *testing.T) {
	fresh(t)
	t.Cleanup(quietLogger)
	before := callbackPanics.Load()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// A few records a millisecond: bg_set_logger waits for a moment when no callback is
	// running (its lock favours readers), so a flood of records would make it slow.
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = Configure("otp_ttl_seconds", "0") // a warn record on this goroutine
					time.Sleep(200 * time.Microsecond)
				}
			}
		}()
	}
	var recs []*recorder
	start := time.Now()
	for i := 0; i < 200 || time.Since(start) < 300*time.Millisecond; i++ {
		r := &recorder{level: slog.LevelWarn}
		recs = append(recs, r)
		SetLogger(slog.New(r))
		time.Sleep(100 * time.Microsecond)
		if i%50 == 0 {
			SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d swaps in %v", len(recs), time.Since(start))
	if n := callbackPanics.Load() - before; n != 0 {
		t.Errorf("%d panics in the log callback (a stale handle?)", n)
	}
	got := 0
	for _, r := range recs {
		got += len(r.records())
	}
	if got == 0 {
		t.Error("no logger got any record")
	}
}
