#!/usr/bin/env bash
# Write the filter's two OCI images as OCI image layouts (and oci-archive tarballs), with oras
# (pinned, scripts/setup-oras.sh) writing manifests, blobs and index.json.
#
# Usage: oci_layout.sh WASM OUT_DIR TAG
# Prints one line per image: VARIANT MANIFEST_DIGEST LAYOUT_DIR TARBALL
#
# Every byte is deterministic (tar headers with mtime 0 and owner 0:0, gzip without a name or
# time, oras's `created` annotation fixed at the epoch), so the same module always gives the
# same digests.
#
# Why two formats, and exactly these shapes: Istio's image fetcher
# (istio/istio pkg/wasm/imagefetcher.go, PrepareFetch) tries, in order:
#   1. the "compat" variant (extractOCIStandardImage): the LAST entry of manifest.layers
#      must be "application/vnd.oci.image.layer.v1.tar+gzip", a tar.gz in which it takes
#      the first file whose base name is "plugin.wasm";
#   2. the "oci" variant (extractOCIArtifactImage): len(img.Layers()) must be 2
#      ("number of layers must be 2 but got N"). img.Layers() is go-containerregistry's
#      view of manifest.layers: the manifest's config descriptor is NOT counted. One of
#      the two must be "application/vnd.module.wasm.content.layer.v1+wasm" and is read as
#      the raw module (Compressed(), no gunzip).
# So an artifact pushed the common `oras push --config cfg.json:...config.v1+json
# plugin.wasm:...wasm` way has ONE layer and is rejected: below, the runtime config is also
# listed as the first layer. Istio's own test (imagefetcher_test.go "OCI artifact") builds
# the two layers as a wasm content layer and an "application/vnd.module.wasm.config.v1+json"
# layer; the solo-io Wasm image spec (solo-io/wasm spec/spec.md) defines those two media
# types and the config JSON. The CNCF "application/vnd.wasm.*" media types are not
# recognised by that fetcher. The compat image's config is a minimal valid OCI image config
# (rootfs.diff_ids = sha256 of the uncompressed tar), so standard image tools (umoci,
# skopeo, registries) accept it.
# Istio's WasmPlugin `sha256` for an oci:// url is the manifest digest (pkg/wasm/cache.go
# compares it with img.Digest()), which is why the digests printed here are what to pin.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 WASM OUT_DIR TAG" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wasm="$(realpath "$1")" out="$2" tag="$3"
ORAS="$("$ROOT/scripts/setup-oras.sh")"

IMAGE_CONFIG=application/vnd.oci.image.config.v1+json
TAR_GZIP_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
WASM_CONFIG=application/vnd.module.wasm.config.v1+json
WASM_LAYER=application/vnd.module.wasm.content.layer.v1+wasm
# oras always sets this manifest annotation; a fixed value keeps the digests reproducible.
CREATED=org.opencontainers.image.created=1970-01-01T00:00:00Z
# The filter registers its root context under this id (envoy/envoy.yaml root_id).
ROOT_ID=mcp_authn

if [[ "$(head -c 4 "$wasm" | od -An -tx1 | tr -d ' \n')" != 0061736d ]]; then
  echo "error: $wasm is not a wasm module" >&2
  exit 1
fi
mkdir -p "$out"
out="$(realpath "$out")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A ustar archive of the files named on stdin, one per line, relative to directory $2, in
# that order: mode 0644, owner 0:0, mtime 0, no directory entries.
deterministic_tar() {
  tar --format=ustar --no-recursion --verbatim-files-from --owner=0 --group=0 --numeric-owner \
    --mtime=@0 --mode=0644 -C "$2" -cf "$1" -T -
}

# Pushes the files given after the layout name into a fresh layout and archives it; prints
# the manifest digest.
push() {
  local layout=$1
  shift
  rm -rf "$layout"
  (cd "$work" && "$ORAS" push --no-tty --oci-layout "$layout:$tag" -a "$CREATED" \
    --export-manifest "$work/manifest.json" "$@" >/dev/null)
  rmdir "$layout/ingest" 2>/dev/null || true  # oras's empty staging directory
  local digest
  digest="sha256:$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
  # The layout names exactly that manifest, under the tag, and holds its bytes.
  python3 - "$layout" "$digest" "$tag" <<'PY'
import json, os, sys
layout, digest, tag = sys.argv[1:]
manifests = json.load(open(os.path.join(layout, "index.json")))["manifests"]
names = [(m["digest"], m.get("annotations", {}).get("org.opencontainers.image.ref.name")) for m in manifests]
if names != [(digest, tag)] or not os.path.isfile(os.path.join(layout, "blobs", *digest.split(":"))):
    sys.exit(f"error: {layout} does not hold exactly the manifest oras exported: {names}")
PY
  (cd "$layout" && find . -type f -printf '%P\n' | LC_ALL=C sort) \
    | deterministic_tar "$layout.oci.tar" "$layout"
  echo "$digest"
}

cp "$wasm" "$work/plugin.wasm"

# Compat variant: one tar+gzip layer holding plugin.wasm, plus the variant annotation.
echo plugin.wasm | deterministic_tar "$work/plugin.tar" "$work"
gzip -9 -n -c "$work/plugin.tar" > "$work/plugin.tar.gz"
printf '{"architecture":"wasm","config":{},"os":"wasip1","rootfs":{"diff_ids":["sha256:%s"],"type":"layers"}}' \
  "$(sha256sum "$work/plugin.tar" | cut -d' ' -f1)" > "$work/image-config.json"
compat="$out/mcp_authn-compat"
digest="$(push "$compat" -a module.wasm.image/variant=compat \
  --config "image-config.json:$IMAGE_CONFIG" "plugin.tar.gz:$TAR_GZIP_LAYER")"
echo "compat $digest $compat $compat.oci.tar"

# OCI-artifact variant: exactly two layers, the runtime config and the raw module. The runtime
# config per solo-io/wasm spec/spec.md ("type": "envoy_proxy", ABI versions, root ids) is
# also the manifest's config.
abi="$({ grep -aoE 'proxy_abi_version_[0-9_]+' "$wasm" || true; } | LC_ALL=C sort -u | sed 's/.*/"&"/' \
  | paste -sd, -)"
if [[ -z "$abi" ]]; then
  echo "error: the module exports no proxy_abi_version_* (not a Proxy-Wasm module?)" >&2
  exit 1
fi
printf '{"abiVersions":[%s],"config":{"root_ids":["%s"]},"type":"envoy_proxy"}' "$abi" "$ROOT_ID" \
  > "$work/runtime-config.json"
artifact="$out/mcp_authn-artifact"
digest="$(push "$artifact" --config "runtime-config.json:$WASM_CONFIG" \
  "runtime-config.json:$WASM_CONFIG" "plugin.wasm:$WASM_LAYER")"
echo "artifact $digest $artifact $artifact.oci.tar"
