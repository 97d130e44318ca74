package breakglass

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGenerateGivesSixDigits(t *testing.T) {
	fresh(t)
	digits := regexp.MustCompile(`^[0-9]{6}$`)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		code := mustGenerate(t)
		if !digits.MatchString(code) || len(code) != OTPLength {
			t.Fatalf("Generate() = %q, want six ASCII digits", code)
		}
		seen[code] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 codes gave only %d distinct values", len(seen))
	}
}

func TestVerifyOutcomes(t *testing.T) {
	fresh(t)

	wantIs(t, "Verify with nothing pending", Verify("123456"), ErrNoPendingOTP)

	code := mustGenerate(t)
	if err := Verify(code); err != nil {
		t.Fatalf("Verify(right code) = %v, want nil", err)
	}
	wantIs(t, "Verify again (consumed)", Verify(code), ErrNoPendingOTP)

	// A wrong code is a denial and consumes the pending code.
	code = mustGenerate(t)
	wantIs(t, "Verify(wrong code)", Verify(otherCode(code)), ErrInvalid)
	wantIs(t, "Verify(right code) after a wrong one", Verify(code), ErrNoPendingOTP)

	// Clear voids the pending code.
	code = mustGenerate(t)
	if err := Clear(); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	wantIs(t, "Verify after Clear", Verify(code), ErrNoPendingOTP)
	if err := Clear(); err != nil {
		t.Fatalf("Clear with nothing pending: %v", err)
	}

	// A new code replaces the old one at once.
	old := mustGenerate(t)
	code = mustGenerate(t)
	if old != code {
		wantIs(t, "Verify(replaced code)", Verify(old), ErrInvalid)
	} else if err := Verify(old); err != nil {
		t.Errorf("Verify(code, drawn twice) = %v", err)
	}
	wantIs(t, "Verify after the replaced code was tried", Verify(code), ErrNoPendingOTP)
}

func otherCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestVerifyMalformedCodes(t *testing.T) {
	fresh(t)
	for _, bad := range []string{
		"", "12345", "1234567", " 123456", "123456 ", "12345\n", "abcdef", "12a456",
		"１２３４５６", "\xff\xfe\xfd\xfc\xfb\xfa", "-12345", "+12345", strings.Repeat("1", 10000),
	} {
		code := mustGenerate(t)
		wantIs(t, "Verify("+strconvQuote(bad)+")", Verify(bad), ErrInvalid)
		wantIs(t, "Verify after a malformed code", Verify(code), ErrNoPendingOTP)
	}

	// A NUL byte is refused by the binding, before the library: a denial that leaves the
	// pending code in place.
	code := mustGenerate(t)
	err := Verify(code + "\x00")
	wantIs(t, "Verify(code+NUL)", err, ErrArgument)
	if errors.Is(err, ErrInvalid) || err == nil {
		t.Errorf("Verify(code+NUL) = %v", err)
	}
	if err := Verify(code); err != nil {
		t.Errorf("Verify(code) after a NUL attempt = %v, want nil", err)
	}
}

func strconvQuote(s string) string {
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", `\n`), "\x00", `\0`)
}

func TestVerifyExpired(t *testing.T) {
	fresh(t)
	set(t, "otp_ttl_seconds", "1")
	code := mustGenerate(t)
	time.Sleep(1200 * time.Millisecond)
	// Expiry is reported before the match is checked: a right and a wrong code alike.
	wantIs(t, "Verify(expired code)", Verify(code), ErrExpired)
	wantIs(t, "Verify after expiry", Verify(code), ErrNoPendingOTP)

	code = mustGenerate(t)
	time.Sleep(1200 * time.Millisecond)
	wantIs(t, "Verify(wrong, expired)", Verify(otherCode(code)), ErrExpired)
	wantIs(t, "Verify(malformed, expired)", Verify("x"), ErrNoPendingOTP)

	// Within the TTL the code still works.
	code = mustGenerate(t)
	if err := Verify(code); err != nil {
		t.Errorf("Verify(fresh code) = %v", err)
	}
}

func TestConcurrentVerifyGrantsExactlyOnce(t *testing.T) {
	fresh(t)
	const goroutines, rounds = 32, 200
	for round := 0; round < rounds; round++ {
		code := mustGenerate(t)
		var (
			start   = make(chan struct{})
			wg      sync.WaitGroup
			results = make([]error, goroutines)
		)
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				<-start
				results[g] = Verify(code)
			}(g)
		}
		close(start)
		wg.Wait()
		granted := 0
		for _, err := range results {
			switch {
			case err == nil:
				granted++
			case errors.Is(err, ErrNoPendingOTP):
			default:
				t.Fatalf("round %d: unexpected %v", round, err)
			}
		}
		if granted != 1 {
			t.Fatalf("round %d: %d of %d concurrent verifies granted, want exactly 1", round, granted, goroutines)
		}
	}
}

func TestConfigure(t *testing.T) {
	fresh(t)
	good := [][2]string{
		{"otp_ttl_seconds", "1"}, {"otp_ttl_seconds", "86400"},
		{"mailer", "smtp://127.0.0.1:2525?tls=opportunistic"}, {"mailer", "smtps://u:p@mail.example.com"},
		{"mailer", "file:///tmp"}, {"mailer", ""},
		{"from_email", "Break Glass <bg@example.com>"}, {"otp_email", "oncall@example.com"},
		{"alert_emails", "a@example.com, b@example.com"}, {"alert_emails", ""},
		{"alert_webhook_url", "https://hooks.example.com/x"}, {"alert_webhook_secret", "s3cret"},
		{"dev_otp_log", "true"}, {"dev_otp_log", "false"},
		{"delivery_timeout_ms", "1"}, {"delivery_timeout_ms", "600000"},
		{"slot_key", "svc:a:otp"}, {"slot_timeout_ms", "500"}, {"slot_wait_replicas", "2"},
	}
	for _, kv := range good {
		if err := Configure(kv[0], kv[1]); err != nil {
			t.Errorf("Configure(%s, %q) = %v", kv[0], kv[1], err)
		}
	}
	for _, k := range allKeys {
		if err := Unset(k); err != nil {
			t.Errorf("Unset(%s) = %v", k, err)
		}
	}

	bad := [][2]string{
		{"no_such_key", "1"}, {"", "1"}, {"OTP_TTL_SECONDS", "5"}, {strings.Repeat("k", 100), "1"},
		{"otp_ttl_seconds", "0"}, {"otp_ttl_seconds", "86401"}, {"otp_ttl_seconds", "abc"},
		{"otp_ttl_seconds", " 5"}, {"otp_ttl_seconds", ""}, {"otp_ttl_seconds", "-1"},
		{"mailer", "ftp://example.com"}, {"from_email", "not-an-address"},
		{"otp_email", "a@b\r\nBcc: x@y"}, {"alert_emails", "a@example.com,,b@example.com"},
		{"alert_webhook_url", "ftp://example.com/"}, {"dev_otp_log", "yes"},
		{"delivery_timeout_ms", "0"}, {"delivery_timeout_ms", "600001"},
		{"slot_key", "has space"}, {"slot_wait_replicas", "65"},
		{"otp_ttl_seconds", strings.Repeat("9", 70000)},
		// NUL bytes are refused by the binding.
		{"otp_ttl_seconds\x00", "5"}, {"otp_ttl_seconds", "5\x00"}, {"from_email", "a@example.com\x00b"},
	}
	for _, kv := range bad {
		err := Configure(kv[0], kv[1])
		wantIs(t, "Configure("+strconvQuote(kv[0])+", "+strconvQuote(kv[1])+")", err, ErrArgument)
		var e *Error
		if !errors.As(err, &e) || e.Code != 6 || e.Name != "invalid argument" || !strings.HasPrefix(e.Op, "Configure(") {
			t.Errorf("Configure error %#v", err)
		}
	}
	wantIs(t, "Unset(unknown)", Unset("no_such_key"), ErrArgument)
	wantIs(t, "Unset(NUL)", Unset("mailer\x00"), ErrArgument)

	// A bad value changes nothing: the TTL set before still applies.
	set(t, "otp_ttl_seconds", "1")
	wantIs(t, "Configure(otp_ttl_seconds, 0)", Configure("otp_ttl_seconds", "0"), ErrArgument)
	code := mustGenerate(t)
	time.Sleep(1100 * time.Millisecond)
	wantIs(t, "Verify after a refused TTL change", Verify(code), ErrExpired)

	// Unset restores the default (600 s).
	if err := Unset("otp_ttl_seconds"); err != nil {
		t.Fatal(err)
	}
	code = mustGenerate(t)
	time.Sleep(1100 * time.Millisecond)
	if err := Verify(code); err != nil {
		t.Errorf("Verify with the default TTL = %v", err)
	}
}

func TestConfigureFromEnv(t *testing.T) {
	fresh(t)
	rec := useRecorder(t, slog.LevelDebug-4)

	// A bad variable: none of them apply (dev_otp_log stays off).
	t.Setenv("BREAKGLASS_DEV_OTP_LOG", "true")
	t.Setenv("BREAKGLASS_OTP_TTL_SECONDS", "0")
	wantIs(t, "ConfigureFromEnv with a bad value", ConfigureFromEnv(), ErrArgument)
	code := mustGenerate(t)
	wantIs(t, "SendOTP unconfigured", SendOTP(code), ErrNotConfigured)
	for _, r := range rec.records() {
		if strings.Contains(r.Message, code) {
			t.Fatalf("the code reached the log although dev_otp_log was refused: %+v", r)
		}
	}

	// All good: they all apply.
	t.Setenv("BREAKGLASS_OTP_TTL_SECONDS", "1")
	t.Cleanup(func() { _ = Unset("dev_otp_log"); _ = Unset("otp_ttl_seconds") })
	if err := ConfigureFromEnv(); err != nil {
		t.Fatalf("ConfigureFromEnv: %v", err)
	}
	code = mustGenerate(t)
	wantIs(t, "SendOTP unconfigured", SendOTP(code), ErrNotConfigured)
	if _, ok := rec.find(slog.LevelWarn, code); !ok {
		t.Errorf("dev_otp_log from the environment did not log the code; records: %+v", rec.records())
	}
	time.Sleep(1200 * time.Millisecond)
	wantIs(t, "Verify with the TTL from the environment", Verify(code), ErrExpired)
}

func TestSendOTPErrors(t *testing.T) {
	fresh(t)
	code := mustGenerate(t)
	wantIs(t, "SendOTP unconfigured", SendOTP(code), ErrNotConfigured)
	set(t, "mailer", "file://"+t.TempDir(), "from_email", "bg@example.com")
	wantIs(t, "SendOTP without otp_email", SendOTP(code), ErrNotConfigured)
	for _, bad := range []string{"", "12345", "1234567", "abcdef", "12345\x00", "\x00"} {
		wantIs(t, "SendOTP("+strconvQuote(bad)+")", SendOTP(bad), ErrArgument)
	}
}

func TestSendOTPToFileOutbox(t *testing.T) {
	fresh(t)
	dir := t.TempDir()
	set(t, "mailer", "file://"+dir, "from_email", "bg@example.com", "otp_email", "oncall@example.com")
	before := mustStats(t)
	code := mustGenerate(t)
	if err := SendOTP(code); err != nil {
		t.Fatalf("SendOTP: %v", err)
	}
	mustFlush(t, 10*time.Second)
	after := mustStats(t)
	if after.Queued != before.Queued+1 || after.EmailsSent != before.EmailsSent+1 {
		t.Errorf("stats %+v -> %+v: want one more queued and sent", before, after)
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("outbox: %v, %v", files, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, files[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), code) || !strings.Contains(string(data), "oncall@example.com") {
		t.Errorf("outbox file lacks the code or the recipient:\n%s", data)
	}
}

func TestAlertWithoutChannels(t *testing.T) {
	fresh(t)
	rec := useRecorder(t, slog.LevelDebug)
	before := mustStats(t)
	for _, ip := range []string{"198.51.100.1", "", "\x00", strings.Repeat("9", 5000)} {
		if err := Alert(ip); err != nil {
			t.Errorf("Alert(%q...) = %v", strconvQuote(ip), err)
		}
	}
	if after := mustStats(t); after.Queued != before.Queued {
		t.Errorf("nothing to deliver, yet queued went %d -> %d", before.Queued, after.Queued)
	}
	if _, ok := rec.find(slog.LevelError, "reached no one"); !ok {
		t.Errorf("no error record for an alert that reached no one: %+v", rec.records())
	}
}

func TestFlushIdle(t *testing.T) {
	fresh(t)
	mustFlush(t, time.Second)
	if err := Flush(context.Background()); err != nil {
		t.Errorf("Flush(Background) = %v", err)
	}
	//lint:ignore SA1012 a nil context is tolerated on purpose
	if err := Flush(nil); err != nil { //nolint:staticcheck
		t.Errorf("Flush(nil) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantIs(t, "Flush(cancelled)", Flush(ctx), context.Canceled)
}

func TestStats(t *testing.T) {
	a := mustStats(t)
	b := mustStats(t)
	if b.Queued < a.Queued || b.EmailsSent < a.EmailsSent || b.EmailsFailed < a.EmailsFailed ||
		b.WebhooksSent < a.WebhooksSent || b.WebhooksFailed < a.WebhooksFailed || b.Dropped < a.Dropped {
		t.Errorf("counters went back: %+v -> %+v", a, b)
	}
}

func TestVersion(t *testing.T) {
	v := Version()
	if v == "" || v != HeaderVersion {
		t.Errorf("Version() = %q, HeaderVersion = %q", v, HeaderVersion)
	}
	header, err := os.ReadFile(filepath.Join("..", "..", "include", "breakglass.h"))
	if err != nil {
		t.Skipf("no build-tree header: %v", err)
	}
	m := regexp.MustCompile(`(?m)^#define BREAKGLASS_VERSION "([^"]+)"`).FindSubmatch(header)
	if m == nil {
		t.Fatal("BREAKGLASS_VERSION not found in include/breakglass.h")
	}
	if string(m[1]) != v {
		t.Errorf("Version() = %q, breakglass.h says %q", v, m[1])
	}
}

func TestErrors(t *testing.T) {
	sentinels := []*Error{
		ErrInvalid, ErrExpired, ErrNoPendingOTP, ErrNull, ErrBufferTooSmall, ErrArgument,
		ErrNotConfigured, ErrTimeout, ErrInternal, ErrBackend, ErrQueueFull,
		ErrIPNotAllowed, ErrLockedOut, ErrWrongPassword, ErrNoSession, ErrAudit, ErrDrillFailed,
	}
	names := map[string]bool{}
	for i, s := range sentinels {
		if s.Code != i+1 {
			t.Errorf("sentinel %d has code %d", i+1, s.Code)
		}
		if s.Name == "" || s.Name == "unknown status" || names[s.Name] {
			t.Errorf("sentinel %d has name %q", s.Code, s.Name)
		}
		names[s.Name] = true
		if !strings.Contains(s.Error(), s.Name) {
			t.Errorf("%q lacks %q", s.Error(), s.Name)
		}
		for j, other := range sentinels {
			if errors.Is(s, other) != (i == j) {
				t.Errorf("errors.Is(%v, %v) = %v", s, other, i != j)
			}
		}
	}
	if ErrBackend.Code != 10 || ErrQueueFull.Code != 11 || ErrExpired.Name != "expired" {
		t.Errorf("ErrBackend %+v, ErrQueueFull %+v, ErrExpired %+v", ErrBackend, ErrQueueFull, ErrExpired)
	}
	if ErrIPNotAllowed.Name != "ip not allowed" || ErrLockedOut.Name != "locked out" ||
		ErrWrongPassword.Name != "wrong password" || ErrNoSession.Name != "no session" {
		t.Errorf("login sentinels: %v %v %v %v", ErrIPNotAllowed, ErrLockedOut, ErrWrongPassword, ErrNoSession)
	}
	// A status newer than this binding still gives a usable error.
	err := statusError("Op", 1000, "")
	var e *Error
	if !errors.As(err, &e) || e.Code != 1000 || e.Name != "unknown status" || e.Op != "Op" {
		t.Errorf("statusError(1000) = %#v", err)
	}
	if statusError("Op", 0, "") != nil {
		t.Error("statusError(BG_OK) != nil")
	}
	wrapped := errors.Join(errors.New("context"), statusError("Verify", 2, ""))
	if !errors.Is(wrapped, ErrExpired) || errors.Is(wrapped, ErrInvalid) {
		t.Errorf("wrapped: %v", wrapped)
	}
	if got := statusError("Verify", 2, "").Error(); got != "breakglass: Verify: expired (status 2)" {
		t.Errorf("Error() = %q", got)
	}
	// The reason is shown, without repeating the status name the library may start it with,
	// and does not change what the error matches.
	withReason := statusError("Op", 6, "invalid argument: key: bad")
	if got := withReason.Error(); got != "breakglass: Op: invalid argument (status 6): key: bad" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(withReason, ErrArgument) {
		t.Errorf("%v does not match ErrArgument", withReason)
	}
	if got := statusError("Op", 14, "wrong password").Error(); got != "breakglass: Op: wrong password (status 14)" {
		t.Errorf("Error() = %q", got)
	}
	if errors.Is(ErrInvalid, errors.New("invalid")) {
		t.Error("an *Error matched a foreign error")
	}
}
