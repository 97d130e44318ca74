package breakglass

// Every #cgo directive of the package lives in this file.
//
// By default the package builds against the repository's build tree: the header in
// include/ and the release library that `make release` leaves in target/release (found at
// run time through an rpath). The release build, not the debug one: a program linked from a
// checkout is a program someone may ship. With the build tag breakglass_pkgconfig it uses an
// installed copy instead, found with `pkg-config breakglass` (the repository's `make install`
// writes breakglass.pc). CGO_CFLAGS and CGO_LDFLAGS, when set, are added to either.
//
// -I${SRCDIR} lets the preambles find breakglass_cgo.h, the wrapper that turns a missing
// breakglass.h into a message saying how to fix it.

/*
#cgo CFLAGS: -I${SRCDIR}
#cgo !breakglass_pkgconfig CFLAGS: -I${SRCDIR}/../../include
#cgo !breakglass_pkgconfig LDFLAGS: -L${SRCDIR}/../../target/release -Wl,-rpath,${SRCDIR}/../../target/release -lbreakglass
#cgo breakglass_pkgconfig pkg-config: breakglass
*/
import "C"
