#!/usr/bin/env python3
"""Write the filter's two OCI images as OCI image layouts (and oci-archive tarballs).

Usage: oci_layout.py WASM OUT_DIR TAG

Stdlib only, and every byte is deterministic (no timestamps, fixed tar headers, gzip
mtime 0, sorted JSON keys), so the same module always gives the same digests.

Why two formats, and exactly these shapes: Istio's image fetcher
(istio/istio pkg/wasm/imagefetcher.go, PrepareFetch) tries, in order:
  1. the "compat" variant (extractOCIStandardImage): the LAST entry of manifest.layers
     must be "application/vnd.oci.image.layer.v1.tar+gzip", a tar.gz in which it takes
     the first file whose base name is "plugin.wasm";
  2. the "oci" variant (extractOCIArtifactImage): len(img.Layers()) must be 2
     ("number of layers must be 2 but got N"). img.Layers() is go-containerregistry's
     view of manifest.layers: the manifest's config descriptor is NOT counted. One of
     the two must be "application/vnd.module.wasm.content.layer.v1+wasm" and is read as
     the raw module (Compressed(), no gunzip).
So an artifact pushed the common `oras push --manifest-config cfg.json:...config.v1+json
plugin.wasm:...wasm` way has ONE layer and is rejected. Istio's own test
(imagefetcher_test.go "OCI artifact") builds the two layers as a wasm content layer and an
"application/vnd.module.wasm.config.v1+json" layer; the solo-io Wasm image spec
(solo-io/wasm spec/spec.md) defines those two media types and the config JSON. We list
the config layer too and also use the same runtime-config blob as the manifest config.
The CNCF "application/vnd.wasm.*" media types are not recognised by that fetcher.
Istio's WasmPlugin `sha256` for an oci:// url is the manifest digest (pkg/wasm/cache.go
compares it with img.Digest()), which is why the digests printed here are what to pin.
"""

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
TAR_GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
COMPAT_ANNOTATION = {"module.wasm.image/variant": "compat"}
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"
# The filter registers its root context under this id (envoy/envoy.yaml root_id).
ROOT_ID = "mcp_authn"


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class Layout:
    """An OCI image layout directory: oci-layout, index.json, blobs/sha256/<hex>."""

    def __init__(self, path):
        if os.path.exists(path):
            shutil.rmtree(path)
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"))
        with open(os.path.join(path, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))

    def blob(self, media_type, data, annotations=None):
        """Store `data` as a blob; return its descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        descriptor = {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
        if annotations:
            descriptor["annotations"] = annotations
        return descriptor

    def finish(self, config, layers, annotations, tag):
        """Write the manifest and an index.json naming it `tag`; return the manifest digest."""
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers}
        if annotations:
            manifest["annotations"] = annotations
        descriptor = self.blob(MANIFEST, canonical_json(manifest), {REF_NAME: tag})
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(canonical_json({"schemaVersion": 2, "manifests": [descriptor]}))
        return descriptor["digest"]


def deterministic_tar(members):
    """A ustar archive of (name, bytes) in the given order: mode 0644, owner 0:0, mtime 0."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_compat(wasm, out, tag):
    """Compat variant: one tar+gzip layer holding plugin.wasm, plus the variant annotation.

    The config is a minimal valid OCI image config (rootfs.diff_ids = sha256 of the
    uncompressed tar), so standard image tools (umoci, skopeo, registries) accept it.
    """
    layout = Layout(out)
    tar = deterministic_tar([("plugin.wasm", wasm)])
    layer = layout.blob(TAR_GZIP_LAYER, gzip.compress(tar, compresslevel=9, mtime=0))
    config = layout.blob(
        IMAGE_CONFIG,
        canonical_json(
            {
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
            }
        ),
    )
    return layout.finish(config, [layer], COMPAT_ANNOTATION, tag)


def build_artifact(wasm, out, tag):
    """OCI-artifact variant: exactly two layers, the runtime config and the raw module."""
    abi = sorted(set(re.findall(rb"proxy_abi_version_[0-9_]+", wasm)))
    if not abi:
        sys.exit("error: the module exports no proxy_abi_version_* (not a Proxy-Wasm module?)")
    # Runtime config per solo-io/wasm spec/spec.md ("type": "envoy_proxy", root ids).
    runtime_config = canonical_json(
        {"type": "envoy_proxy", "abiVersions": [a.decode() for a in abi], "config": {"root_ids": [ROOT_ID]}}
    )
    layout = Layout(out)
    config = layout.blob(WASM_CONFIG, runtime_config)
    layers = [
        layout.blob(WASM_CONFIG, runtime_config, {TITLE: "runtime-config.json"}),
        layout.blob(WASM_LAYER, wasm, {TITLE: "plugin.wasm"}),
    ]
    return layout.finish(config, layers, None, tag)


def archive(layout_dir, tarball):
    """The layout as a deterministic tar (skopeo's oci-archive: transport)."""
    members = []
    for base, dirs, files in os.walk(layout_dir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                members.append((os.path.relpath(path, layout_dir), f.read()))
    with open(tarball, "wb") as f:
        f.write(deterministic_tar(members))


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    wasm_path, out_dir, tag = argv[1:]
    with open(wasm_path, "rb") as f:
        wasm = f.read()
    if wasm[:4] != b"\0asm":
        sys.exit(f"error: {wasm_path} is not a wasm module")
    os.makedirs(out_dir, exist_ok=True)
    for name, build in (("compat", build_compat), ("artifact", build_artifact)):
        layout_dir = os.path.join(out_dir, f"mcp_authn-{name}")
        digest = build(wasm, layout_dir, tag)
        archive(layout_dir, layout_dir + ".oci.tar")
        print(f"{name} {digest} {layout_dir} {layout_dir}.oci.tar")


if __name__ == "__main__":
    main(sys.argv)
