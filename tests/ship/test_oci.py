"""The OCI images from scripts/oci.sh: shape, determinism, and a push/pull round trip.

The round trip goes through a real registry (Debian's docker-registry, on a free loopback
port, storage in a temp dir) with skopeo, then checks what comes back the way Istio's
fetcher reads it (see scripts/oci_layout.sh for the rules and where they come from).
"""

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import unittest
import urllib.request

from ship import OCI_DIR, ROOT, WASM_PATH, applied, harness, run_ok, sha256_bytes, sha256_file

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAR_GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
TAG = "ship-test"
# The compat image's manifest annotations: the variant Istio's fetcher reads, and the creation
# time oras always writes, fixed at the epoch so the digests are reproducible.
COMPAT_ANNOTATIONS = {"module.wasm.image/variant": "compat", "org.opencontainers.image.created": "1970-01-01T00:00:00Z"}


class Layout:
    """Read access to an OCI image layout holding one manifest."""

    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "index.json")) as f:
            index = json.load(f)
        [self.descriptor] = index["manifests"]
        self.manifest = json.loads(self.blob(self.descriptor["digest"]))

    def blob(self, digest):
        algorithm, hex_digest = digest.split(":")
        with open(os.path.join(self.path, "blobs", algorithm, hex_digest), "rb") as f:
            return f.read()


def istio_extract(layout):
    """The module as Istio's fetcher gets it from an OCI manifest; returns (variant, bytes).

    Mirrors PrepareFetch in istio/istio pkg/wasm/imagefetcher.go: first the compat variant
    (the LAST layer is tar+gzip; the first member whose base name is plugin.wasm), then the
    oci variant (exactly 2 layers; the first one with the wasm content type, read raw).
    """
    layers = layout.manifest["layers"]
    if layers and layers[-1]["mediaType"] == TAR_GZIP_LAYER:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layout.blob(layers[-1]["digest"])))) as tar:
            for member in tar:
                if os.path.basename(member.name) == "plugin.wasm":
                    return "compat", tar.extractfile(member).read()
        raise AssertionError("compat layer without plugin.wasm")
    if len(layers) != 2:
        raise AssertionError(f"number of layers must be 2 but got {len(layers)}")
    for layer in layers:
        if layer["mediaType"] == WASM_LAYER:
            return "oci", layout.blob(layer["digest"])
    raise AssertionError(f"could not find the layer of type {WASM_LAYER}")


def build_layouts(out_dir):
    """Run the layout builder into `out_dir`; return {variant: manifest digest}."""
    result = subprocess.run(
        [os.path.join(ROOT, "scripts", "oci_layout.sh"), WASM_PATH, out_dir, TAG],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}


class ImageShapeTest(unittest.TestCase):
    """The layouts themselves, before any registry is involved."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="mcp-authn-ship-oci-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.digests = build_layouts(cls.work)
        cls.compat = Layout(os.path.join(cls.work, "mcp_authn-compat"))
        cls.artifact = Layout(os.path.join(cls.work, "mcp_authn-artifact"))
        cls.wasm_sha256 = sha256_file(WASM_PATH)

    def test_compat_is_one_tar_gzip_layer_with_plugin_wasm_and_the_annotation(self):
        manifest = self.compat.manifest
        self.assertEqual(manifest["mediaType"], MANIFEST)
        self.assertEqual(manifest["annotations"], COMPAT_ANNOTATIONS)
        [layer] = manifest["layers"]
        self.assertEqual(layer["mediaType"], TAR_GZIP_LAYER)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(self.compat.blob(layer["digest"])))) as tar:
            members = [(m.name, m.mode, m.uid, m.gid, m.mtime) for m in tar]
        self.assertEqual(members, [("plugin.wasm", 0o644, 0, 0, 0)])
        variant, wasm = istio_extract(self.compat)
        self.assertEqual((variant, sha256_bytes(wasm)), ("compat", self.wasm_sha256))

    def test_artifact_has_exactly_the_two_layers_istio_requires(self):
        manifest = self.artifact.manifest
        self.assertEqual(manifest["config"]["mediaType"], WASM_CONFIG)
        self.assertEqual([l["mediaType"] for l in manifest["layers"]], [WASM_CONFIG, WASM_LAYER])
        wasm_layer = manifest["layers"][1]
        self.assertEqual(wasm_layer["digest"], "sha256:" + self.wasm_sha256)
        runtime_config = json.loads(self.artifact.blob(manifest["layers"][0]["digest"]))
        self.assertEqual(runtime_config["type"], "envoy_proxy")
        self.assertEqual(runtime_config["config"], {"root_ids": ["mcp_authn"]})
        variant, wasm = istio_extract(self.artifact)
        self.assertEqual((variant, sha256_bytes(wasm)), ("oci", self.wasm_sha256))

    def test_layouts_are_deterministic(self):
        again = tempfile.mkdtemp(prefix="mcp-authn-ship-oci-again-")
        self.addCleanup(shutil.rmtree, again, True)
        self.assertEqual(build_layouts(again), self.digests)
        for variant in self.digests:
            name = f"mcp_authn-{variant}.oci.tar"
            self.assertEqual(sha256_file(os.path.join(again, name)), sha256_file(os.path.join(self.work, name)))

    def test_umoci_unpacks_the_compat_image(self):
        """A standard image tool (umoci) reads the compat image as an ordinary image."""
        rootfs = os.path.join(self.work, "rootfs")
        run_ok(self, ["umoci", "raw", "unpack", "--rootless",
                      "--image", f"{self.compat.path}:{TAG}", rootfs])
        self.assertEqual(os.listdir(rootfs), ["plugin.wasm"])
        self.assertEqual(sha256_file(os.path.join(rootfs, "plugin.wasm")), self.wasm_sha256)


class RegistryRoundTripTest(unittest.TestCase):
    """Push dist/oci/* to a loopback registry with skopeo and pull them back."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="mcp-authn-ship-registry-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.port = harness.free_port()
        config = os.path.join(cls.work, "registry.yml")
        with open(config, "w") as f:
            f.write(
                "version: 0.1\nlog: {level: warn}\n"
                f"storage: {{filesystem: {{rootdirectory: {cls.work}/storage}}}}\n"
                f"http: {{addr: '127.0.0.1:{cls.port}'}}\n"
            )
        # skopeo reads a signature policy; ours accepts anything because the tests check
        # every digest themselves, and it keeps the run independent of /etc/containers.
        cls.policy = os.path.join(cls.work, "policy.json")
        with open(cls.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        cls.registry = harness.Process("registry", ["docker-registry", "serve", config], cls.work)
        cls.addClassCleanup(cls.registry.stop)
        harness.wait_until(cls.registry_up, 20, interval=0.1, what="registry /v2/")

    @classmethod
    def registry_up(cls):
        if not cls.registry.alive():
            raise RuntimeError(f"docker-registry exited:\n{cls.registry.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/v2/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def skopeo(self, *args):
        return run_ok(self, ["skopeo", "--policy", self.policy, *args], timeout=120)

    def round_trip(self, variant):
        """Push the dist layout, then return (pulled Layout, raw manifest digest in the registry)."""
        layout = Layout(os.path.join(OCI_DIR, f"mcp_authn-{variant}"))
        tag = layout.descriptor["annotations"]["org.opencontainers.image.ref.name"]
        remote = f"docker://127.0.0.1:{self.port}/mcp-authn:{variant}"
        # --preserve-digests: fail rather than let skopeo rewrite the manifest, so what the
        # registry serves has the digest scripts/oci.sh printed (the one a WasmPlugin pins).
        self.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout.path}:{tag}", remote)
        raw = self.skopeo("inspect", "--raw", "--tls-verify=false", remote).stdout
        pulled_dir = os.path.join(self.work, f"pulled-{variant}")
        self.skopeo("copy", "--preserve-digests", "--src-tls-verify=false", remote, f"oci:{pulled_dir}:{variant}")
        self.assertEqual("sha256:" + sha256_bytes(raw.encode()), layout.descriptor["digest"])
        pulled = Layout(pulled_dir)
        self.assertEqual(pulled.descriptor["digest"], layout.descriptor["digest"])
        return pulled

    def test_compat_image_round_trip(self):
        pulled = self.round_trip("compat")
        # What Istio's agent compares a WasmPlugin's sha256 with: the digest of the manifest the
        # registry serves (round_trip checked it is the pulled one). The manifests pin exactly it.
        for name in ("wasmplugin.yaml", "trafficextension.yaml"):
            [document] = applied(name)
            spec = document["spec"].get("wasm", document["spec"])
            self.assertEqual("sha256:" + spec["sha256"], pulled.descriptor["digest"], name)
        self.assertEqual(pulled.manifest["annotations"], COMPAT_ANNOTATIONS)
        self.assertEqual([l["mediaType"] for l in pulled.manifest["layers"]], [TAR_GZIP_LAYER])
        variant, wasm = istio_extract(pulled)
        self.assertEqual((variant, sha256_bytes(wasm)), ("compat", sha256_file(WASM_PATH)))

    def test_artifact_image_round_trip(self):
        pulled = self.round_trip("artifact")
        self.assertEqual(pulled.manifest["config"]["mediaType"], WASM_CONFIG)
        self.assertEqual([l["mediaType"] for l in pulled.manifest["layers"]], [WASM_CONFIG, WASM_LAYER])
        variant, wasm = istio_extract(pulled)
        self.assertEqual((variant, sha256_bytes(wasm)), ("oci", sha256_file(WASM_PATH)))

    def test_oci_archive_tarball_pushes_to_the_same_digest(self):
        """The tarball is the same image: pushing it yields the layout's manifest digest."""
        for variant in ("compat", "artifact"):
            layout = Layout(os.path.join(OCI_DIR, f"mcp_authn-{variant}"))
            remote = f"docker://127.0.0.1:{self.port}/mcp-authn-archive:{variant}"
            self.skopeo("copy", "--preserve-digests", "--dest-tls-verify=false",
                        f"oci-archive:{layout.path}.oci.tar", remote)
            raw = self.skopeo("inspect", "--raw", "--tls-verify=false", remote).stdout
            self.assertEqual("sha256:" + sha256_bytes(raw.encode()), layout.descriptor["digest"])


if __name__ == "__main__":
    unittest.main()
