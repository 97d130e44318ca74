package breakglass

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"
)

// configureMail points the OTP email at s.
func configureMail(t *testing.T, s *servers) {
	t.Helper()
	set(t,
		"mailer", s.smtpURL(),
		"from_email", "Break Glass <bg@example.com>",
		"otp_email", "oncall@example.com",
		"delivery_timeout_ms", "5000",
	)
}

func TestSendOTPDelivers(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "ok")
	configureMail(t, s)
	before := mustStats(t)

	code := mustGenerate(t)
	if err := SendOTP(code); err != nil {
		t.Fatalf("SendOTP: %v", err)
	}
	mustFlush(t, 20*time.Second)
	mails, _ := s.wait(t, 1, 0, 10*time.Second)
	m := mails[0]
	if m.MailFrom != "bg@example.com" || len(m.RcptTos) != 1 || m.RcptTos[0] != "oncall@example.com" {
		t.Errorf("envelope: from %q to %q", m.MailFrom, m.RcptTos)
	}
	if !strings.Contains(m.Data, code) {
		t.Errorf("the mail does not carry the code %s:\n%s", code, m.Data)
	}
	after := mustStats(t)
	if after.Queued != before.Queued+1 || after.EmailsSent != before.EmailsSent+1 || after.EmailsFailed != before.EmailsFailed {
		t.Errorf("stats %+v -> %+v", before, after)
	}
	// Sending does not consume the code.
	if err := Verify(code); err != nil {
		t.Errorf("Verify after SendOTP = %v", err)
	}
}

func TestAlertDelivers(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "ok")
	const secret = "s3cret-webhook-key"
	set(t,
		"mailer", s.smtpURL(),
		"from_email", "bg@example.com",
		"alert_emails", "a@example.com, b@example.com",
		"alert_webhook_url", s.hookURL(),
		"alert_webhook_secret", secret,
		"delivery_timeout_ms", "5000",
	)
	before := mustStats(t)
	if err := Alert("203.0.113.7"); err != nil {
		t.Fatalf("Alert: %v", err)
	}
	mustFlush(t, 20*time.Second)
	mails, reqs := s.wait(t, 2, 1, 10*time.Second)

	var rcpts []string
	for _, m := range mails {
		if len(m.RcptTos) != 1 {
			t.Errorf("an alert mail with %d recipients, want its own message per recipient: %q", len(m.RcptTos), m.RcptTos)
		}
		rcpts = append(rcpts, m.RcptTos...)
		if !strings.Contains(m.Data, "203.0.113.7") {
			t.Errorf("alert mail lacks the IP:\n%s", m.Data)
		}
	}
	sort.Strings(rcpts)
	if strings.Join(rcpts, ",") != "a@example.com,b@example.com" {
		t.Errorf("alert recipients %q", rcpts)
	}

	r := reqs[0]
	if r.Method != "POST" || r.Path != "/hook" {
		t.Errorf("webhook %s %s", r.Method, r.Path)
	}
	checkAlertJSON(t, r.Body, "203.0.113.7")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(r.Body))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.Headers["x-breakglass-signature"]; got != want {
		t.Errorf("X-Breakglass-Signature = %q, want %q", got, want)
	}

	after := mustStats(t)
	if after.Queued != before.Queued+1 || after.EmailsSent != before.EmailsSent+2 || after.WebhooksSent != before.WebhooksSent+1 {
		t.Errorf("stats %+v -> %+v", before, after)
	}

	// Without a secret there is no signature; a hostile IP (control characters, a NUL) stays
	// data: it reaches the JSON intact and adds no mail recipient.
	if err := Unset("alert_webhook_secret"); err != nil {
		t.Fatal(err)
	}
	hostile := "10.0.0.1\r\nBcc: evil@example.com\x00\"}"
	if err := Alert(hostile); err != nil {
		t.Fatalf("Alert(hostile): %v", err)
	}
	mustFlush(t, 20*time.Second)
	mails, reqs = s.wait(t, 4, 2, 10*time.Second)
	r = reqs[1]
	if _, ok := r.Headers["x-breakglass-signature"]; ok {
		t.Errorf("a signature without a secret: %q", r.Headers["x-breakglass-signature"])
	}
	checkAlertJSON(t, r.Body, strings.ReplaceAll(hostile, "\x00", `\u{0}`))
	for _, m := range mails[2:] {
		if len(m.RcptTos) != 1 || strings.Contains(strings.Join(m.RcptTos, ","), "evil") {
			t.Errorf("hostile IP changed the recipients: %q", m.RcptTos)
		}
	}
}

// checkAlertJSON checks the webhook body has exactly the documented fields.
func checkAlertJSON(t *testing.T, body, ip string) {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(body), &obj); err != nil {
		t.Fatalf("webhook body is not JSON: %v\n%s", err, body)
	}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "audit_head,event,id,ip,message,severity,timestamp" {
		t.Errorf("webhook keys %q, want exactly id, event, ip, timestamp, severity, message, audit_head", keys)
	}
	if id, _ := obj["id"].(string); len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("event id %q, want 32 lowercase hex digits", obj["id"])
	}
	if obj["ip"] != ip || obj["event"] != "break_glass_login" || obj["severity"] != "critical" {
		t.Errorf("webhook body %s", body)
	}
	if ts, _ := obj["timestamp"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("timestamp %q", obj["timestamp"])
	}
}

func TestWebhookServerErrorIsCountedAsFailed(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "status:500")
	rec := useRecorder(t, slog.LevelWarn)
	set(t, "alert_webhook_url", s.hookURL(), "delivery_timeout_ms", "2000")
	before := mustStats(t)
	if err := Alert("192.0.2.1"); err != nil {
		t.Fatalf("Alert: %v", err)
	}
	mustFlush(t, 20*time.Second) // three attempts, 250 ms and 1 s apart
	after := mustStats(t)
	if after.WebhooksFailed != before.WebhooksFailed+1 || after.WebhooksSent != before.WebhooksSent {
		t.Errorf("stats %+v -> %+v: want one more failed webhook", before, after)
	}
	// The server reports each request over a pipe that is read concurrently: the library may
	// be done before the third report is read, so wait for all three, then check no more came.
	_, reqs := s.wait(t, 0, 3, 5*time.Second)
	if len(reqs) != 3 {
		t.Errorf("a 500 was tried %d times, want 3", len(reqs))
	}
	if _, ok := rec.find(slog.LevelError, "failed"); !ok {
		t.Errorf("no error record for the failed webhook: %+v", rec.records())
	}
}

func TestQueueFull(t *testing.T) {
	fresh(t)
	s := startServers(t, "ok", "ok")
	configureMail(t, s)
	code := mustGenerate(t)
	before := mustStats(t)
	full := 0
	for i := 0; i < 1000; i++ {
		err := SendOTP(code)
		switch {
		case err == nil:
		case errors.Is(err, ErrQueueFull):
			full++
		default:
			t.Fatalf("SendOTP #%d: %v", i, err)
		}
	}
	after := mustStats(t)
	mustFlush(t, 60*time.Second)
	t.Logf("%d of 1000 dropped", full)
	if full == 0 {
		t.Fatal("1000 quick SendOTP calls never found the queue full")
	}
	if after.Dropped-before.Dropped != uint64(full) || after.Queued-before.Queued != uint64(1000-full) {
		t.Errorf("stats %+v -> %+v with %d refused", before, after, full)
	}
}

func TestAlertEmailRejectedForOneRecipient(t *testing.T) {
	fresh(t)
	s := startServers(t, "reject:b@example.com", "ok")
	set(t,
		"mailer", s.smtpURL(),
		"from_email", "bg@example.com",
		"alert_emails", "a@example.com,b@example.com",
		"delivery_timeout_ms", "5000",
	)
	before := mustStats(t)
	if err := Alert("192.0.2.44"); err != nil {
		t.Fatalf("Alert: %v", err)
	}
	mustFlush(t, 20*time.Second) // a 550 is final: no retry
	after := mustStats(t)
	if after.EmailsSent != before.EmailsSent+1 || after.EmailsFailed != before.EmailsFailed+1 {
		t.Errorf("stats %+v -> %+v: want one sent and one failed", before, after)
	}
	mails, _ := s.wait(t, 1, 0, 5*time.Second)
	if len(mails) != 1 || len(mails[0].RcptTos) != 1 || mails[0].RcptTos[0] != "a@example.com" {
		t.Errorf("mails %+v", mails)
	}
}
