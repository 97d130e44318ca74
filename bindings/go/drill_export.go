package breakglass

// This file holds the //export; its preamble may only declare, never define.

/*
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// breakglassGoDrillReport receives one line of a drill report. The library calls it only on
// the thread that called bg_drill, during that call, so the slice behind the handle is not
// shared. It must never let a panic reach C.
//
//export breakglassGoDrillReport
func breakglassGoDrillReport(channel *C.char, outcome C.int32_t, detail *C.char, handle C.uintptr_t) {
	defer func() { _ = recover() }()
	report, ok := cgo.Handle(uintptr(handle)).Value().(*[]DrillChannel)
	if !ok {
		return
	}
	*report = append(*report, DrillChannel{
		Channel: C.GoString(channel),
		Outcome: DrillOutcome(outcome),
		Detail:  C.GoString(detail),
	})
}
