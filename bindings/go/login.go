package breakglass

/*
#include <stdlib.h>
#include <string.h>
#include "breakglass_cgo.h"
*/
import "C"

// sessionTokenBufLen is BG_SESSION_TOKEN_BUF_LEN: a token (43 URL-safe base64 characters)
// and its NUL. The header documents it but does not define it as a macro, so the value is
// written here; the library refuses a shorter buffer with BG_ERR_BUFFER_TOO_SMALL.
const sessionTokenBufLen = 44

// LoginBegin is step 1 of a break-glass login. In order it checks that ip (the client's
// address as text, IPv4 or IPv6) is in allowed_ips (ErrIPNotAllowed), that neither it nor every
// login is locked out (ErrLockedOut), and password against password_hash (ErrWrongPassword,
// counted as a failure). Then it issues a code and queues its email to otp_email; the code is
// never returned. A nil error means queued, not delivered: CodeEmailFailing tells whether the
// last code email failed.
//
// Also ErrNotConfigured without password_hash or a mailer, ErrQueueFull, ErrBackend, and
// ErrArgument for a password over 4096 bytes or an argument holding a NUL byte (then the
// library is not called). The hash check takes tens of milliseconds and at most two run at
// once; a third concurrent call gets ErrLockedOut at once. The error's Reason says which
// check refused.
func LoginBegin(ip, password string) error {
	i, err := cString("LoginBegin", "the ip", ip)
	if err != nil {
		return err
	}
	defer freeCString(i, len(ip))
	p, err := cString("LoginBegin", "the password", password)
	if err != nil {
		return err
	}
	defer freeCString(p, len(password))
	return call("LoginBegin", func() C.bg_status { return C.bg_login_begin(i, p) })
}

// LoginComplete is step 2: it checks ip as LoginBegin does, then code (consuming the pending
// code, as Verify does). On success the address's failures are forgotten, a new session
// replaces any other, the alarm is raised (as Alert(ip)) and the session's token is returned.
// Grant access on a nil error only.
//
// A wrong, expired or missing code gives an error matching ErrInvalid, ErrExpired or
// ErrNoPendingOTP and counts as a failure; ErrIPNotAllowed and ErrLockedOut as for
// LoginBegin. An argument holding a NUL byte gives ErrArgument without calling the library.
//
// Recovery codes: with recovery_codes_file set (made by `breakglass recovery-codes new`), a
// code that is not six digits, such as "7KQ2-M9XD-4TFA-PW3H" (case, dashes and spaces do not
// matter), is tried as a recovery code in place of the emailed code, after the right
// password. It is consumed before the login is granted and works once only (on this host, or
// the fleet with slot_url); the alarm's event is then break_glass_recovery_code_used. A wrong
// or used recovery code gives ErrInvalid and counts as one failure.
func LoginComplete(ip, code string) (string, error) {
	i, err := cString("LoginComplete", "the ip", ip)
	if err != nil {
		return "", err
	}
	defer freeCString(i, len(ip))
	c, err := cString("LoginComplete", "the code", code)
	if err != nil {
		return "", err
	}
	defer freeCString(c, len(code))
	// C memory, so the token is wiped where it was written; the returned string is the only
	// copy left.
	buf := (*C.char)(C.calloc(sessionTokenBufLen, 1))
	defer freeCString(buf, sessionTokenBufLen)
	err = call("LoginComplete", func() C.bg_status {
		return C.bg_login_complete(i, c, buf, sessionTokenBufLen)
	})
	if err != nil {
		return "", err
	}
	return C.GoStringN(buf, C.int(C.strnlen(buf, sessionTokenBufLen))), nil
}

// SessionCheck returns nil while token is the active session's token and the session is
// younger than session_ttl_seconds, and an error matching ErrNoSession otherwise (also after
// SessionEnd or a newer login). Tokens are compared in constant time.
func SessionCheck(token string) error {
	return tokenCall("SessionCheck", token, func(t *C.char) C.bg_status { return C.bg_session_check(t) })
}

// SessionEnd ends the session whose token is token; an error matching ErrNoSession when it is
// not the active session.
func SessionEnd(token string) error {
	return tokenCall("SessionEnd", token, func(t *C.char) C.bg_status { return C.bg_session_end(t) })
}

func tokenCall(op, token string, f func(*C.char) C.bg_status) error {
	t, err := cString(op, "the token", token)
	if err != nil {
		return err
	}
	defer freeCString(t, len(token))
	return call(op, func() C.bg_status { return f(t) })
}

// AttemptsLeft returns how many failures ip may still make before it is locked out (0 while
// it, or every login, is locked out). For operators: the allow-list is not applied. An error
// matching ErrArgument when ip is not an address.
func AttemptsLeft(ip string) (uint32, error) {
	i, err := cString("AttemptsLeft", "the ip", ip)
	if err != nil {
		return 0, err
	}
	defer freeCString(i, len(ip))
	var out C.uint32_t
	if err := call("AttemptsLeft", func() C.bg_status { return C.bg_attempts_left(i, &out) }); err != nil {
		return 0, err
	}
	return uint32(out), nil
}

// ResetAttempts forgets ip's failures and ends its lockout (IPv6: its /64); the library logs
// it at warn level. It does not lift a lockout of every login.
func ResetAttempts(ip string) error {
	i, err := cString("ResetAttempts", "the ip", ip)
	if err != nil {
		return err
	}
	defer freeCString(i, len(ip))
	return call("ResetAttempts", func() C.bg_status { return C.bg_reset_attempts(i) })
}
