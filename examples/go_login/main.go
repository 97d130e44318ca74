// Command go_login is a break-glass login page on net/http and the Go binding's login flow.
//
//	GET  /           the form: password (step 1) and code (step 2)
//	POST /begin      password -> breakglass.LoginBegin: the code goes to otp_email
//	POST /complete   code -> breakglass.LoginComplete: a session cookie holds the token, and
//	                 the library raises the alarm (alert emails, webhook)
//	GET  /protected  breakglass.SessionCheck on the cookie: the page, or 401
//	POST /logout     breakglass.SessionEnd, and the cookie is dropped
//
// It is configured from the environment only (breakglass.ConfigureFromEnv), for example
//
//	BREAKGLASS_MAILER=file:///tmp/outbox BREAKGLASS_FROM_EMAIL=bg@example.com \
//	BREAKGLASS_OTP_EMAIL=oncall@example.com BREAKGLASS_ALERT_EMAILS=ops@example.com \
//	BREAKGLASS_PASSWORD_HASH='$argon2id$v=19$...' BREAKGLASS_ALLOWED_IPS=127.0.0.1 \
//	go build && LD_LIBRARY_PATH=../../target/release ./go_login   # http://127.0.0.1:8080/ (ADDR)
//
// The binary has no rpath into the checkout: install the library (make install) or point
// LD_LIBRARY_PATH at it (bindings/go/README.md). On SIGTERM or SIGINT it stops taking
// requests (http.Server.Shutdown), then waits for queued alarms (breakglass.Flush), each
// bounded, so that the alarm of a login just before a shutdown still goes out. Library
// records go to slog.Default() (stderr).
//
// The client's address is the connection's (r.RemoteAddr). Behind a reverse proxy, take it
// from the header your proxy sets, and only from a proxy you trust, or every login comes from
// the proxy's address and one attacker locks everyone out.
package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	breakglass "github.com/libbreakglass/libbreakglass/bindings/go"
)

// cookieName is the session cookie; it holds the library's session token.
const cookieName = "breakglass_session"

const form = `<!doctype html><title>Break-glass login</title>
<h1>Break-glass login</h1><p>%s</p>
<form method="post" action="/begin"><label>Password <input type="password" name="password"
 autocomplete="current-password"></label> <button>Send me a code</button></form>
<form method="post" action="/complete"><label>Code, or a recovery code <input name="code" type="text"
 autocomplete="one-time-code" spellcheck="false"></label> <button>Log in</button></form>`

func page(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, form, html.EscapeString(message))
}

// clientIP is the connection's address without its port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// denied answers a refused step. The page does not say which check refused a password
// (allow-list or password), so it tells an attacker nothing; it does say "locked out", which
// an operator needs to know. The reason goes to the log.
func denied(w http.ResponseWriter, err error) {
	slog.Warn("break-glass login refused", "err", err)
	switch {
	case errors.Is(err, breakglass.ErrLockedOut):
		page(w, http.StatusTooManyRequests, "Locked out: too many failures. Try again later.")
	case errors.Is(err, breakglass.ErrIPNotAllowed), errors.Is(err, breakglass.ErrWrongPassword),
		errors.Is(err, breakglass.ErrInvalid), errors.Is(err, breakglass.ErrExpired),
		errors.Is(err, breakglass.ErrNoPendingOTP), errors.Is(err, breakglass.ErrArgument):
		page(w, http.StatusForbidden, "Denied.")
	default: // not configured, the backend, the queue: still no access
		page(w, http.StatusServiceUnavailable, "The break-glass login is unavailable.")
	}
}

// newHandler is the whole site; the library must be configured first (setup).
func newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		page(w, http.StatusOK, "Emergency access. Every login raises an alarm.")
	})
	mux.HandleFunc("/begin", post(func(w http.ResponseWriter, r *http.Request) {
		if err := breakglass.LoginBegin(clientIP(r), r.PostFormValue("password")); err != nil {
			denied(w, err)
			return
		}
		// Queued is not delivered: when the last code email failed, offer the other way in.
		if failing, _ := breakglass.CodeEmailFailing(); failing {
			page(w, http.StatusOK, "A code was queued, but mail to the break-glass address has been "+
				"failing: if it does not arrive, type one of your recovery codes instead.")
			return
		}
		page(w, http.StatusOK, "A code is on its way to the break-glass address.")
	}))
	mux.HandleFunc("/complete", post(func(w http.ResponseWriter, r *http.Request) {
		token, err := breakglass.LoginComplete(clientIP(r), r.PostFormValue("code"))
		if err != nil {
			denied(w, err)
			return
		}
		// HttpOnly: no script reads it; SameSite=Strict: no other site's form posts with it;
		// Secure whenever the page itself came over TLS.
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, "/protected", http.StatusSeeOther)
	}))
	mux.HandleFunc("/protected", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil || breakglass.SessionCheck(c.Value) != nil {
			http.Error(w, "No break-glass session.", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("Break-glass session active. Everything you do here is audited.\n"))
	})
	mux.HandleFunc("/logout", post(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(cookieName); err == nil {
			_ = breakglass.SessionEnd(c.Value) // already over: the cookie goes anyway
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}))
	return mux
}

// post refuses every method but POST.
func post(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

// setup configures the library from the BREAKGLASS_* environment, and sends its records to
// slog's default logger (stderr unless the program sets another), so that a failed delivery
// is never silent.
func setup() error {
	breakglass.SetLogger(slog.Default())
	return breakglass.ConfigureFromEnv()
}

// drainTimeout bounds each stage of a shutdown: the requests in flight, then the alarms still
// queued (and their retries).
const drainTimeout = 10 * time.Second

// serve runs srv until ctx ends (SIGTERM or SIGINT in main), then stops taking requests,
// lets those in flight finish, and waits for the alarms still queued: an alarm raised by a
// login right before the signal still goes out. Each stage is bounded by drainTimeout.
func serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-served: // the listener failed
	case <-ctx.Done():
		slog.Info("stopping: finishing requests, then delivering queued alarms")
		shutdown, cancel := context.WithTimeout(context.Background(), drainTimeout)
		err = srv.Shutdown(shutdown)
		cancel()
	}
	flush, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if ferr := breakglass.Flush(flush); ferr != nil {
		slog.Error("break-glass alarms still queued at exit: they may be lost", "err", ferr)
		return errors.Join(err, ferr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func main() {
	if err := setup(); err != nil {
		slog.Error("break-glass configuration refused", "err", err)
		os.Exit(2)
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: newHandler(), ReadHeaderTimeout: 10 * time.Second}
	slog.Info("break-glass login on http://" + ln.Addr().String() + "/")
	if err := serve(ctx, srv, ln); err != nil {
		slog.Error("stopped", "err", err)
		os.Exit(1)
	}
}
