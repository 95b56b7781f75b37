#!/usr/bin/env bash
# Bounded soak through a real Envoy (2 workers): mixed valid / invalid / no-token requests
# with a key rotation half way; every response checked against the expected decision.
#
# Usage: scripts/soak.sh [seconds] [client_threads]   (default 60 s, 8 threads; CI: 15)
# Prints totals, wrong decisions, 5xx and Envoy's RSS; exits non-zero on any wrong decision.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$ROOT/dist/mcp_authn.wasm" ]]; then
  echo "error: dist/mcp_authn.wasm not found; build it first with scripts/build.sh" >&2
  exit 1
fi
"$ROOT/scripts/setup-envoy.sh" >/dev/null
"$ROOT/scripts/setup-peers.sh"
cd "$ROOT/tests/e2e"
exec timeout --kill-after=10 "$(( ${1:-60} + 120 ))" "$ROOT/.venv/bin/python" soak.py "${1:-60}" "${2:-8}"
