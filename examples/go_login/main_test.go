package main

import (
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
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

// buildExample builds the example as a user does (`go build`, no tags, no extra flags) into
// a temporary directory and returns the binary's path.
func buildExample(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "go_login")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = os.Environ()
	for _, v := range []string{"CGO_LDFLAGS=", "CGO_CFLAGS=", "GOFLAGS="} {
		cmd.Env = append(cmd.Env, v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The binary a user builds from a checkout carries no rpath into it: a copy shipped to
// another machine must not look for its library in someone's build tree.
func TestTheBinaryHasNoRunpathIntoTheCheckout(t *testing.T) {
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Skip("no readelf")
	}
	out, err := exec.Command("readelf", "-d", buildExample(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf: %v\n%s", err, out)
	}
	dynamic := string(out)
	if !strings.Contains(dynamic, "libbreakglass.so.0") {
		t.Fatalf("the binary does not need libbreakglass.so.0:\n%s", dynamic)
	}
	if strings.Contains(dynamic, "RUNPATH") || strings.Contains(dynamic, "RPATH") {
		t.Errorf("the binary has an rpath:\n%s", dynamic)
	}
}

// SIGTERM right after a login: the server shuts down, then flushes, so the alarm still
// lands at a receiver that fails the first POST (the retry comes after the signal).
func TestSIGTERMRightAfterALoginStillDeliversTheRetriedAlarm(t *testing.T) {
	bin := buildExample(t)
	var mu sync.Mutex
	var answers []int
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		status := http.StatusOK
		if len(answers) == 0 {
			status = http.StatusServiceUnavailable
		}
		answers = append(answers, status)
		mu.Unlock()
		w.WriteHeader(status)
	}))
	defer hook.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	outbox := t.TempDir()
	release, _ := filepath.Abs(filepath.Join("..", "..", "target", "release"))
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BREAKGLASS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ADDR="+addr, "LD_LIBRARY_PATH="+release,
		"BREAKGLASS_MAILER=file://"+outbox, "BREAKGLASS_FROM_EMAIL=bg@example.com",
		"BREAKGLASS_OTP_EMAIL=oncall@example.com", "BREAKGLASS_PASSWORD_HASH="+argon2Hash(t),
		"BREAKGLASS_ALLOWED_IPS=127.0.0.1", "BREAKGLASS_ALERT_WEBHOOK_URL="+hook.URL+"/hook",
		"BREAKGLASS_DELIVERY_TIMEOUT_MS=2000")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The lifetime bound: whatever happens, the server is gone when the test ends.
	defer func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + addr
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := client.Get(base + "/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not start:\n%s", logs.String())
		}
	}
	if r := postForm(t, client, base+"/begin", url.Values{"password": {password}}); r.StatusCode != http.StatusOK {
		t.Fatalf("/begin: %d\n%s", r.StatusCode, logs.String())
	}
	var code string
	for deadline := time.Now().Add(15 * time.Second); code == ""; time.Sleep(50 * time.Millisecond) {
		entries, _ := os.ReadDir(outbox)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(outbox, e.Name()))
			if m := regexp.MustCompile(`one-time code is: ([0-9]{6})`).FindSubmatch(data); m != nil {
				code = string(m[1])
			}
		}
		if code == "" && time.Now().After(deadline) {
			t.Fatal("no code email")
		}
	}
	if r := postForm(t, client, base+"/complete", url.Values{"code": {code}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("/complete: %d\n%s", r.StatusCode, logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30 s of SIGTERM\n%s", logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(answers) != 2 || answers[0] != 503 || answers[1] != 200 {
		t.Fatalf("webhook answers %v, want [503 200] (the retry after SIGTERM)\n%s", answers, logs.String())
	}
}
