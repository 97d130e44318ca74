package breakglass

// Every #cgo directive of the package lives in this file.
//
// By default the package builds against the repository's build tree: the header in
// include/ and the release library that `make release` leaves in target/release. The release
// build, not the debug one: a program linked from a checkout is a program someone may ship,
// which is also why it gets no rpath into the checkout by default (run it with
// LD_LIBRARY_PATH, or install the library); the build tag breakglass_rpath adds one, for
// development (`make test-go` uses it). With the build tag breakglass_pkgconfig it uses an
// installed copy instead, found with `pkg-config breakglass` (the repository's `make install`
// writes breakglass.pc). CGO_CFLAGS and CGO_LDFLAGS, when set, are added to either.
//
// -I${SRCDIR} lets the preambles find breakglass_cgo.h, the wrapper that turns a missing
// breakglass.h into a message saying how to fix it.

/*
#cgo CFLAGS: -I${SRCDIR}
#cgo !breakglass_pkgconfig CFLAGS: -I${SRCDIR}/../../include
#cgo !breakglass_pkgconfig LDFLAGS: -L${SRCDIR}/../../target/release -lbreakglass
#cgo !breakglass_pkgconfig,breakglass_rpath LDFLAGS: -Wl,-rpath,${SRCDIR}/../../target/release
#cgo breakglass_pkgconfig pkg-config: breakglass
*/
import "C"
