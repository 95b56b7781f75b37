#!/usr/bin/env bash
# Memory of Envoy with the filter: a 64-key JWKS, a full verified-token cache, 100 requests paused
# for keys (bench/memory.py). Prints one Markdown table per --concurrency.
# BENCH_NO_BUILD=1 measures the existing dist/mcp_authn.wasm instead of running scripts/build.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ENVOY="$(scripts/setup-envoy.sh)"
export ENVOY
scripts/setup-peers.sh
if [[ "${BENCH_NO_BUILD:-0}" == "0" ]]; then
  scripts/build.sh >&2
fi
exec "$ROOT/.venv/bin/python" "$ROOT/bench/memory.py"
