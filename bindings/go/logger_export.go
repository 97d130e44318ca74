package breakglass

// This file holds the //export; its preamble may only declare, never define.

/*
#include <stdint.h>
*/
import "C"

import (
	"context"
	"log/slog"
	"runtime/cgo"
)

// breakglassGoLog is the library's log callback (through the C trampoline in logger.go). It
// may run on the library's own threads. It must never let a panic reach C, so it recovers
// its own (an invalid handle, a panicking handler) and counts them.
//
//export breakglassGoLog
func breakglassGoLog(level C.int32_t, message *C.char, handle C.uintptr_t) {
	defer func() {
		if recover() != nil {
			callbackPanics.Add(1)
		}
	}()
	logger, ok := cgo.Handle(uintptr(handle)).Value().(*slog.Logger)
	if !ok || logger == nil {
		return
	}
	logger.Log(context.Background(), slogLevel(int(level)), C.GoString(message))
}
