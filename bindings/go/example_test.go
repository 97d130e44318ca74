package breakglass_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	breakglass "github.com/libbreakglass/libbreakglass/bindings/go"
)

// The whole break-glass flow: configure delivery, issue and send a code, check what the user
// typed, raise the alarm, and flush the queue before exiting.
func Example() {
	must := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	must(breakglass.Configure("mailer", "smtp://mail.example.com:587?tls=required"))
	must(breakglass.Configure("from_email", "Break Glass <bg@example.com>"))
	must(breakglass.Configure("otp_email", "oncall@example.com"))
	must(breakglass.Configure("alert_emails", "security@example.com, ops@example.com"))
	must(breakglass.Configure("alert_webhook_url", "https://hooks.example.com/breakglass"))
	must(breakglass.Configure("alert_webhook_secret", os.Getenv("BG_WEBHOOK_SECRET")))

	code, err := breakglass.Generate()
	must(err)
	must(breakglass.SendOTP(code)) // queued: delivered in the background

	typed := "123456" // what the user entered
	if err := breakglass.Verify(typed); err != nil {
		fmt.Println("access denied:", err)
		return
	}
	must(breakglass.Alert("203.0.113.7"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := breakglass.Flush(ctx); err != nil {
		log.Printf("some deliveries are still pending: %v", err)
	}
}

func ExampleVerify() {
	code, err := breakglass.Generate()
	if err != nil {
		fmt.Println(err)
		return
	}
	// In real use the code reaches the user by SendOTP; here we type it straight back.
	fmt.Println("right code:", breakglass.Verify(code) == nil)

	// The code was consumed: it cannot be used twice.
	err = breakglass.Verify(code)
	fmt.Println("used twice:", errors.Is(err, breakglass.ErrNoPendingOTP))

	_, _ = breakglass.Generate()
	err = breakglass.Verify("not-a-code")
	fmt.Println("malformed:", errors.Is(err, breakglass.ErrInvalid))
	// Output:
	// right code: true
	// used twice: true
	// malformed: true
}

func ExampleSetLogger() {
	// Library records go to slog; the handler's level decides which the library produces.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	breakglass.SetLogger(logger.With("component", "breakglass"))
	defer breakglass.SetLogger(nil) // back to the library's default (warn and up, to stderr)
}

func ExampleFlush() {
	// Before exiting, give queued alerts a few delivery timeouts to go out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := breakglass.Flush(ctx); errors.Is(err, context.DeadlineExceeded) {
		fmt.Println("gave up waiting for deliveries")
	}
}
