#!/usr/bin/env bash
# Bounded soak through a real Envoy (2 workers): mixed valid / invalid / no-token requests with
# mcpAuthorization rules, list filtering (JSON and SSE) and claimsToHeaders, a key rotation and an
# IdP outage; every answer and what the upstream saw checked against a model, RSS sampled.
#
# Usage: scripts/soak.sh [seconds] [client_threads]   (default 60 s, 8 threads; CI: 15)
# Prints totals, wrong answers, 5xx and Envoy's RSS over time; exits non-zero on any wrong
# answer, anything wrong at the upstream, or RSS growth over the bound.
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
