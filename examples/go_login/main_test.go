package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	breakglass "github.com/libbreakglass/libbreakglass/bindings/go"
)

const password = "correct horse battery staple"

// python is the test Python with argon2-cffi ($BG_TEST_PYTHON, else the checkout's venv).
func python(t *testing.T) string {
	if p := os.Getenv("BG_TEST_PYTHON"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "build", "venv", "bin", "python"))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no test Python (%s; run make deps or set BG_TEST_PYTHON)", p)
	}
	return p
}

func argon2Hash(t *testing.T) string {
	script := "import argon2,sys; print(argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(sys.argv[1]))"
	out, err := exec.Command(python(t), "-c", script, password).Output()
	if err != nil {
		t.Fatalf("hashing: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func flush(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := breakglass.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// mails returns the outbox's messages.
func mails(t *testing.T, dir string) []string {
	flush(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	return out
}

// site configures the library from BREAKGLASS_* variables on a file outbox, as main does,
// and serves the handler on 127.0.0.1.
func site(t *testing.T) (*httptest.Server, *http.Client, string) {
	outbox := t.TempDir()
	for k, v := range map[string]string{
		"MAILER": "file://" + outbox, "FROM_EMAIL": "bg@example.com", "OTP_EMAIL": "oncall@example.com",
		"ALERT_EMAILS": "ops@example.com", "PASSWORD_HASH": argon2Hash(t), "ALLOWED_IPS": "127.0.0.1",
		"MAX_ATTEMPTS": "3", "MAX_GLOBAL_FAILURES": "1000000",
	} {
		t.Setenv("BREAKGLASS_"+k, v)
	}
	if err := setup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		flush(t)
		_ = breakglass.ResetAttempts("127.0.0.1")
		for _, k := range []string{"mailer", "from_email", "otp_email", "alert_emails", "password_hash",
			"allowed_ips", "max_attempts", "max_global_failures"} {
			_ = breakglass.Unset(k)
		}
	})
	srv := httptest.NewServer(newHandler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		// Redirects are checked by the test, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return srv, client, outbox
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func get(t *testing.T, c *http.Client, u string) int {
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestLoginFlow(t *testing.T) {
	srv, c, outbox := site(t)
	if s := get(t, c, srv.URL+"/protected"); s != http.StatusUnauthorized {
		t.Fatalf("/protected before login: %d", s)
	}
	if r := postForm(t, c, srv.URL+"/begin", url.Values{"password": {password}}); r.StatusCode != http.StatusOK {
		t.Fatalf("/begin: %d", r.StatusCode)
	}
	m := regexp.MustCompile(`one-time code is: ([0-9]{6})`).FindStringSubmatch(strings.Join(mails(t, outbox), "\n"))
	if m == nil {
		t.Fatal("no code email in the outbox")
	}
	r := postForm(t, c, srv.URL+"/complete", url.Values{"code": {m[1]}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/protected" {
		t.Fatalf("/complete: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if sc := r.Header.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("cookie %q", sc)
	}
	if s := get(t, c, srv.URL+"/protected"); s != http.StatusOK {
		t.Fatalf("/protected after login: %d", s)
	}
	alerts := 0
	for _, mail := range mails(t, outbox) {
		if strings.Contains(mail, "X-Breakglass-Event-Id:") && strings.Contains(mail, "127.0.0.1") &&
			strings.Contains(mail, "ops@example.com") {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("%d alert emails, want 1", alerts)
	}
	u, _ := url.Parse(srv.URL)
	token := c.Jar.Cookies(u)[0].Value
	if r := postForm(t, c, srv.URL+"/logout", nil); r.StatusCode != http.StatusSeeOther {
		t.Errorf("/logout: %d", r.StatusCode)
	}
	if s := get(t, c, srv.URL+"/protected"); s != http.StatusUnauthorized {
		t.Errorf("/protected after logout: %d", s)
	}
	// A client that kept the old cookie is refused too.
	c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: token}})
	if s := get(t, c, srv.URL+"/protected"); s != http.StatusUnauthorized {
		t.Errorf("/protected with the ended session's cookie: %d", s)
	}
}

func TestWrongPasswordThenLockout(t *testing.T) {
	srv, c, outbox := site(t)
	for i := 0; i < 3; i++ {
		if r := postForm(t, c, srv.URL+"/begin", url.Values{"password": {"guess"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("wrong password %d: %d", i, r.StatusCode)
		}
	}
	if r := postForm(t, c, srv.URL+"/begin", url.Values{"password": {password}}); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password while locked out: %d", r.StatusCode)
	}
	if n, err := breakglass.AttemptsLeft("127.0.0.1"); err != nil || n != 0 {
		t.Errorf("AttemptsLeft = %d, %v", n, err)
	}
	if m := mails(t, outbox); len(m) != 0 {
		t.Errorf("%d mails sent", len(m))
	}
	if s := get(t, c, srv.URL+"/begin"); s != http.StatusMethodNotAllowed {
		t.Errorf("GET /begin: %d", s)
	}
}
