#!/usr/bin/env bash
# The ship tests (tests/ship/): OCI images through a loopback registry, Envoy loading the
# module remotely, `envoy --mode validate` on envoy/, and the Istio manifests.
# Installs what it needs (Envoy, skopeo/umoci/docker-registry, PyYAML), builds the native
# checker and the OCI images, then runs the suite. Needs dist/mcp_authn.wasm (scripts/build.sh).
#
# Usage: scripts/ship-tests.sh [unittest args]   e.g. scripts/ship-tests.sh test_oci
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$ROOT/dist/mcp_authn.wasm" ]]; then
  echo "error: $ROOT/dist/mcp_authn.wasm not found; build it first with scripts/build.sh" >&2
  exit 1
fi

"$ROOT/scripts/setup-envoy.sh" >/dev/null
"$ROOT/scripts/setup-oci.sh"
(cd "$ROOT" && cargo build --locked --release --bin mcp-authn)
"$ROOT/scripts/oci.sh"

cd "$ROOT/tests/ship"
if [[ $# -eq 0 ]]; then
  exec "$ROOT/.venv/bin/python" -m unittest discover -v -s . -p 'test_*.py'
fi
exec "$ROOT/.venv/bin/python" -m unittest -v "$@"
