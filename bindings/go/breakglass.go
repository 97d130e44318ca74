package breakglass

/*
#include <stdlib.h>
#include <string.h>
#include "breakglass_cgo.h"
*/
import "C"

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// HeaderVersion is BREAKGLASS_VERSION from the breakglass.h this package was compiled
// against. Version reports the version of the library actually loaded; they should agree.
const HeaderVersion = C.BREAKGLASS_VERSION

// OTPLength is the number of ASCII digits in a one-time code (BG_OTP_LEN).
const OTPLength = C.BG_OTP_LEN

// flushSlice bounds each bg_flush call made by Flush, so that a cancelled context is noticed
// promptly.
const flushSlice = 50 * time.Millisecond

// cString copies s to the C heap, or refuses it when it holds a NUL byte (C would see a
// shorter string). Release the copy with freeCString.
func cString(op, what, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, argumentError(op, what+" contains a NUL byte")
	}
	return C.CString(s), nil
}

// freeCString wipes and frees a copy made by cString: values may be secrets (passwords in
// a mailer URL, the webhook secret) or codes.
func freeCString(p *C.char, n int) {
	C.memset(unsafe.Pointer(p), 0, C.size_t(n))
	C.free(unsafe.Pointer(p))
}

// Configure sets the configuration key to value. It returns an error matching ErrArgument
// for an unknown key, a bad value, or a key or value holding a NUL byte; then nothing
// changes, and the error's Reason says why (e.g. "otp_ttl_seconds: must be from 1 to
// 86400"). A setting applies to codes generated and deliveries queued after the call.
//
// The keys, their kinds, bounds, defaults and meaning are the library's key table: ConfigKeys
// returns it at run time, and the repository README's "Configuration" section documents each
// key. It is not repeated here, so it cannot drift.
func Configure(key, value string) error {
	op := "Configure(" + strconv.Quote(key) + ")"
	k, err := cString(op, "the key", key)
	if err != nil {
		return err
	}
	defer freeCString(k, len(key))
	v, err := cString(op, "the value", value)
	if err != nil {
		return err
	}
	defer freeCString(v, len(value))
	return call(op, func() C.bg_status { return C.bg_configure(k, v) })
}

// Unset restores the default of the configuration key (for most keys: not set). It returns
// an error matching ErrArgument for an unknown key.
func Unset(key string) error {
	op := "Unset(" + strconv.Quote(key) + ")"
	k, err := cString(op, "the key", key)
	if err != nil {
		return err
	}
	defer freeCString(k, len(key))
	return call(op, func() C.bg_status { return C.bg_configure(k, nil) })
}

// ConfigureFromEnv applies BREAKGLASS_<KEY> (the key in upper case, for example
// BREAKGLASS_OTP_TTL_SECONDS) for every key that Configure accepts and the environment sets.
// Either all of them apply or, when any is bad (an error matching ErrArgument), none.
//
// It reads the process environment through the C library (os.Setenv updates it in cgo
// programs); do not call it while another goroutine changes the environment.
func ConfigureFromEnv() error {
	return call("ConfigureFromEnv", func() C.bg_status { return C.bg_configure_from_env() })
}

// Generate issues a new one-time code: OTPLength ASCII digits from the operating system's
// CSPRNG. It replaces any pending code at once (the old one can never verify afterwards) and
// expires otp_ttl_seconds after the call. With a shared slot (slot_url) it returns an error
// matching ErrBackend when the slot cannot be reached.
//
// The code is a secret until used: hand it only to SendOTP (or your own delivery).
func Generate() (string, error) {
	var buf [C.BG_OTP_BUF_LEN]C.char
	if err := call("Generate", func() C.bg_status { return C.bg_generate(&buf[0], C.size_t(len(buf))) }); err != nil {
		return "", err
	}
	var digits [OTPLength]byte
	for i := range digits {
		digits[i] = byte(buf[i])
		buf[i] = 0
	}
	return string(digits[:]), nil
}

// Verify checks code against the pending code and consumes the pending code, whatever the
// result (a NUL byte excepted, see below): afterwards nothing is pending. It returns nil only for a match within the TTL: grant
// access on nil and on nothing else.
//
// Denials, in the library's order: ErrNoPendingOTP when nothing is pending; ErrExpired when
// the pending code is older than its TTL (even if code matches); ErrInvalid for a wrong code
// or text that is not exactly six ASCII digits. Errors matching ErrBackend or ErrInternal
// are denials too. Of any number of concurrent calls with the right code exactly one gets
// nil.
//
// A code holding a NUL byte gets an error matching ErrArgument without reaching the library;
// it is a denial that leaves the pending code in place.
func Verify(code string) error {
	c, err := cString("Verify", "the code", code)
	if err != nil {
		return err
	}
	defer freeCString(c, len(code))
	return call("Verify", func() C.bg_status { return C.bg_verify(c) })
}

// Clear empties the slot: a pending code can no longer verify. With a shared slot it returns
// an error matching ErrBackend when the slot cannot be reached.
func Clear() error {
	return call("Clear", func() C.bg_status { return C.bg_clear() })
}

// SendOTP queues the email that carries code (OTPLength ASCII digits, as Generate returns)
// from from_email to otp_email, and returns at once; delivery happens on the library's
// background threads, with retries. Errors: ErrArgument when code is not six ASCII digits,
// ErrNotConfigured when mailer, from_email or otp_email is unset, ErrQueueFull when the
// delivery queue is full (the email is dropped and counted). A delivery failure is logged at
// error level and counted in DeliveryStats.EmailsFailed. With dev_otp_log on, the code is also
// logged at warn level (even when not configured); otherwise it never reaches a log.
func SendOTP(code string) error {
	c, err := cString("SendOTP", "the code", code)
	if err != nil {
		return err
	}
	defer freeCString(c, len(code))
	return call("SendOTP", func() C.bg_status { return C.bg_send_otp(c) })
}

// Alert raises the break-glass alarm after a successful break-glass login: it queues one
// alert email per alert_emails recipient and one JSON POST to alert_webhook_url (fields
// id, event, ip, timestamp, severity, message), and returns at once. The id (32 hex digits)
// is the alert's event id: the same in every email (X-Breakglass-Event-Id header and body),
// the webhook and every retry of them. The emails and the webhook are queued independently:
// a full lane drops only its own part.
//
// ip is the client's address as text and is treated as untrusted: control characters are
// escaped in emails, the JSON is escaped properly, bad UTF-8 is replaced and text over 1024
// bytes or 256 characters is cut and marked "...(truncated)". The Python binding treats the two edge cases the same way:
//
//   - "" is reported as "unknown" (as a missing address: the library gets NULL);
//   - a NUL byte, which a C string cannot hold, does not make Alert fail (an alarm must
//     never be lost to its argument): each one is sent as the text \u{0}, the library's own
//     escape for a control character, so the report shows where it was.
//
// What cannot be delivered or queued is logged at error level and counted, so in practice
// Alert returns nil.
func Alert(ip string) error {
	if ip == "" {
		return call("Alert", func() C.bg_status { return C.bg_alert(nil) })
	}
	ip = strings.ReplaceAll(ip, "\x00", nulEscape)
	c := C.CString(ip)
	defer freeCString(c, len(ip))
	return call("Alert", func() C.bg_status { return C.bg_alert(c) })
}

// nulEscape is what Alert sends for a NUL byte: the text the library itself writes for a
// control character in an email (escape_controls), so both bindings and the email agree.
const nulEscape = `\u{0}`

// Flush waits until every delivery queued before (and, as the wait is done in slices,
// during) the call has been delivered or has finally failed. It returns nil then, or
// ctx.Err() when the context is done first (it is checked before waiting, so a context that
// is already done always gives its error). Daemons should call it before exiting, with a
// deadline of a few times delivery_timeout_ms, so that an alert raised just before exit is
// not lost.
func Flush(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		slice := flushSlice
		if deadline, ok := ctx.Deadline(); ok {
			left := time.Until(deadline)
			if left <= 0 {
				<-ctx.Done()
				return ctx.Err()
			}
			if left < slice {
				slice = left
			}
		}
		ms := (slice + time.Millisecond - 1) / time.Millisecond
		status, reason := callStatus(func() C.bg_status { return C.bg_flush(C.uint32_t(ms)) })
		switch status {
		case C.BG_OK:
			return nil
		case C.BG_ERR_TIMEOUT:
			continue
		default:
			return statusError("Flush", status, reason)
		}
	}
}

// DeliveryStats holds the library's delivery counters since it was loaded. They only grow.
type DeliveryStats struct {
	// Queued counts calls accepted into the delivery queue: one per SendOTP or Alert call of
	// which at least one part (the code email; an alert's emails, its webhook) was queued.
	Queued uint64
	// EmailsSent counts email messages accepted by the server or written to the outbox (one
	// per recipient).
	EmailsSent uint64
	// EmailsFailed counts email messages that finally failed, after retries.
	EmailsFailed uint64
	// WebhooksSent counts webhook POSTs answered with 2xx.
	WebhooksSent uint64
	// WebhooksFailed counts webhook POSTs that finally failed, after retries.
	WebhooksFailed uint64
	// Dropped counts parts dropped because their lane was full: a code email, an alert's
	// emails (all recipients together) or an alert's webhook each count one.
	Dropped uint64
}

// Stats returns the delivery counters.
func Stats() (DeliveryStats, error) {
	var s C.struct_bg_stats
	if err := call("Stats", func() C.bg_status { return C.bg_get_stats(&s) }); err != nil {
		return DeliveryStats{}, err
	}
	return DeliveryStats{
		Queued:         uint64(s.queued),
		EmailsSent:     uint64(s.emails_sent),
		EmailsFailed:   uint64(s.emails_failed),
		WebhooksSent:   uint64(s.webhooks_sent),
		WebhooksFailed: uint64(s.webhooks_failed),
		Dropped:        uint64(s.dropped),
	}, nil
}

// Version returns the version of the loaded library, such as "0.1.0" (see HeaderVersion).
func Version() string {
	return C.GoString(C.bg_version())
}
