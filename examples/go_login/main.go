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
//	go run .        # serves http://127.0.0.1:8080/ (ADDR to change it)
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
	"log"
	"net"
	"net/http"
	"os"
	"time"

	breakglass "github.com/libbreakglass/libbreakglass/bindings/go"
)

// cookieName is the session cookie; it holds the library's session token.
const cookieName = "breakglass_session"

const form = `<!doctype html><title>Break-glass login</title>
<h1>Break-glass login</h1><p>%s</p>
<form method="post" action="/begin"><label>Password <input type="password" name="password"
 autocomplete="current-password"></label> <button>Send me a code</button></form>
<form method="post" action="/complete"><label>Code <input name="code" inputmode="numeric"
 autocomplete="one-time-code"></label> <button>Log in</button></form>`

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
	log.Printf("break-glass login refused: %v", err)
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
		page(w, http.StatusOK, "A code was sent to the break-glass address.")
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

// setup configures the library from the BREAKGLASS_* environment.
func setup() error {
	return breakglass.ConfigureFromEnv()
}

func main() {
	if err := setup(); err != nil {
		log.Fatal(err)
	}
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	srv := &http.Server{Addr: addr, Handler: newHandler(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("break-glass login on http://%s/", addr)
	err := srv.ListenAndServe()
	// An alarm raised just before exit must still go out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = breakglass.Flush(ctx)
	log.Fatal(err)
}
