#!/usr/bin/env bash
# The ship tests (tests/ship/): OCI images through a loopback registry, Envoy loading the
# module remotely, `envoy --mode validate` on envoy/, the Istio manifests (Istio's CRD schemas,
# the image pin, the IdP's certificate name checked in Envoy), and `mcp-authn check-config` on
# every filter config in the manifests, the Markdown docs and envoy/.
# Installs what it needs (Envoy, skopeo/umoci/docker-registry, PyYAML, jsonschema, PyJWT,
# cryptography), builds the native checker and the OCI images (which also renders
# dist/istio/), then runs the suite. Needs dist/mcp_authn.wasm (scripts/build.sh).
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
env -u MCP_AUTHN_IMAGE "$ROOT/scripts/oci.sh"  # the tests expect the default image name

cd "$ROOT/tests/ship"
if [[ $# -eq 0 ]]; then
  exec "$ROOT/.venv/bin/python" -m unittest discover -v -s . -p 'test_*.py'
fi
exec "$ROOT/.venv/bin/python" -m unittest -v "$@"
