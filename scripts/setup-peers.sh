#!/usr/bin/env bash
# Install the end-to-end test peers at exact versions:
#   .venv        tests/e2e/requirements.txt       mcp==1.30.0 (the older SDK line), token minting
#   .venv-mcp2   tests/e2e/requirements-mcp2.txt  mcp==2.3.0 (2026-07-28, stateless; speaks the older
#                                                 revisions too). The two lines cannot share a venv.
#   .deps/node-peers  tests/e2e/node-peers/       npm ci: the TypeScript SDK client, server-everything,
#                                                 the official conformance suite, playwright-core
#   .deps/inspector   tests/e2e/inspector/        npm ci: the MCP Inspector 2.12.0 (web UI; runs on
#                                                 the Node 22 of scripts/setup-idp.sh)
# Idempotent: pip runs only when an installed version differs, npm only when the lock file changed.
#
# Usage: scripts/setup-peers.sh [--node-path]   (--node-path: print .deps/node-peers and exit)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_PEERS="$ROOT/.deps/node-peers"

if [[ "${1:-}" == "--node-path" ]]; then
  echo "$NODE_PEERS"
  exit 0
fi

python_venv() { # python_venv VENV REQUIREMENTS
  local venv="$1" reqs="$2" missing
  if [[ ! -x "$venv/bin/python" ]]; then
    "$(command -v python3.11 || command -v python3)" -m venv "$venv"
  fi
  # Every pinned line must appear verbatim (case-insensitively) in pip freeze.
  missing="$(grep -E '^[A-Za-z0-9_.-]+==' "$reqs" \
    | grep -vixF -f <("$venv/bin/python" -m pip freeze --disable-pip-version-check) || true)"
  if [[ -n "$missing" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
  fi
}

python_venv "$ROOT/.venv" "$ROOT/tests/e2e/requirements.txt"
python_venv "$ROOT/.venv-mcp2" "$ROOT/tests/e2e/requirements-mcp2.txt"

node_tree() { # node_tree SOURCE_DIR TARGET_DIR MARKER [ci|install]: npm when the lock file changed
  local src="$1" target="$2" marker="$3" how="${4:-ci}"
  if ! cmp -s "$src/package-lock.json" "$target/package-lock.json" || [[ ! -d "$target/node_modules/$marker" ]]; then
    command -v npm >/dev/null || { echo "error: npm is needed to install the Node test peers" >&2; exit 1; }
    rm -rf "$target"
    mkdir -p "$target"
    cp "$src/package.json" "$src/package-lock.json" "$target/"
    npm "$how" --prefix "$target" --no-audit --no-fund --no-update-notifier --loglevel=error >&2
    cp "$src/package-lock.json" "$target/"  # the stamp for the next run
  fi
}
node_tree "$ROOT/tests/e2e/node-peers" "$NODE_PEERS" "@modelcontextprotocol/sdk"
# `npm install` with the lock file, not `npm ci`: vite (a dependency of the Inspector) names a
# Windows-only optional package that the registry does not serve, which `npm ci` refuses.
node_tree "$ROOT/tests/e2e/inspector" "$ROOT/.deps/inspector" "@modelcontextprotocol/inspector" install
echo "test peers ready: .venv (mcp 1.30.0), .venv-mcp2 (mcp 2.3.0), $NODE_PEERS" >&2
