/* Included by every cgo preamble of the package instead of breakglass.h itself, so that a
 * build without the header (a module fetched with `go get` holds no include/ directory) stops
 * with a message that says how to fix it rather than with the compiler's bare "not found". */
#ifndef BREAKGLASS_CGO_H
#define BREAKGLASS_CGO_H

#if defined(__has_include)
#if !__has_include(<breakglass.h>)
#error "breakglass.h not found. Build against an installed libbreakglass with `go build -tags breakglass_pkgconfig` (after `make install`; set PKG_CONFIG_PATH for a non-default PREFIX), or against a checkout of the repository after `make release`, or point CGO_CFLAGS=-I... and CGO_LDFLAGS=-L... at a copy."
#endif
#endif

#include <breakglass.h>

#endif
