// Package bench compares the Go binding with a bare cgo call and with what a Go program
// would write without the library (crypto/rand + crypto/subtle under a sync.Mutex).
// Run by benches/run.sh with LD_LIBRARY_PATH pointing at target/release.
package bench

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lbreakglass
#include <stdlib.h>
#include "breakglass.h"
*/
import "C"

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math/big"
	"sync"
	"time"
	"unsafe"
)

var buf = (*C.char)(C.malloc(C.BG_OTP_BUF_LEN))

// BareGenerate calls bg_generate into a preallocated C buffer.
func BareGenerate() C.bg_status { return C.bg_generate(buf, C.BG_OTP_BUF_LEN) }

// BareVerifyBuf calls bg_verify on the same buffer.
func BareVerifyBuf() C.bg_status { return C.bg_verify(buf) }

// BareCode copies the buffer out, as a caller of the bare call would.
func BareCode() string { return C.GoStringN(buf, C.BG_OTP_LEN) }

// BareVerify calls bg_verify with a Go string (converted to a C string, freed after).
func BareVerify(code string) C.bg_status {
	c := C.CString(code)
	st := C.bg_verify(c)
	C.free(unsafe.Pointer(c))
	return st
}

type slot struct {
	mu      sync.Mutex
	code    []byte
	expires time.Time
}

var std slot
var million = big.NewInt(1_000_000)

// StdGenerate is the library-free equivalent of Generate.
func StdGenerate() (string, error) {
	n, err := rand.Int(rand.Reader, million)
	if err != nil {
		return "", err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	std.mu.Lock()
	std.code, std.expires = []byte(code), time.Now().Add(10*time.Minute)
	std.mu.Unlock()
	return code, nil
}

// StdVerify is the library-free equivalent of Verify: consumes, checks expiry, compares in
// constant time.
func StdVerify(code string) bool {
	std.mu.Lock()
	c, exp := std.code, std.expires
	std.code = nil
	std.mu.Unlock()
	if c == nil || !time.Now().Before(exp) {
		return false
	}
	return subtle.ConstantTimeCompare(c, []byte(code)) == 1
}
