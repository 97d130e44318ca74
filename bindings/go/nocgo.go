//go:build !cgo

package breakglass

// The package binds a C library, so it cannot be built without cgo. Without this file a
// CGO_ENABLED=0 build would drop every other file and quietly produce an empty package; the
// undefined name below makes the compiler stop with a message that says what to do.
var _ = breakglass_needs_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler
