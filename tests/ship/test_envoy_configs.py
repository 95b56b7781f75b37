"""`envoy --mode validate` accepts every Envoy config shipped under envoy/.

Validation runs from the repository root because the configs load the module by the
relative path dist/mcp_authn.wasm. Kubernetes manifests (documents with apiVersion and
kind, i.e. envoy/istio/) are not Envoy configs and are skipped.
"""

import glob
import os
import tempfile
import unittest

import yaml

from ship import ROOT, harness, run

ENVOY_DIR = os.path.join(ROOT, "envoy")


def is_kubernetes_manifest(path):
    with open(path) as f:
        documents = [d for d in yaml.safe_load_all(f) if d is not None]
    return bool(documents) and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in documents)


def envoy_configs():
    paths = sorted(
        glob.glob(os.path.join(ENVOY_DIR, "**", "*.yaml"), recursive=True)
        + glob.glob(os.path.join(ENVOY_DIR, "**", "*.yml"), recursive=True)
    )
    return [p for p in paths if not is_kubernetes_manifest(p)]


def validate(path):
    return run([harness.envoy_binary(), "--mode", "validate", "-c", path], timeout=120)


class EnvoyValidateTest(unittest.TestCase):
    def test_every_envoy_config_validates(self):
        configs = envoy_configs()
        self.assertIn(os.path.join(ENVOY_DIR, "envoy.yaml"), configs)
        for path in configs:
            with self.subTest(config=os.path.relpath(path, ROOT)):
                result = validate(path)
                self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
                self.assertIn("OK", result.stdout + result.stderr)

    def test_only_istio_manifests_are_skipped(self):
        skipped = [
            os.path.relpath(p, ENVOY_DIR)
            for p in glob.glob(os.path.join(ENVOY_DIR, "**", "*.y*ml"), recursive=True)
            if is_kubernetes_manifest(p)
        ]
        self.assertTrue(skipped)
        for path in skipped:
            self.assertTrue(path.startswith("istio" + os.sep), path)

    def test_validation_loads_the_module(self):
        """Control: the same config with a missing module fails, so 'OK' above means loaded."""
        with open(os.path.join(ENVOY_DIR, "envoy.yaml")) as f:
            text = f.read()
        self.assertIn("dist/mcp_authn.wasm", text)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text.replace("dist/mcp_authn.wasm", "dist/no-such-module.wasm"))
        self.addCleanup(os.unlink, f.name)
        self.assertNotEqual(validate(f.name).returncode, 0)


if __name__ == "__main__":
    unittest.main()
