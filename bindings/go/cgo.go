package breakglass

// Every #cgo directive of the package lives in this file.
//
// By default the package builds against the repository's build tree: the header in
// include/ and the debug library that `make build` leaves in target/debug (found at run time
// through an rpath). With the build tag breakglass_pkgconfig it uses an installed copy
// instead, found with `pkg-config breakglass` (the repository's `make install` writes
// breakglass.pc). CGO_CFLAGS and CGO_LDFLAGS, when set, are added to either.

/*
#cgo !breakglass_pkgconfig CFLAGS: -I${SRCDIR}/../../include
#cgo !breakglass_pkgconfig LDFLAGS: -L${SRCDIR}/../../target/debug -Wl,-rpath,${SRCDIR}/../../target/debug -lbreakglass
#cgo breakglass_pkgconfig pkg-config: breakglass
*/
import "C"
