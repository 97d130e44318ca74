package breakglass

/*
#include "breakglass_cgo.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// DeliveryPath is the last outcome of one delivery path, as DeliveryHealth reports it.
type DeliveryPath struct {
	// Path is "code email" (the one-time code to otp_email), "alert email", or a webhook
	// receiver such as "webhook json https://hooks.example.com:443" (never a URL's path or a
	// key).
	Path string
	// LastSuccess is when it last delivered; the zero Time: not since the library loaded.
	LastSuccess time.Time
	// LastFailure is when it last finally failed, after retries; the zero Time: never.
	LastFailure time.Time
	// LastFailureReason says why it last failed ("" when it never did).
	LastFailureReason string
	// Failing is true when its last outcome was a failure.
	Failing bool
}

func unixMs(ms C.uint64_t) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

// DeliveryHealth returns the last outcome of every delivery path: the code email first, the
// alert email second, then each webhook receiver that has had an outcome. Real deliveries and
// drills both count.
//
// LoginBegin returning nil means the code email is queued, not delivered: a login page can
// say "mail is failing: use a recovery code" when CodeEmailFailing reports true.
func DeliveryHealth() ([]DeliveryPath, error) {
	var n C.size_t
	if err := call("DeliveryHealth", func() C.bg_status { return C.bg_delivery_health(nil, 0, &n) }); err != nil {
		return nil, err
	}
	rows := make([]C.struct_bg_delivery_path, int(n)+1)
	if err := call("DeliveryHealth", func() C.bg_status {
		return C.bg_delivery_health(&rows[0], C.size_t(len(rows)), &n)
	}); err != nil {
		return nil, err
	}
	if int(n) < len(rows) {
		rows = rows[:int(n)]
	}
	out := make([]DeliveryPath, 0, len(rows))
	for i := range rows {
		r := &rows[i]
		out = append(out, DeliveryPath{
			Path:              C.GoString((*C.char)(unsafe.Pointer(&r.path[0]))),
			LastSuccess:       unixMs(r.last_success_ms),
			LastFailure:       unixMs(r.last_failure_ms),
			LastFailureReason: C.GoString((*C.char)(unsafe.Pointer(&r.last_failure_reason[0]))),
			Failing:           r.failing == 1,
		})
	}
	return out, nil
}

// CodeEmailFailing reports whether the code email's last delivery failed: the code from
// LoginBegin may not arrive, and a recovery code (see LoginComplete) is the way in.
func CodeEmailFailing() (bool, error) {
	rows, err := DeliveryHealth()
	if err != nil || len(rows) == 0 {
		return false, err
	}
	return rows[0].Failing, nil
}
