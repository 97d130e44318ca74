package breakglass

/*
#include "breakglass_cgo.h"
*/
import "C"

import (
	"runtime"
	"strconv"
	"strings"
)

// Error is the error every function of this package returns: a libbreakglass status other
// than BG_OK, the call that got it, the library's reason and, for refusals made by this
// binding itself, a detail.
//
// Compare errors with errors.Is against the sentinels (ErrInvalid, ErrArgument, ...): two
// *Error values match when their codes are equal, whatever their reasons.
type Error struct {
	// Code is the bg_status value, from 1 (BG_INVALID) to 17 (BG_DRILL_FAILED).
	Code int
	// Name is the library's fixed English name for Code (bg_status_str), e.g. "expired".
	Name string
	// Op is the function that failed, e.g. `Configure("otp_ttl_seconds")`; empty in sentinels.
	Op string
	// Reason is why the library refused (bg_last_error), e.g. "otp_ttl_seconds: must be from
	// 1 to 86400"; empty when it gave none. The library never puts a configured value, a
	// code or a password in it.
	Reason string
	// Detail explains a refusal made by the binding before calling the library, if any.
	Detail string
}

// Error describes the failure, e.g. "breakglass: Verify: expired (status 2)" or
// `breakglass: Configure("otp_ttl_seconds"): invalid argument (status 6): otp_ttl_seconds:
// must be from 1 to 86400`.
func (e *Error) Error() string {
	s := "breakglass: "
	if e.Op != "" {
		s += e.Op + ": "
	}
	s += e.Name + " (status " + strconv.Itoa(e.Code) + ")"
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is reports whether target is an *Error with the same status code, so that
// errors.Is(err, ErrExpired) works for any error this package returns.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code
}

// Sentinels, one per status. Match them with errors.Is.
var (
	// ErrInvalid (BG_INVALID): Verify was given a wrong code, or text that is not exactly six
	// ASCII digits. Deny access.
	ErrInvalid = sentinel(C.BG_INVALID)
	// ErrExpired (BG_EXPIRED): the pending code was older than otp_ttl_seconds, even if it
	// matched. Deny access.
	ErrExpired = sentinel(C.BG_EXPIRED)
	// ErrNoPendingOTP (BG_NO_PENDING_OTP): no code was pending (never issued, already used
	// or cleared). Deny access.
	ErrNoPendingOTP = sentinel(C.BG_NO_PENDING_OTP)
	// ErrNull (BG_ERR_NULL): the library was given a NULL pointer. This binding never passes
	// one, so it does not occur in practice.
	ErrNull = sentinel(C.BG_ERR_NULL)
	// ErrBufferTooSmall (BG_ERR_BUFFER_TOO_SMALL): an output buffer was too small. This
	// binding always passes a large enough one.
	ErrBufferTooSmall = sentinel(C.BG_ERR_BUFFER_TOO_SMALL)
	// ErrArgument (BG_ERR_ARGUMENT): an unknown configuration key, a bad value, bad UTF-8,
	// an over-long string, or a string holding a NUL byte.
	ErrArgument = sentinel(C.BG_ERR_ARGUMENT)
	// ErrNotConfigured (BG_ERR_NOT_CONFIGURED): a delivery was asked for that the
	// configuration does not allow (SendOTP needs mailer, from_email and otp_email).
	ErrNotConfigured = sentinel(C.BG_ERR_NOT_CONFIGURED)
	// ErrTimeout (BG_ERR_TIMEOUT): the library ran out of time. Flush reports its own
	// timeouts as the context's error instead.
	ErrTimeout = sentinel(C.BG_ERR_TIMEOUT)
	// ErrInternal (BG_ERR_INTERNAL): the library caught an internal panic; it stays usable.
	// From Verify it is a denial.
	ErrInternal = sentinel(C.BG_ERR_INTERNAL)
	// ErrBackend (BG_ERR_BACKEND): the shared slot (Redis/Valkey, slot_url) could not be
	// reached, timed out, refused the command or held a malformed record. From Verify it is a
	// denial: never grant access on it.
	ErrBackend = sentinel(C.BG_ERR_BACKEND)
	// ErrQueueFull (BG_ERR_QUEUE_FULL): SendOTP found the delivery queue full; the email was
	// dropped (and counted in DeliveryStats.Dropped).
	ErrQueueFull = sentinel(C.BG_ERR_QUEUE_FULL)
	// ErrIPNotAllowed (BG_IP_NOT_ALLOWED): login: the client's address is malformed or not in
	// allowed_ips. Deny. Not counted as a failure.
	ErrIPNotAllowed = sentinel(C.BG_IP_NOT_ALLOWED)
	// ErrLockedOut (BG_LOCKED_OUT): login: this address, or every login, is locked out after
	// too many failures (or too many password checks are running at once). Deny.
	ErrLockedOut = sentinel(C.BG_LOCKED_OUT)
	// ErrWrongPassword (BG_WRONG_PASSWORD): LoginBegin: the password does not match
	// password_hash (a bcrypt hash also refuses passwords over 72 bytes). Deny; counted.
	ErrWrongPassword = sentinel(C.BG_WRONG_PASSWORD)
	// ErrNoSession (BG_NO_SESSION): SessionCheck, SessionEnd: not the active session, or it
	// has expired. Deny.
	ErrNoSession = sentinel(C.BG_NO_SESSION)
	// ErrAudit (BG_ERR_AUDIT): LoginComplete: the code was right, but the success could not be
	// written to audit_log while audit_required is on. No session; the alarm still went out.
	ErrAudit = sentinel(C.BG_ERR_AUDIT)
	// ErrDrillFailed (BG_DRILL_FAILED): a fire drill in which at least one channel did not
	// deliver (run the drill with the breakglass tool; this binding reports the status).
	ErrDrillFailed = sentinel(C.BG_DRILL_FAILED)
)

func statusName(code int) string {
	return C.GoString(C.bg_status_str(C.int32_t(code)))
}

func sentinel(code int) *Error {
	return &Error{Code: code, Name: statusName(code)}
}

// lastErrorLen holds any bg_last_error text: at most 1024 bytes and the NUL (the header's
// BG_LAST_ERROR_BUF_LEN).
const lastErrorLen = C.BG_LAST_ERROR_BUF_LEN

// lastError is bg_last_error: why the latest call on this OS thread failed. The caller must
// have locked its goroutine to the thread that made that call.
func lastError() string {
	var buf [lastErrorLen]C.char
	// BG_ERR_BUFFER_TOO_SMALL still leaves a NUL-terminated prefix, worth keeping.
	C.bg_last_error(&buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}

// callStatus runs f, which makes one call into the library, and returns its status and, when
// it is not BG_OK, the library's reason. bg_last_error is per OS thread and cleared by every
// call, so the goroutine stays on one thread from the call to the read.
func callStatus(f func() C.bg_status) (C.bg_status, string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status := f()
	if status == C.BG_OK {
		return status, ""
	}
	return status, lastError()
}

// call is callStatus as an error for op: nil for BG_OK.
func call(op string, f func() C.bg_status) error {
	status, reason := callStatus(f)
	return statusError(op, status, reason)
}

// statusError turns a status into nil (BG_OK) or an *Error for op with the library's reason.
func statusError(op string, status C.bg_status, reason string) error {
	if status == C.BG_OK {
		return nil
	}
	code := int(status)
	name := statusName(code)
	// The library's text may start with, or be, the status name ("invalid argument: ...",
	// "wrong password"), which Error() shows already.
	reason = strings.TrimPrefix(reason, name+": ")
	if reason == name {
		reason = ""
	}
	return &Error{Code: code, Name: name, Op: op, Reason: reason}
}

// argumentError is the binding's own ErrArgument, for input it cannot pass to C.
func argumentError(op, detail string) error {
	return &Error{Code: C.BG_ERR_ARGUMENT, Name: ErrArgument.Name, Op: op, Detail: detail}
}
