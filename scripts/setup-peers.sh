#!/usr/bin/env bash
# Install the end-to-end test peers (MCP server/client, token minting) into the
# repo-local .venv at the exact versions in tests/e2e/requirements.txt.
# Python-only on purpose: the `mcp` package provides both the upstream server
# and the client, so no npm packages are needed.
# Idempotent: pip is only invoked when an installed version differs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQS="$ROOT/tests/e2e/requirements.txt"

if [[ ! -x "$VENV/bin/python" ]]; then
  "$(command -v python3.11 || command -v python3)" -m venv "$VENV"
fi

# Every pinned line must appear verbatim (case-insensitively) in pip freeze.
missing="$(grep -E '^[A-Za-z0-9_.-]+==' "$REQS" \
  | grep -vixF -f <("$VENV/bin/python" -m pip freeze --disable-pip-version-check) || true)"
if [[ -n "$missing" ]]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2
fi
echo "test peers ready in $VENV" >&2
