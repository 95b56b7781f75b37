"""Every filter configuration the repository shows a user passes `mcp-authn check-config`.

- the Istio manifests' pluginConfig (the sidecar's and the gateway's), converted to JSON as Istio does (protomarshal.ToJSON of the
  Struct, passed as a StringValue: istio pilot/pkg/model/extensions.go). Integers stay integers:
  Struct numbers are doubles, but Go's protojson prints integral values without a fraction, as
  json.dumps does;
- every ```json block of a tracked Markdown file that is a configuration (an object with
  `issuer`, `jwks` or `servers`), and every block that is a fragment of one (`"mcpAuthorization": {...}`),
  checked merged into the first full configuration of the same file;
- the JSON configuration of every Wasm filter in the Envoy configs under envoy/.
"""

import json
import os
import re
import subprocess
import tempfile
import unittest

from ship import CHECKER, ISTIO_DIR, ROOT, applied, load_yaml, run

JSON_BLOCK = re.compile(r"^```json\n(.*?)^```", re.MULTILINE | re.DOTALL)
WASM_FILTER = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def is_config(value):
    return isinstance(value, dict) and bool({"issuer", "jwks", "servers"} & set(value))


def markdown_configs():
    """(source, config) for each configuration or fragment in the tracked Markdown files."""
    files = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True,
                           timeout=30, check=True).stdout.split()
    found = []
    for name in files:
        with open(os.path.join(ROOT, name)) as f:
            text = f.read()
        base = None
        for match in JSON_BLOCK.finditer(text):
            source = f"{name}:{text[:match.start()].count(chr(10)) + 1}"
            block = match.group(1)
            try:
                value = json.loads(block)
            except json.JSONDecodeError:
                value = json.loads("{" + block + "}")  # a fragment; anything else is a broken example
                if base is None:
                    raise AssertionError(f"{source}: a fragment before any full configuration")
                found.append((source, dict(base, **value)))
                continue
            if is_config(value):
                base = base or value
                found.append((source, value))
    return found


def envoy_configs():
    """(source, config) for each Wasm filter configuration in the Envoy configs under envoy/."""
    found = []
    for directory, _, names in os.walk(os.path.join(ROOT, "envoy")):
        for name in sorted(names):
            path = os.path.join(directory, name)
            if not name.endswith((".yaml", ".yml")) or path.startswith(ISTIO_DIR + os.sep):
                continue
            for document in load_yaml(path):
                for config in _wasm_configs(document):
                    found.append((os.path.relpath(path, ROOT), json.loads(config["configuration"]["value"])))
    return found


def _wasm_configs(node):
    if isinstance(node, dict):
        if node.get("@type") == WASM_FILTER:
            yield node["config"]
        for value in node.values():
            yield from _wasm_configs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _wasm_configs(value)


def check(config):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    try:
        return run([CHECKER, "check-config", f.name])
    finally:
        os.unlink(f.name)


class PluginConfigTest(unittest.TestCase):
    def assert_valid(self, configs):
        for source, config in configs:
            with self.subTest(source=source):
                result = check(config)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_istio_manifests(self):
        gateway = [d for d in applied("wasmplugin-gateway.yaml") if d["kind"] == "WasmPlugin"]
        documents = applied("wasmplugin.yaml") + applied("trafficextension.yaml") + gateway
        configs = [(d["kind"], d["spec"].get("wasm", d["spec"])["pluginConfig"]) for d in documents]
        self.assertEqual([kind for kind, _ in configs], ["WasmPlugin", "TrafficExtension", "WasmPlugin"])
        self.assertIn("servers", configs[2][1])
        self.assert_valid(configs)

    def test_markdown_examples(self):
        configs = markdown_configs()
        sources = {source.split(":")[0] for source, _ in configs}
        self.assertLessEqual({"README.md", "docs/configuration.md", "docs/identity-providers.md",
                              "docs/mcp-authorization.md"}, sources)
        self.assertTrue(any("mcpAuthorization" in config for _, config in configs))
        self.assert_valid(configs)

    def test_envoy_configs(self):
        configs = envoy_configs()
        self.assertIn("envoy/envoy.yaml", {source for source, _ in configs})
        self.assert_valid(configs)

    def test_checker_rejects_a_broken_config(self):
        """Control: the checker does fail on a bad config, so the tests above mean something."""
        [plugin] = applied("wasmplugin.yaml")
        broken = dict(plugin["spec"]["pluginConfig"], jwks={"url": "not a url", "cluster": "x"})
        self.assertEqual(check(broken).returncode, 2)
        fragment = dict(plugin["spec"]["pluginConfig"], mcpAuthorization={"rules": ["mcp.tool.name =="]})
        self.assertEqual(check(fragment).returncode, 2)


if __name__ == "__main__":
    unittest.main()
