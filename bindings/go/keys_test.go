package breakglass

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestConfigKeysIsTheLibrarysTable(t *testing.T) {
	keys, err := ConfigKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 19 {
		t.Fatalf("%d keys", len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Name] || k.Name == "" || k.Doc == "" {
			t.Errorf("key %+v: duplicate, unnamed or undocumented", k)
		}
		seen[k.Name] = true
		switch k.Kind {
		case "integer":
			n, err := strconv.ParseUint(k.Default, 10, 64)
			if !k.HasDefault || err != nil || n < k.Min || n > k.Max {
				t.Errorf("integer key %+v: default outside its bounds", k)
			}
		case "boolean", "string", "secret", "email_list":
			if k.Min != 0 || k.Max != 0 {
				t.Errorf("key %+v has bounds", k)
			}
		default:
			t.Errorf("key %+v: unknown kind", k)
		}
		// Every default is accepted back.
		if k.HasDefault {
			if err := Configure(k.Name, k.Default); err != nil {
				t.Errorf("Configure(%s, default %q) = %v", k.Name, k.Default, err)
			}
		}
	}
	for _, name := range []string{"password_hash", "allowed_ips", "max_attempts", "lockout_seconds",
		"max_global_failures", "session_ttl_seconds"} {
		if !seen[name] {
			t.Errorf("no login key %s", name)
		}
	}
}

// Every key of the library's table is documented in README.md (in backquotes), so a key added
// to the library fails here until it is written up. Configure's doc comment points to the
// table (ConfigKeys) instead of repeating it, so it cannot drift.
func TestEveryKeyIsDocumented(t *testing.T) {
	keys, err := ConfigKeys()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	source, err := os.ReadFile("breakglass.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := regexp.MustCompile(`(?s)((?://[^\n]*\n)+)func Configure\(`).FindSubmatch(source)
	if doc == nil {
		t.Fatal("no doc comment on Configure")
	}
	if !strings.Contains(string(doc[1]), "ConfigKeys") {
		t.Error("Configure's doc comment does not point to ConfigKeys")
	}
	var named []string
	for _, k := range keys {
		if !strings.Contains(string(readme), "`"+k.Name+"`") {
			t.Errorf("README.md does not document %s", k.Name)
		}
		if regexp.MustCompile(`\b` + k.Name + `\b`).Match(doc[1]) {
			named = append(named, k.Name)
		}
	}
	// One key as an example is fine; more is a copy of the table.
	if len(named) > 1 {
		t.Errorf("Configure's doc comment repeats the keys %v: point to the table instead", named)
	}
}

func TestRefusedConfigureSaysWhy(t *testing.T) {
	fresh(t)
	err := Configure("otp_ttl_seconds", "0")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrArgument) {
		t.Fatalf("Configure(otp_ttl_seconds, 0) = %#v", err)
	}
	if e.Reason != "otp_ttl_seconds: must be from 1 to 86400" {
		t.Errorf("Reason = %q", e.Reason)
	}
	want := `breakglass: Configure("otp_ttl_seconds"): invalid argument (status 6): otp_ttl_seconds: must be from 1 to 86400`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	// Never a secret: the password in a refused URL stays out of the text.
	err = Configure("mailer", "bogus://user:hunter2@example.com")
	if !errors.As(err, &e) || e.Reason == "" || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Configure(mailer, bad) = %v", err)
	}
	// A success leaves no reason behind for the next failure to pick up by mistake.
	if err := Configure("otp_ttl_seconds", "5"); err != nil {
		t.Fatal(err)
	}
	err = Configure("no_such_key", "1")
	if !errors.As(err, &e) || !strings.Contains(e.Reason, "unknown configuration key") {
		t.Errorf("Configure(no_such_key) = %v", err)
	}
}

// The reason is read on the thread of the failing call: goroutines refusing different keys
// at once never get each other's text.
func TestReasonsBelongToTheirCall(t *testing.T) {
	fresh(t)
	keys := []string{"otp_ttl_seconds", "delivery_timeout_ms", "slot_timeout_ms", "max_attempts"}
	errs := make(chan error, len(keys))
	for _, key := range keys {
		go func(key string) {
			for i := 0; i < 300; i++ {
				var e *Error
				err := Configure(key, "0")
				if !errors.As(err, &e) || !strings.HasPrefix(e.Reason, key+":") {
					errs <- errors.New(key + ": got " + err.Error())
					return
				}
				if _, err := Generate(); err != nil { // a success in between, on any thread
					errs <- err
					return
				}
			}
			errs <- nil
		}(key)
	}
	for range keys {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
