#!/usr/bin/env bash
# What a C user does with the library, checked end to end:
#  1. the build tree as a plain `cargo build` leaves it runs programs linked against it;
#  2. `make install` with PREFIX/LIBDIR/INCLUDEDIR/DESTDIR lays out the files a distribution
#     expects (stripped .so with its soname links, .a, header, .pc without an rpath and with
#     rustc's own native-static-libs, the stripped `breakglass` tool in BINDIR), and
#     `make uninstall` removes exactly them;
#  3. programs link through pkg-config dynamically, statically against libbreakglass.a
#     (`pkg-config --static`), and fully `-static`, and each runs the demo on a file outbox;
#  4. after an install, the loader's cache: `make install` runs ldconfig as root into a
#     directory the loader searches (a real ldconfig on a configuration of our own, -f/-C),
#     and says what to do for a directory it does not search, or under DESTDIR;
#  5. a second `make release` with nothing changed compiles nothing;
#  6. `make demo` needs only Rust, a C compiler and Python's standard library (no venv, no
#     system packages) and runs.
# Uses the debug build (INSTALL_FROM=debug) so `make test` builds the library once.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/build/install-test
rm -rf "$work" && mkdir -p "$work"
CWARN=(-Wall -Wextra -Wpedantic -Werror)
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }

run_demo() { # binary, then what the environment needs to find the library
  local bin=$1; shift
  local outbox=$work/outbox-$(basename "$bin")
  rm -rf "$outbox" && mkdir -p "$outbox"
  env "$@" BREAKGLASS_DEMO_OUTBOX="$outbox" "$bin" > "$work/$(basename "$bin").out" 2>&1 ||
    fail "$bin did not run: $(tail -5 "$work/$(basename "$bin").out")"
  [ "$(ls "$outbox" | wc -l)" -ge 3 ] || fail "$bin left no code and alert emails in the outbox"
}

# 1. The build tree.
[ -L target/debug/libbreakglass.so.0 ] || fail "cargo build left no libbreakglass.so.0 link"
readelf -d target/debug/libbreakglass.so | grep -q 'SONAME.*\[libbreakglass.so.0\]' ||
  fail "the library's soname is not libbreakglass.so.0"
cc -std=c11 "${CWARN[@]}" -Iinclude -o "$work/demo-tree" examples/demo.c -Ltarget/debug -lbreakglass
run_demo "$work/demo-tree" LD_LIBRARY_PATH="$root/target/debug"

# 2. A packager's staged install: /usr with a multiarch LIBDIR, under DESTDIR.
dest=$work/dest
make --no-print-directory install INSTALL_FROM=debug DESTDIR="$dest" PREFIX=/usr \
  LIBDIR=/usr/lib/x86_64-linux-gnu INCLUDEDIR=/usr/include > "$work/staged.out"
grep -q "staged under DESTDIR: run ldconfig" "$work/staged.out" || fail "no ldconfig note under DESTDIR: $(cat "$work/staged.out")"
lib=$dest/usr/lib/x86_64-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
for f in libbreakglass.so.0 libbreakglass.so libbreakglass.a pkgconfig/breakglass.pc; do
  [ -e "$lib/$f" ] || fail "missing $lib/$f"
done
[ -f "$dest/usr/include/breakglass.h" ] || fail "missing the header"
[ "$(readlink "$lib/libbreakglass.so")" = libbreakglass.so.0 ] || fail "libbreakglass.so link"
[ "$(readlink "$lib/libbreakglass.so.0")" = "libbreakglass.so.$version" ] || fail "libbreakglass.so.0 link"
readelf -S "$lib/libbreakglass.so.0" | grep -q '\.debug_info' && fail "the installed .so is not stripped"
# The tool: in BINDIR, executable, stripped, and it runs (it links the library statically).
tool=$dest/usr/bin/breakglass
[ -x "$tool" ] || fail "missing the breakglass tool in BINDIR"
readelf -S "$tool" | grep -q '\.debug_info\|\.symtab' && fail "the installed breakglass tool is not stripped"
[ "$(env -u LD_LIBRARY_PATH "$tool" --version)" = "breakglass $version" ] ||
  fail "the installed breakglass tool does not report its version"
pc=$lib/pkgconfig/breakglass.pc
grep -q '^libdir=/usr/lib/x86_64-linux-gnu$' "$pc" || fail ".pc libdir: $(cat "$pc")"
grep -q 'rpath' "$pc" && fail ".pc hard-codes an rpath: $(cat "$pc")"
grep -qx "Libs.private: $(cat target/debug/native-static-libs)" "$pc" ||
  fail ".pc Libs.private is not rustc's native-static-libs: $(cat "$pc")"
grep -qx 'Libs: -L${libdir} -lbreakglass' "$pc" || fail ".pc Libs: $(cat "$pc")"
make --no-print-directory uninstall DESTDIR="$dest" PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu \
  INCLUDEDIR=/usr/include >/dev/null
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"

# 3. Linking through pkg-config, from an install under a plain PREFIX.
prefix=$work/prefix
make --no-print-directory install INSTALL_FROM=debug PREFIX="$prefix" > "$work/prefix.out"
[ "$("$prefix/bin/breakglass" --version)" = "breakglass $version" ] || fail "PREFIX/bin/breakglass"
grep -q "$prefix/lib is not searched by the dynamic loader: programs need LD_LIBRARY_PATH" "$work/prefix.out" ||
  fail "no note that PREFIX/lib is not searched: $(cat "$work/prefix.out")"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cc -std=c11 "${CWARN[@]}" -o "$work/demo-dynamic" examples/demo.c $(pkg-config --cflags --libs breakglass)
readelf -d "$work/demo-dynamic" | grep -q 'NEEDED.*libbreakglass.so.0' || fail "dynamic link"
readelf -d "$work/demo-dynamic" | grep -qi 'rpath\|runpath' && fail "pkg-config gave the program an rpath"
run_demo "$work/demo-dynamic" LD_LIBRARY_PATH="$prefix/lib"

# Static libbreakglass, dynamic libc: the README's recipe.
cc -std=c11 "${CWARN[@]}" -o "$work/demo-static" examples/demo.c $(pkg-config --cflags breakglass) \
  $(pkg-config --static --libs breakglass | sed 's/-lbreakglass/-l:libbreakglass.a/')
readelf -d "$work/demo-static" | grep -q 'libbreakglass' && fail "the static link still needs libbreakglass.so"
run_demo "$work/demo-static"

# Fully static: glibc warns that name lookups need its shared NSS modules at run time; the demo
# (a file outbox, no lookups) runs, and the warning is what the README describes.
if cc -static -std=c11 -o "$work/demo-full-static" examples/demo.c $(pkg-config --cflags breakglass) \
    $(pkg-config --static --libs breakglass | sed -e 's/-lbreakglass/-l:libbreakglass.a/' -e 's/-lgcc_s//') \
    2> "$work/full-static.log"; then
  file "$work/demo-full-static" | grep -q 'statically linked' || fail "-static produced a dynamic binary"
  run_demo "$work/demo-full-static"
  grep -q getaddrinfo "$work/full-static.log" || echo "test-install: note: no getaddrinfo warning from glibc"
else
  fail "fully static link failed: $(tail -5 "$work/full-static.log")"
fi
make --no-print-directory uninstall PREFIX="$prefix" >/dev/null
[ -e "$prefix/bin/breakglass" ] && fail "uninstall left $prefix/bin/breakglass"
# 4. A directory the loader searches: a real ldconfig on a configuration that lists it (the
# host's own cache is left alone). As root the install runs it and the cache then lists the
# library; as another user the install says to run it.
searched=$work/searched
mkdir -p "$searched/lib"
echo "$searched/lib" > "$work/ld.so.conf"
ldc="ldconfig -f $work/ld.so.conf -C $work/ld.so.cache"
make --no-print-directory install INSTALL_FROM=debug PREFIX="$searched" LDCONFIG="$ldc" > "$work/searched.out"
if [ "$(id -u)" = 0 ]; then
  grep -q "ran ldconfig" "$work/searched.out" || fail "make install did not run ldconfig: $(cat "$work/searched.out")"
  ldconfig -C "$work/ld.so.cache" -p | grep -q "libbreakglass.so.0 .*=> $searched/lib/libbreakglass.so.0" ||
    fail "the loader's cache does not list the installed library"
else
  grep -q "run 'sudo ldconfig'" "$work/searched.out" || fail "no 'run sudo ldconfig' note: $(cat "$work/searched.out")"
fi
make --no-print-directory uninstall PREFIX="$searched" >/dev/null

# 5. Nothing changed, nothing compiled: the static-libs list is made once per dependency set.
make --no-print-directory release > "$work/release1.out" 2>&1 || fail "make release: $(tail -5 "$work/release1.out")"
make --no-print-directory release > "$work/release2.out" 2>&1 || fail "make release (again): $(tail -5 "$work/release2.out")"
grep -q Compiling "$work/release2.out" && fail "a second make release compiled: $(cat "$work/release2.out")"
[ -s target/release/native-static-libs ] || fail "make release left no native-static-libs"

# 6. The demo: nothing of the test setup in its recipe, and it runs with the system's python3.
make -n --no-print-directory demo > "$work/demo-n.out" 2>&1
grep -E 'deps\.sh|build/venv|apt-get' "$work/demo-n.out" && fail "make demo sets up test dependencies"
env -u VIRTUAL_ENV make --no-print-directory demo PYTHON=/usr/bin/python3 > "$work/demo.out" 2>&1 ||
  fail "make demo: $(tail -5 "$work/demo.out")"

echo "test-install: make demo with Python's standard library only, build tree, staged install (library and tool), uninstall, dynamic, static and fully static links, the loader's cache and a no-op release build all work"
