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

// A break-glass login in two requests: the password (the code goes to otp_email), then the
// code (a session token comes back and the alarm is raised). Every denial is an error; the
// sentinels tell them apart. See examples/go_login for a whole net/http site.
func ExampleLoginBegin() {
	must := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	must(breakglass.Configure("mailer", "smtp://mail.example.com:587?tls=required"))
	must(breakglass.Configure("from_email", "bg@example.com"))
	must(breakglass.Configure("otp_email", "oncall@example.com"))
	must(breakglass.Configure("alert_emails", "security@example.com"))
	must(breakglass.Configure("password_hash", os.Getenv("BG_PASSWORD_HASH"))) // argon2id or bcrypt
	must(breakglass.Configure("allowed_ips", "10.0.0.0/8, 2001:db8::/32"))

	clientIP, password := "10.1.2.3", "what the operator typed"
	switch err := breakglass.LoginBegin(clientIP, password); {
	case err == nil:
		fmt.Println("a code was sent to the break-glass address")
	case errors.Is(err, breakglass.ErrLockedOut):
		fmt.Println("locked out: try again later")
	case errors.Is(err, breakglass.ErrWrongPassword), errors.Is(err, breakglass.ErrIPNotAllowed):
		fmt.Println("denied")
	default:
		fmt.Println("unavailable:", err) // e.g. ErrNotConfigured, with the library's reason
	}
}

func ExampleLoginComplete() {
	clientIP, code := "10.1.2.3", "123456" // the code from the email
	token, err := breakglass.LoginComplete(clientIP, code)
	if err != nil {
		// ErrInvalid, ErrExpired, ErrNoPendingOTP (each counted as a failure), ErrLockedOut,
		// ErrIPNotAllowed, ...: deny.
		fmt.Println("denied:", err)
		return
	}
	// Keep the token in an HttpOnly cookie; check it on every request.
	if err := breakglass.SessionCheck(token); errors.Is(err, breakglass.ErrNoSession) {
		fmt.Println("session over")
	}
	_ = breakglass.SessionEnd(token) // log out
}

func ExampleAttemptsLeft() {
	// For an operator console: how close an address is to a lockout, and lifting one.
	left, err := breakglass.AttemptsLeft("10.1.2.3")
	if err != nil {
		fmt.Println(err)
		return
	}
	if left == 0 {
		_ = breakglass.ResetAttempts("10.1.2.3")
	}
}

func ExampleConfigKeys() {
	keys, err := breakglass.ConfigKeys()
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == "max_attempts" {
			fmt.Printf("%s (%s, %d-%d, default %s)\n", k.Name, k.Kind, k.Min, k.Max, k.Default)
		}
	}
	// Output:
	// max_attempts (integer, 1-1000, default 5)
}

func ExampleError() {
	err := breakglass.Configure("otp_ttl_seconds", "0")
	var e *breakglass.Error
	if errors.As(err, &e) {
		fmt.Println(errors.Is(err, breakglass.ErrArgument), e.Reason)
	}
	// Output:
	// true otp_ttl_seconds: must be from 1 to 86400
}
