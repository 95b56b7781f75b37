#!/usr/bin/env bash
# Build both OCI image formats Istio's fetcher accepts from dist/mcp_authn.wasm (no Docker, no
# daemon): OCI image layouts under dist/oci/ and the same layouts as oci-archive tarballs.
#
#   dist/oci/mcp_authn-compat/        one tar+gzip layer with plugin.wasm,
#   dist/oci/mcp_authn-compat.oci.tar   annotation module.wasm.image/variant=compat
#   dist/oci/mcp_authn-artifact/      two layers: application/vnd.module.wasm.config.v1+json
#   dist/oci/mcp_authn-artifact.oci.tar and application/vnd.module.wasm.content.layer.v1+wasm
#
# Why these shapes: see scripts/oci_layout.py (it cites Istio's pkg/wasm/imagefetcher.go).
# The layouts are byte-for-byte deterministic; the printed manifest digests are what a
# WasmPlugin pins (`url: oci://REGISTRY/REPO@sha256:...` or `sha256:` without the prefix).
#
# Usage: scripts/oci.sh [TAG]   (default: the Cargo package version)
# Push:  skopeo copy oci:dist/oci/mcp_authn-compat:TAG docker://REGISTRY/mcp-authn:TAG
#        (add --preserve-digests so the registry keeps the digest printed here).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM="$ROOT/dist/mcp_authn.wasm"
if [[ ! -f "$WASM" ]]; then
  echo "error: $WASM not found; build it first with scripts/build.sh" >&2
  exit 1
fi
tag="${1:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)}"

python3 "$ROOT/scripts/oci_layout.py" "$WASM" "$ROOT/dist/oci" "$tag" |
  while read -r variant digest layout tarball; do
    echo "$variant image: $digest"
    echo "  layout:  ${layout#"$ROOT/"}  (skopeo: oci:${layout#"$ROOT/"}:$tag)"
    echo "  archive: ${tarball#"$ROOT/"}  (skopeo: oci-archive:${tarball#"$ROOT/"})"
  done
echo "module sha256: $(sha256sum "$WASM" | cut -d' ' -f1)"
