package breakglass

/*
#include <stdint.h>
#include "breakglass_cgo.h"

// Defined in drill_export.go (//export breakglassGoDrillReport).
extern void breakglassGoDrillReport(char *channel, int32_t outcome, char *detail, uintptr_t handle);

// The bg_drill_report_fn handed to the library: user_data carries a runtime/cgo.Handle.
static void breakglass_go_drill_trampoline(const char *channel, int32_t outcome,
                                           const char *detail, void *user_data) {
	breakglassGoDrillReport((char *)channel, outcome, (char *)detail, (uintptr_t)user_data);
}

static bg_status breakglass_go_drill(uint32_t timeout_ms, uintptr_t handle) {
	return bg_drill(timeout_ms, breakglass_go_drill_trampoline, (void *)handle);
}
*/
import "C"

import (
	"runtime/cgo"
	"time"
)

// DrillOutcome is how one channel of a fire drill ended (BG_DRILL_* in the header).
type DrillOutcome int

// The outcomes of a drill channel.
const (
	DrillDelivered   DrillOutcome = C.BG_DRILL_DELIVERED
	DrillRefused     DrillOutcome = C.BG_DRILL_REFUSED
	DrillTimedOut    DrillOutcome = C.BG_DRILL_TIMED_OUT
	DrillUnreachable DrillOutcome = C.BG_DRILL_UNREACHABLE
)

// String is the outcome as the drill report prints it.
func (o DrillOutcome) String() string {
	switch o {
	case DrillDelivered:
		return "delivered"
	case DrillRefused:
		return "refused"
	case DrillTimedOut:
		return "timed out"
	case DrillUnreachable:
		return "unreachable"
	}
	return "unknown"
}

// DrillChannel is one line of a drill report.
type DrillChannel struct {
	// Channel is such as "email ops@example.com" or "webhook json https://host:443" (never a
	// URL's path or a key).
	Channel string
	// Outcome is how it ended.
	Outcome DrillOutcome
	// Detail is the peer's answer or the reason; "" when delivered.
	Detail string
}

// Drill is the fire drill (bg_drill): it sends a clearly marked test alert through every
// configured alert channel and waits for each outcome, for at most timeout (0: the library's
// own bound). It returns one DrillChannel per channel, in order, and nil when every channel
// delivered, an error matching ErrDrillFailed when any did not (the report is still
// returned), or ErrNotConfigured when no alert channel is configured.
func Drill(timeout time.Duration) ([]DrillChannel, error) {
	ms := uint32(0)
	if timeout > 0 {
		ms = uint32(min(int64((timeout+time.Millisecond-1)/time.Millisecond), int64(^uint32(0))))
	}
	var report []DrillChannel
	h := cgo.NewHandle(&report)
	defer h.Delete()
	err := call("Drill", func() C.bg_status {
		return C.breakglass_go_drill(C.uint32_t(ms), C.uintptr_t(h))
	})
	return report, err
}
