package breakglass

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// TestFlushContextWhileStalled holds the delivery queue with servers that never answer
// (SMTP "stall", HTTP "hang") and checks that Flush gives up with the context's error. The
// workers stay busy for about 3*delivery_timeout_ms plus 1.25 s of backoff; the test waits
// for them before it ends, so later tests find an idle queue.
func TestFlushContextWhileStalled(t *testing.T) {
	fresh(t)
	s := startServers(t, "stall", "hang")
	set(t,
		"mailer", s.smtpURL(),
		"from_email", "bg@example.com",
		"otp_email", "oncall@example.com",
		"alert_webhook_url", s.hookURL(),
		"delivery_timeout_ms", "200",
	)
	rec := useRecorder(t, slog.LevelWarn)
	before := mustStats(t)
	// Registered after startServers: runs first, while the servers still stall.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := Flush(ctx); err != nil {
			t.Errorf("the stalled deliveries did not finish: %v", err)
		}
		after := mustStats(t)
		if after.EmailsFailed != before.EmailsFailed+1 || after.WebhooksFailed != before.WebhooksFailed+1 {
			t.Errorf("stats %+v -> %+v: want one failed email and one failed webhook", before, after)
		}
		if _, ok := rec.find(slog.LevelError, "failed"); !ok {
			t.Errorf("no error record for the failed deliveries: %+v", rec.records())
		}
	})

	code := mustGenerate(t)
	if err := SendOTP(code); err != nil {
		t.Fatalf("SendOTP: %v", err)
	}
	if err := Alert("198.51.100.23"); err != nil {
		t.Fatalf("Alert: %v", err)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	wantIs(t, "Flush(cancelled)", Flush(cancelled), context.Canceled)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Flush(cancelled) took %v", d)
	}

	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	wantIs(t, "Flush(expired)", Flush(expired), context.DeadlineExceeded)

	short, cancel3 := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel3()
	start = time.Now()
	wantIs(t, "Flush(120 ms)", Flush(short), context.DeadlineExceeded)
	if d := time.Since(start); d < 100*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("Flush(120 ms) returned after %v", d)
	}

	// Cancellation from another goroutine, with no deadline: noticed within a slice.
	ctx, cancel4 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel4)
	start = time.Now()
	wantIs(t, "Flush(cancelled later)", Flush(ctx), context.Canceled)
	if d := time.Since(start); d < 90*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("Flush(cancelled after 100 ms) returned after %v", d)
	}
}
