#!/usr/bin/env bash
# Build both OCI image formats Istio's fetcher accepts from dist/mcp_authn.wasm (no Docker, no
# daemon): OCI image layouts under dist/oci/ and the same layouts as oci-archive tarballs.
#
#   dist/oci/mcp_authn-compat/        one tar+gzip layer with plugin.wasm,
#   dist/oci/mcp_authn-compat.oci.tar   annotation module.wasm.image/variant=compat
#   dist/oci/mcp_authn-artifact/      two layers: application/vnd.module.wasm.config.v1+json
#   dist/oci/mcp_authn-artifact.oci.tar and application/vnd.module.wasm.content.layer.v1+wasm
#
# Why these shapes: see scripts/oci_layout.sh (it cites Istio's pkg/wasm/imagefetcher.go),
# which writes them with oras (pinned; scripts/setup-oras.sh installs it with `go install`).
# The layouts are byte-for-byte deterministic; the printed manifest digests are what a
# WasmPlugin pins (`url: oci://REGISTRY/REPO@sha256:...` or `sha256:` without the prefix).
#
# It then writes the Istio manifests that pin the compat image, from the templates in
# envoy/istio/ (scripts/istio_manifests.py): dist/istio/wasmplugin.yaml and
# dist/istio/trafficextension.yaml, with url oci://$MCP_AUTHN_IMAGE:TAG and sha256 = the compat
# image's manifest digest.
#
# Usage: [MCP_AUTHN_IMAGE=REGISTRY/REPO] scripts/oci.sh [TAG]
#        (TAG defaults to the Cargo package version, MCP_AUTHN_IMAGE to
#        registry.example.com/mcp/mcp-authn)
# Push:  skopeo copy --preserve-digests oci:dist/oci/mcp_authn-compat:TAG \
#          docker://$MCP_AUTHN_IMAGE:TAG
#        (--preserve-digests: fail rather than let the registry serve another digest).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM="$ROOT/dist/mcp_authn.wasm"
if [[ ! -f "$WASM" ]]; then
  echo "error: $WASM not found; build it first with scripts/build.sh" >&2
  exit 1
fi
tag="${1:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)}"

image="${MCP_AUTHN_IMAGE:-registry.example.com/mcp/mcp-authn}"

compat_digest=""
while read -r variant digest layout tarball; do
  echo "$variant image: $digest"
  echo "  layout:  ${layout#"$ROOT/"}  (skopeo: oci:${layout#"$ROOT/"}:$tag)"
  echo "  archive: ${tarball#"$ROOT/"}  (skopeo: oci-archive:${tarball#"$ROOT/"})"
  [[ "$variant" == compat ]] && compat_digest="$digest"
done < <("$ROOT/scripts/oci_layout.sh" "$WASM" "$ROOT/dist/oci" "$tag")
echo "module sha256: $(sha256sum "$WASM" | cut -d' ' -f1)"

if [[ -z "$compat_digest" ]]; then
  echo "error: scripts/oci_layout.sh printed no compat image digest" >&2
  exit 1
fi
echo "Istio manifests pinning oci://$image:$tag (sha256 ${compat_digest#sha256:}):"
python3 "$ROOT/scripts/istio_manifests.py" \
  "$ROOT/envoy/istio" "$ROOT/dist/istio" "$image" "$tag" "$compat_digest" | sed "s|^$ROOT/|  |"
