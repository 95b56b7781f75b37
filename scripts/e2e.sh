#!/usr/bin/env bash
# Run the end-to-end suite: real Envoy + dist/mcp_authn.wasm + JWKS server +
# MCP server/client. Installs Envoy and the test peers first (idempotent).
#
# Usage: scripts/e2e.sh [unittest args]   e.g. scripts/e2e.sh test_filter.RotationTest
# Exits non-zero on any failure, including a missing wasm module.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM="$ROOT/dist/mcp_authn.wasm"

if [[ ! -f "$WASM" ]]; then
  echo "error: $WASM not found; build it first with scripts/build.sh" >&2
  exit 1
fi

"$ROOT/scripts/setup-envoy.sh" >/dev/null
"$ROOT/scripts/setup-peers.sh"
"$ROOT/scripts/setup-idp.sh" >/dev/null  # the real OpenID provider for test_idp (npm)
"$ROOT/scripts/setup-keycloak.sh" >/dev/null  # Keycloak (Maven) and chromium (apt) for test_signin

cd "$ROOT/tests/e2e"
if [[ $# -eq 0 ]]; then
  exec "$ROOT/.venv/bin/python" -m unittest discover -v -s . -p 'test_*.py'
fi
exec "$ROOT/.venv/bin/python" -m unittest -v "$@"
