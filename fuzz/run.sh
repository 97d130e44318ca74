#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 60).
# Needs cargo-fuzz (installed here if missing). Only stable Rust is assumed: cargo-fuzz's
# -Z flags are allowed through RUSTC_BOOTSTRAP=1; the default sanitizer is none
# (FUZZ_SANITIZER=address to try ASan). Crashes land in fuzz/artifacts/<target>/; copy them
# into fuzz/regressions/<target>/ so `cargo test` (tests/integration/fuzz_corpus.rs) replays them.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
targets=("${@:-verify configure alert_payload}")
read -r -a targets <<<"${targets[*]}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  work="target/corpus-work/$t"          # new inputs found by this run (not committed)
  mkdir -p "$work"
  echo "== fuzz $t for ${seconds}s (sanitizer: $sanitizer)"
  if ! cargo fuzz run -s "$sanitizer" -O "$t" "$work" "corpus/$t" -- \
      -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 2>&1 | tail -n 25; then
    echo "!! fuzz target $t failed: see fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit $status
