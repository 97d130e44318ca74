package breakglass

/*
#include <stdint.h>
#include "breakglass_cgo.h"

// Defined in logger_export.go (//export breakglassGoLog).
extern void breakglassGoLog(int32_t level, char *message, uintptr_t handle);

// The bg_log_fn handed to the library: user_data carries a runtime/cgo.Handle, never a Go
// pointer.
static void breakglass_go_log_trampoline(int32_t level, const char *message, void *user_data) {
	breakglassGoLog(level, (char *)message, (uintptr_t)user_data);
}

static bg_status breakglass_go_set_logger(uintptr_t handle, int32_t max_level) {
	return bg_set_logger(breakglass_go_log_trampoline, (void *)handle, max_level);
}
*/
import "C"

import (
	"context"
	"log/slog"
	"runtime/cgo"
	"sync"
	"sync/atomic"
)

// Library log levels (bg_log_fn): 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace.
const (
	libLevelOff   = 0
	libLevelError = 1
	libLevelWarn  = 2
	libLevelInfo  = 3
	libLevelDebug = 4
	libLevelTrace = 5
)

// levelTrace is the slog level that must be enabled for the library's trace records to be
// asked for; they are then logged at slog.LevelDebug.
const levelTrace = slog.LevelDebug - 4

var (
	// loggerMu serialises SetLogger, so that a handle is deleted only once the library has
	// stopped using it.
	loggerMu sync.Mutex
	// loggerHandle is the handle installed in the library, or 0 for none.
	loggerHandle cgo.Handle
	// callbackPanics counts panics recovered in the log callback (read by the tests).
	callbackPanics atomic.Int64
)

// SetLogger sends the library's log records to logger (log/slog), from the calling
// goroutine and from the library's delivery threads, at the matching levels: error, warn,
// info, debug (the library's trace records are logged at debug too). A nil logger detaches
// it and restores the library's default: records at warn or more severe written to stderr.
//
// The library is asked only for the levels logger enables when SetLogger is called
// (Logger.Enabled); call SetLogger again after changing the handler's level. A logger that
// enables no level at all silences the library. Records never hold a code (unless
// dev_otp_log is on) or a password.
//
// When SetLogger returns, the previous logger is no longer in use and will not be called
// again; to get there it waits until no record is being handled, which under a steady flood
// of records can take a while. The handler must not call SetLogger itself (it could
// deadlock), and should be quick: it runs on the library's delivery threads.
func SetLogger(logger *slog.Logger) {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	old := loggerHandle
	if logger == nil {
		if C.bg_set_logger(nil, nil, libLevelWarn) != C.BG_OK {
			return
		}
		loggerHandle = 0
	} else {
		h := cgo.NewHandle(logger)
		if C.breakglass_go_set_logger(C.uintptr_t(h), C.int32_t(maxLevel(logger))) != C.BG_OK {
			h.Delete()
			return
		}
		loggerHandle = h
	}
	// bg_set_logger has returned: the old callback is not running and will not run again.
	if old != 0 {
		old.Delete()
	}
}

// maxLevel is the most verbose library level that logger enables.
func maxLevel(logger *slog.Logger) int {
	ctx := context.Background()
	switch {
	case logger.Enabled(ctx, levelTrace):
		return libLevelTrace
	case logger.Enabled(ctx, slog.LevelDebug):
		return libLevelDebug
	case logger.Enabled(ctx, slog.LevelInfo):
		return libLevelInfo
	case logger.Enabled(ctx, slog.LevelWarn):
		return libLevelWarn
	case logger.Enabled(ctx, slog.LevelError):
		return libLevelError
	default:
		return libLevelOff
	}
}

// slogLevel maps a library level to a slog level.
func slogLevel(level int) slog.Level {
	switch level {
	case libLevelError:
		return slog.LevelError
	case libLevelWarn:
		return slog.LevelWarn
	case libLevelInfo:
		return slog.LevelInfo
	default: // debug, trace and anything newer
		return slog.LevelDebug
	}
}
