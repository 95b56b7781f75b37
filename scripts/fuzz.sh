#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed time and prints the executions per target.
#
# Usage: scripts/fuzz.sh [seconds_per_target]          (default 60)
#   FUZZ_TARGETS="decide token"  only these targets (default: all of `cargo fuzz list`)
#   FUZZ_RUNS=10000000           stop each target after this many executions instead
#                                (the time then only bounds it)
#   FUZZ_SANITIZER=address       libFuzzer sanitizer (default none: natively no crate here has unsafe
#                                code, the one SIMD load is wasm32-only; debug assertions catch overflow)
#   FUZZ_TRACE_COMPARES=0        build without libFuzzer's comparison tracing (own target dir,
#                                fuzz/target/no-trace-compares). For the long runs of rsa_diff and
#                                es256_diff: over half their time went to tracing the limb
#                                comparisons inside the bignum and field arithmetic, values
#                                derived from hashes and scalar multiplications that tracing
#                                cannot steer. Edge coverage still guides. Keep it on (the
#                                default) for the parsers, where it finds magic strings.
# Seeds come from fuzz/seeds/<target> (committed); libFuzzer grows fuzz/corpus/<target>
# (ignored). A crash stops that target, leaves its input in fuzz/artifacts/<target>/, and
# makes the script exit non-zero after the remaining targets ran.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_TARGET="${1:-60}"
SANITIZER="${FUZZ_SANITIZER:-none}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (about a minute)" >&2
  cargo install cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
# Build once, then run the binaries: `cargo fuzz run` would rebuild mid-run when src/ changes.
build=(-s "$SANITIZER")
target_dir=fuzz/target
if [[ "${FUZZ_TRACE_COMPARES:-1}" == "0" ]]; then
  target_dir=fuzz/target/no-trace-compares # other flags: kept apart so neither build invalidates the other
  build+=(--no-trace-compares --target-dir "$target_dir")
fi
cargo +nightly fuzz build "${build[@]}" >&2
bin_dir="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release"

limit=(-max_total_time="$SECONDS_PER_TARGET")
[[ -n "${FUZZ_RUNS:-}" ]] && limit+=(-runs="$FUZZ_RUNS")

logs="$(mktemp -d)"
failed=()
printf '%-14s %14s %10s %8s\n' target executions exec/s result
for target in $targets; do
  mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/artifacts/$target"
  log="$logs/$target.log"
  status=ok
  "$bin_dir/$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
    -artifact_prefix="fuzz/artifacts/$target/" "${limit[@]}" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=CRASH
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  printf '%-14s %14s %10s %8s\n' "$target" "${execs:-?}" "${rate:-?}" "$status"
  if [[ "$status" != ok ]]; then
    failed+=("$target")
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written|deadly signal' "$log" | head -20 >&2 || true
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/, logs in $logs;" \
    "minimise with cargo +nightly fuzz tmin -s $SANITIZER TARGET INPUT)" >&2
  exit 1
fi
rm -rf "$logs"
