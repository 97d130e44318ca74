#!/usr/bin/env bash
# Builds and runs the C stress test against the debug library (`make build` first).
# Usage: tests/stress/run.sh [seconds]   (default 3; STRESS_SECONDS works too)
# STRESS_LIBDIR=target/release runs it against the release build instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
libdir="$(pwd)/${STRESS_LIBDIR:-target/debug}"
if [[ ! -e "$libdir/libbreakglass.so" ]]; then
  echo "tests/stress/run.sh: $libdir/libbreakglass.so is missing: run make build" >&2
  exit 2
fi
mkdir -p build
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -pthread -O1 -Iinclude \
  -o build/stress tests/stress/stress.c \
  -L"$libdir" -Wl,-rpath,"$libdir" -lbreakglass
exec build/stress "$@"
