#!/usr/bin/env bash
# Throughput/latency benchmark of the filter against no filter and Envoy's native jwt_authn, all in
# one Envoy (V8 runtime, loopback, free ports), at --concurrency 1 and 2. Prints a table and the
# target ratios of issue 18, and writes bench/RESULTS.md (quick mode: target/bench/RESULTS.quick.md).
#
# Usage: scripts/bench.sh                 full run (3 interleaved rounds x 4 s per case; about 18 min)
#        BENCH_QUICK=1 scripts/bench.sh   smoke run (1 round x 2 s per case; about 1 min)
# More knobs (rounds, duration, concurrency, pool size, output path) are listed in bench/bench.py.
# BENCH_NO_BUILD=1 benchmarks the existing dist/mcp_authn.wasm instead of running scripts/build.sh.
#
# Needs: wrk (installed with apt-get when missing; `cargo install oha --locked` if apt fails, which
# skips the uncached cases), Envoy and the Python peers (installed by the setup scripts below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -z "${BENCH_TOOL:-}" ]]; then
  if command -v wrk >/dev/null 2>&1; then
    BENCH_TOOL=wrk
  else
    echo "wrk not found: installing it with apt-get" >&2
    if { apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; } >&2 \
      && command -v wrk >/dev/null 2>&1; then
      BENCH_TOOL=wrk
    else
      echo "apt-get could not install wrk: falling back to oha (cargo install oha --locked)" >&2
      command -v oha >/dev/null 2>&1 || cargo install oha --locked >&2
      BENCH_TOOL=oha
    fi
  fi
fi
export BENCH_TOOL

ENVOY="$(scripts/setup-envoy.sh)"
export ENVOY
scripts/setup-peers.sh

if [[ "${BENCH_NO_BUILD:-0}" == "0" ]]; then
  scripts/build.sh >&2
fi

# The do-nothing proxy-wasm filter (the runtime's floor; its own crate and lockfile, not the filter's).
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --locked --release --target wasm32-wasip1 --quiet \
  --manifest-path bench/noop-filter/Cargo.toml --target-dir target/bench/noop-filter >&2
export BENCH_NOOP_WASM="$ROOT/target/bench/noop-filter/wasm32-wasip1/release/bench_noop_filter.wasm"

# The hostcall-counting variant: the filter with `hostcall-stats`, rewritten by bench/hostcalls (its
# own crate and lockfile). Same RUSTFLAGS as scripts/build.sh, so only this crate relinks. A preset
# BENCH_COUNTED_WASM is used as given (A/B runs of another tree's module).
if [[ -z "${BENCH_COUNTED_WASM:-}" ]]; then
  cargo build --locked --release --quiet --manifest-path bench/hostcalls/Cargo.toml \
    --target-dir target/bench/hostcalls >&2
  RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
    cargo build --locked --lib --release --target wasm32-wasip1 --features hostcall-stats --quiet >&2
  mkdir -p target/bench
  target/bench/hostcalls/release/bench-hostcalls target/wasm32-wasip1/release/mcp_authn.wasm \
    target/bench/mcp_authn.counted.wasm >&2
  BENCH_COUNTED_WASM="$ROOT/target/bench/mcp_authn.counted.wasm"
fi
export BENCH_COUNTED_WASM

exec "$ROOT/.venv/bin/python" "$ROOT/bench/bench.py"
