package breakglass

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	testPassword = "correct horse battery staple"
	testIP       = "192.0.2.10"
)

// hashPassword makes a password hash with a reference implementation in the test Python
// (argon2-cffi or bcrypt, both installed by make deps), so the library is checked against
// hashes it did not make itself. kind: "argon2id", "argon2id-quick" (the library's own
// cheaper parameters) or "bcrypt".
func hashPassword(t *testing.T, kind, password string) string {
	t.Helper()
	scripts := map[string]string{
		"argon2id":       "import argon2,sys; print(argon2.PasswordHasher().hash(sys.argv[1]))",
		"argon2id-quick": "import argon2,sys; print(argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(sys.argv[1]))",
		"bcrypt":         "import bcrypt,sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt()).decode())",
	}
	out, err := exec.Command(python(t), "-c", scripts[kind], password).Output()
	if err != nil {
		t.Fatalf("hashing with %s: %v (run make deps)", kind, err)
	}
	return strings.TrimSpace(string(out))
}

// outbox is a file mailer's directory, read as a person reads a mailbox.
type outbox struct {
	dir  string
	seen map[string]bool
}

func (o *outbox) mails(t *testing.T) []string {
	t.Helper()
	mustFlush(t, 30*time.Second)
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		t.Fatal(err)
	}
	var mails []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(o.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		mails = append(mails, string(data))
	}
	return mails
}

var codeMark = regexp.MustCompile(`one-time code is: ([0-9]{6})`)

// newCode returns the code of the one code email not read before.
func (o *outbox) newCode(t *testing.T) string {
	t.Helper()
	mustFlush(t, 30*time.Second)
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(o.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if m := codeMark.FindSubmatch(data); m != nil && !o.seen[e.Name()] {
			o.seen[e.Name()] = true
			codes = append(codes, string(m[1]))
		}
	}
	if len(codes) != 1 {
		t.Fatalf("want one new code email, got %d", len(codes))
	}
	return codes[0]
}

// alerts returns the alert emails: the ones that carry an event id.
func (o *outbox) alerts(t *testing.T) []string {
	var alerts []string
	for _, m := range o.mails(t) {
		if strings.Contains(m, "X-Breakglass-Event-Id:") {
			alerts = append(alerts, m)
		}
	}
	return alerts
}

// loginSetup configures the login flow on a file outbox with hash; the addresses used are
// reset when the test ends.
func loginSetup(t *testing.T, hash string) *outbox {
	t.Helper()
	fresh(t)
	o := &outbox{dir: t.TempDir(), seen: map[string]bool{}}
	set(t, "mailer", "file://"+o.dir, "from_email", "bg@example.com", "otp_email", "oncall@example.com",
		"alert_emails", "ops@example.com", "password_hash", hash,
		"allowed_ips", "192.0.2.0/24, 2001:db8::/32",
		// Failures add up over the whole test binary; only the per-address limit is tested.
		"max_global_failures", "1000000")
	t.Cleanup(func() {
		// Before the outbox directory is removed (cleanups run last-registered first): a code
		// email still being written would make its removal fail.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := Flush(ctx); err != nil {
			t.Errorf("Flush: %v", err)
		}
		for _, ip := range []string{testIP, "192.0.2.11", "2001:db8::1"} {
			if err := ResetAttempts(ip); err != nil {
				t.Errorf("ResetAttempts(%s): %v", ip, err)
			}
		}
	})
	return o
}

func mustLeft(t *testing.T, ip string) uint32 {
	t.Helper()
	n, err := AttemptsLeft(ip)
	if err != nil {
		t.Fatalf("AttemptsLeft(%s): %v", ip, err)
	}
	return n
}

func TestLoginPasswordCodeSessionAlarm(t *testing.T) {
	o := loginSetup(t, hashPassword(t, "argon2id-quick", testPassword))
	if n := mustLeft(t, testIP); n != 5 {
		t.Fatalf("AttemptsLeft = %d, want max_attempts' default 5", n)
	}
	if err := LoginBegin(testIP, testPassword); err != nil {
		t.Fatalf("LoginBegin: %v", err)
	}
	token, err := LoginComplete(testIP, o.newCode(t))
	if err != nil {
		t.Fatalf("LoginComplete: %v", err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(token) {
		t.Errorf("token %q", token)
	}
	if err := SessionCheck(token); err != nil {
		t.Errorf("SessionCheck: %v", err)
	}
	alerts := o.alerts(t)
	if len(alerts) != 1 || !strings.Contains(alerts[0], testIP) || !strings.Contains(alerts[0], "ops@example.com") {
		t.Errorf("alert emails: %q", alerts)
	}
	if err := SessionEnd(token); err != nil {
		t.Errorf("SessionEnd: %v", err)
	}
	wantIs(t, "SessionCheck after SessionEnd", SessionCheck(token), ErrNoSession)
	wantIs(t, "SessionEnd twice", SessionEnd(token), ErrNoSession)
	wantIs(t, "SessionCheck(\"\")", SessionCheck(""), ErrNoSession)
}

func TestLoginWrongPasswordIsCountedAndLocksOut(t *testing.T) {
	o := loginSetup(t, hashPassword(t, "argon2id-quick", testPassword))
	set(t, "max_attempts", "3")
	err := LoginBegin(testIP, testPassword+"!")
	wantIs(t, "LoginBegin(wrong password)", err, ErrWrongPassword)
	var e *Error
	// The library's reason is the status name itself, which Error() does not repeat.
	if !errors.As(err, &e) || err.Error() != "breakglass: LoginBegin: wrong password (status 14)" {
		t.Errorf("wrong password error %#v", err)
	}
	for _, left := range []uint32{2, 1, 0} {
		if n := mustLeft(t, testIP); n != left {
			t.Errorf("AttemptsLeft = %d, want %d", n, left)
		}
		if left > 0 {
			wantIs(t, "LoginBegin(wrong password)", LoginBegin(testIP, "guess"), ErrWrongPassword)
		}
	}
	wantIs(t, "LoginBegin when locked out", LoginBegin(testIP, testPassword), ErrLockedOut)
	// Only that address.
	if err := LoginBegin("192.0.2.11", testPassword); err != nil {
		t.Errorf("LoginBegin from another address: %v", err)
	}
	o.newCode(t)
	if err := ResetAttempts(testIP); err != nil {
		t.Fatal(err)
	}
	if n := mustLeft(t, testIP); n != 3 {
		t.Errorf("AttemptsLeft after ResetAttempts = %d", n)
	}
	if err := LoginBegin(testIP, testPassword); err != nil {
		t.Errorf("LoginBegin after ResetAttempts: %v", err)
	}
}

func TestLoginWrongCodeIsCounted(t *testing.T) {
	o := loginSetup(t, hashPassword(t, "argon2id-quick", testPassword))
	if err := LoginBegin(testIP, testPassword); err != nil {
		t.Fatal(err)
	}
	code := o.newCode(t)
	_, err := LoginComplete(testIP, otherCode(code))
	wantIs(t, "LoginComplete(wrong code)", err, ErrInvalid)
	_, err = LoginComplete(testIP, code)
	wantIs(t, "LoginComplete(consumed code)", err, ErrNoPendingOTP)
	if n := mustLeft(t, testIP); n != 3 {
		t.Errorf("AttemptsLeft = %d, want 3", n)
	}
	// No login alarm; the wrong code after a right password raised the guessing alarm.
	guessing := 0
	for _, a := range o.alerts(t) {
		if strings.Contains(a, "Emergency login from") {
			t.Errorf("a login alarm without a login: %q", a)
		}
		if strings.Contains(a, "guessing the emergency code") {
			guessing++
		}
	}
	if guessing != 1 {
		t.Errorf("%d guessing alarms, want 1", guessing)
	}
}

func TestLoginIPNotAllowed(t *testing.T) {
	o := loginSetup(t, hashPassword(t, "argon2id-quick", testPassword))
	for _, ip := range []string{"203.0.113.5", "10.0.0.1", "not an address", ""} {
		wantIs(t, "LoginBegin("+ip+")", LoginBegin(ip, testPassword), ErrIPNotAllowed)
		_, err := LoginComplete(ip, "123456")
		wantIs(t, "LoginComplete("+ip+")", err, ErrIPNotAllowed)
	}
	if m := o.mails(t); len(m) != 0 {
		t.Errorf("mails sent: %d", len(m))
	}
	_, err := AttemptsLeft("not an address")
	wantIs(t, "AttemptsLeft(not an address)", err, ErrArgument)
	// NUL bytes never reach C, and nothing is counted.
	wantIs(t, "LoginBegin(NUL)", LoginBegin(testIP, testPassword+"\x00"), ErrArgument)
	_, err = LoginComplete(testIP+"\x00", "123456")
	wantIs(t, "LoginComplete(NUL)", err, ErrArgument)
	if n := mustLeft(t, testIP); n != 5 {
		t.Errorf("AttemptsLeft = %d after refused NULs", n)
	}
}

// Hashes made by argon2-cffi (its defaults) and bcrypt verify through the library: the right
// password begins a login, any other is ErrWrongPassword; bcrypt refuses passwords over 72
// bytes rather than comparing only their first 72.
func TestLoginHashFormats(t *testing.T) {
	for _, kind := range []string{"argon2id", "bcrypt"} {
		t.Run(kind, func(t *testing.T) {
			hash := hashPassword(t, kind, testPassword)
			o := loginSetup(t, hash)
			if err := LoginBegin(testIP, testPassword); err != nil {
				t.Fatalf("LoginBegin(right password): %v", err)
			}
			o.newCode(t)
			wantIs(t, "LoginBegin(upper case)", LoginBegin(testIP, strings.ToUpper(testPassword)), ErrWrongPassword)
		})
	}
	t.Run("bcrypt-72", func(t *testing.T) {
		long := strings.Repeat("p", 72)
		o := loginSetup(t, hashPassword(t, "bcrypt", long))
		if err := LoginBegin(testIP, long); err != nil {
			t.Fatalf("LoginBegin(72 bytes): %v", err)
		}
		o.newCode(t)
		wantIs(t, "LoginBegin(73 bytes)", LoginBegin(testIP, long+"x"), ErrWrongPassword)
	})
	t.Run("not-configured", func(t *testing.T) {
		fresh(t)
		err := LoginBegin(testIP, testPassword)
		var e *Error
		if !errors.Is(err, ErrNotConfigured) || !errors.As(err, &e) || !strings.Contains(e.Reason, "password_hash") {
			t.Errorf("LoginBegin without password_hash = %v", err)
		}
	})
}

// sessionTokenBufLen is what the header documents (a macro once the header defines one).
func TestSessionTokenBufLenMatchesTheHeader(t *testing.T) {
	header, err := os.ReadFile(filepath.Join("..", "..", "include", "breakglass.h"))
	if err != nil {
		t.Skipf("no build-tree header: %v", err)
	}
	m := regexp.MustCompile(`#define BG_SESSION_TOKEN_BUF_LEN (\d+)`).FindSubmatch(header)
	if m == nil {
		m = regexp.MustCompile("`BG_SESSION_TOKEN_BUF_LEN` \\((\\d+)\\)").FindSubmatch(header)
	}
	if m == nil || string(m[1]) != strconv.Itoa(sessionTokenBufLen) {
		t.Errorf("header says %q, the binding uses %d", m, sessionTokenBufLen)
	}
}
