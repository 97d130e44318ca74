// Package breakglass is the Go binding of libbreakglass: one-time codes for an emergency
// ("break-glass") login, their delivery by email, and the alarm raised when such a login
// succeeds (alert emails and a signed JSON webhook).
//
// The library keeps its state per process: one configuration, one pending code, one
// delivery queue with its worker threads, one logger. Every function here is safe to call
// from any goroutine.
//
// A typical flow:
//
//	breakglass.Configure("mailer", "smtp://mail.example.com:587?tls=required")
//	breakglass.Configure("from_email", "Break Glass <bg@example.com>")
//	breakglass.Configure("otp_email", "oncall@example.com")
//	breakglass.Configure("alert_emails", "security@example.com")
//
//	code, err := breakglass.Generate() // a new code; any older one is void
//	err = breakglass.SendOTP(code)     // queued; delivered in the background
//
//	// later, with what the user typed:
//	if err := breakglass.Verify(typed); err != nil {
//		return err // deny: ErrInvalid, ErrExpired, ErrNoPendingOTP, ... (errors.Is)
//	}
//	breakglass.Alert(clientIP) // raise the alarm
//	breakglass.Flush(ctx)      // before exiting: let queued deliveries finish
//
// Grant access only when Verify returns nil: every error, whatever its kind, is a denial.
//
// The login flow wraps all of this: LoginBegin(ip, password) checks the allow-list, the
// lockouts and the password, then emails a code; LoginComplete(ip, code) checks the code and
// returns a session token (and raises the alarm); SessionCheck and SessionEnd use the token.
// Denials match ErrIPNotAllowed, ErrLockedOut, ErrWrongPassword, ErrNoSession and, for a
// code, ErrInvalid, ErrExpired, ErrNoPendingOTP. See examples/go_login for a net/http site.
//
// Errors are *Error values that carry the library's status code and its reason
// (bg_last_error, e.g. "otp_ttl_seconds: must be from 1 to 86400"); compare them with
// errors.Is against the sentinels (ErrInvalid, ErrArgument, ...). ConfigKeys returns the
// library's table of configuration keys. Go strings are passed to
// C as NUL-terminated copies, so an argument holding a NUL byte is refused with an error
// matching ErrArgument before the library is called (Alert excepted: see there).
//
// Building: the package uses cgo; a build with CGO_ENABLED=0 stops with an error naming
// the fix. By default it links the library from the repository's build tree (target/release,
// as `make release` produces it); build with the tag breakglass_pkgconfig to use an installed
// copy found through pkg-config. A build that cannot find breakglass.h (the module as `go get`
// fetches it holds no include/) stops with a message saying so. See README.md.
package breakglass
