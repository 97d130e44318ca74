#!/usr/bin/env bash
# Builds and runs the C stress test against the debug library (`make build` first).
# Usage: tests/stress/run.sh [seconds]   (default 3; STRESS_SECONDS works too)
# STRESS_LIBDIR=target/release runs it against the release build instead. It runs twice: on
# the in-process slot, then on a Redis shared slot (STRESS_REDIS_SECONDS, default 2).
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
build/stress "$@"

# The same mix against the shared slot, on a Redis of its own (no config, no persistence),
# stopped by the trap and, at the latest, by timeout.
command -v redis-server >/dev/null || { echo "stress: redis-server missing, shared slot skipped" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
timeout 120 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$(mktemp -d)" >/dev/null &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
STRESS_SLOT_URL="redis://127.0.0.1:$port" STRESS_SECONDS="${STRESS_REDIS_SECONDS:-2}" build/stress
