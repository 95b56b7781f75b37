"""The Istio manifests in envoy/istio/: structure, cross-references, and the filter config.

Istio cannot run here, so the checks are static:
- every field is one the CRDs define (istio/api kubernetes/customresourcedefinitions.gen.yaml),
  with the enum values they allow;
- pluginConfig.jwks.cluster is the name Istio gives the ServiceEntry's cluster;
- pluginConfig, converted to JSON as Istio does (protomarshal.ToJSON of the Struct, passed
  as a StringValue: istio pilot/pkg/model/extensions.go), passes `mcp-authn check-config`;
- a real Envoy runs the filter configured the way Istio would (no vm_id, plugin name
  "<namespace>.<name>", root_id = pluginName, a cluster named outbound|443||idp.example.com).
"""

import json
import os
import re
import shutil
import tempfile
import unittest
import urllib.parse

import yaml

from ship import CHECKER, ROOT, harness, run

ISTIO_DIR = os.path.join(ROOT, "envoy", "istio")

# extensions.istio.io/v1alpha1 WasmPlugin spec fields and enums.
WASMPLUGIN_FIELDS = {
    "selector", "targetRef", "targetRefs", "url", "sha256", "imagePullPolicy", "imagePullSecret",
    "verificationKey", "pluginConfig", "pluginName", "phase", "priority", "failStrategy",
    "vmConfig", "match", "type",
}
PHASES = {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"}
PULL_POLICIES = {"UNSPECIFIED_POLICY", "IfNotPresent", "Always"}
FAIL_STRATEGIES = {"FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"}
MATCH_MODES = {"UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"}
SERVICEENTRY_FIELDS = {
    "hosts", "addresses", "ports", "location", "resolution", "endpoints", "workloadSelector",
    "exportTo", "subjectAltNames",
}
DESTINATIONRULE_FIELDS = {"host", "trafficPolicy", "subsets", "exportTo", "workloadSelector"}


def load_all(name):
    with open(os.path.join(ISTIO_DIR, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def one_of_kind(documents, kind):
    [document] = [d for d in documents if d["kind"] == kind]
    return document


def istio_cluster_name(host, port, subset=""):
    """Istio's outbound cluster naming: outbound|<port>|<subset>|<host>."""
    return f"outbound|{port}|{subset}|{host}"


class WasmPluginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        [cls.plugin] = load_all("wasmplugin.yaml")
        cls.spec = cls.plugin["spec"]

    def test_kind_and_metadata(self):
        self.assertEqual(self.plugin["apiVersion"], "extensions.istio.io/v1alpha1")
        self.assertEqual(self.plugin["kind"], "WasmPlugin")
        self.assertTrue(self.plugin["metadata"]["name"])
        self.assertTrue(self.plugin["metadata"]["namespace"])
        self.assertEqual(set(self.plugin), {"apiVersion", "kind", "metadata", "spec"})

    def test_only_wasmplugin_fields(self):
        self.assertLessEqual(set(self.spec), WASMPLUGIN_FIELDS)

    def test_authn_phase_and_fail_closed(self):
        self.assertIn(self.spec["phase"], PHASES)
        self.assertEqual(self.spec["phase"], "AUTHN")
        self.assertIn(self.spec["failStrategy"], FAIL_STRATEGIES)
        self.assertEqual(self.spec["failStrategy"], "FAIL_CLOSE")

    def test_oci_url_pinned_by_manifest_digest(self):
        url = urllib.parse.urlparse(self.spec["url"])
        self.assertEqual(url.scheme, "oci")
        self.assertTrue(url.netloc and url.path.strip("/"))
        self.assertRegex(self.spec["sha256"], r"^[0-9a-f]{64}$")  # hex, no "sha256:" prefix
        self.assertIn(self.spec["imagePullPolicy"], PULL_POLICIES)

    def test_selector_and_match(self):
        labels = self.spec["selector"]["matchLabels"]
        self.assertTrue(labels)
        self.assertTrue(all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()))
        for rule in self.spec.get("match", []):
            self.assertLessEqual(set(rule), {"mode", "ports"})
            self.assertIn(rule.get("mode", "UNDEFINED"), MATCH_MODES)

    def test_plugin_name_is_the_filter_root_id(self):
        self.assertEqual(self.spec["pluginName"], "mcp_authn")

    def test_plugin_config_passes_the_filter_validation(self):
        """The JSON the filter receives from Istio is accepted by the native checker.

        Integers stay integers: protobuf Struct numbers are doubles, but Go's protojson
        prints integral values without a fraction (2000, not 2000.0), as json.dumps does.
        """
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(self.spec["pluginConfig"], f)
        self.addCleanup(os.unlink, f.name)
        result = run([CHECKER, "check-config", f.name])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_checker_rejects_a_broken_plugin_config(self):
        """Control: the checker does fail on a bad config, so the test above means something."""
        broken = dict(self.spec["pluginConfig"], jwks={"url": "not a url", "cluster": "x"})
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(broken, f)
        self.addCleanup(os.unlink, f.name)
        self.assertEqual(run([CHECKER, "check-config", f.name]).returncode, 2)


class IstioShapedEnvoyTest(unittest.TestCase):
    """The manifest's pluginConfig, loaded by Envoy the way Istio's xDS would deliver it."""

    @classmethod
    def setUpClass(cls):
        [plugin] = load_all("wasmplugin.yaml")
        spec = plugin["spec"]
        cls.log_dir = harness.new_log_dir(cls.__name__)
        cls.addClassCleanup(shutil.rmtree, cls.log_dir, True)  # failures carry the log tail
        listener_port, admin_port = harness.free_port(), harness.free_port()
        wasm = harness.wasm_filter(spec["pluginConfig"])
        config = wasm["typed_config"]["config"]
        config["name"] = f"{plugin['metadata']['namespace']}.{plugin['metadata']['name']}"
        config["root_id"] = spec["pluginName"]
        del config["vm_config"]["vm_id"]
        bootstrap = harness.bootstrap(
            listener_port=listener_port, admin_port=admin_port,
            upstream_port=harness.free_port(), jwks_port=harness.free_port(), http_filters=[wasm],
        )
        # Nothing listens behind it: a request without a token never needs the keys.
        idp = harness._static_cluster(spec["pluginConfig"]["jwks"]["cluster"], harness.free_port())
        bootstrap["static_resources"]["clusters"].append(idp)
        cls.envoy = harness.Envoy(bootstrap, listener_port=listener_port, admin_port=admin_port,
                                  log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready(timeout=30)
        cls.resource = spec["pluginConfig"]["resourceMetadata"]["resource"]

    def test_request_without_token_gets_the_challenge(self):
        status, headers, _ = harness.http_request(self.envoy.listener_port, "GET", "/mcp")
        self.assertEqual(status, 401, self.envoy.process.log_tail())
        origin = self.resource.rsplit("/mcp", 1)[0]
        self.assertIn(f'resource_metadata="{origin}/.well-known/oauth-protected-resource/mcp"',
                      headers["www-authenticate"])


class IdpServiceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        documents = load_all("serviceentry.yaml")
        cls.entry = one_of_kind(documents, "ServiceEntry")
        cls.rule = one_of_kind(documents, "DestinationRule")
        [plugin] = load_all("wasmplugin.yaml")
        cls.jwks = plugin["spec"]["pluginConfig"]["jwks"]

    def test_kinds_and_fields(self):
        for document in (self.entry, self.rule):
            self.assertEqual(document["apiVersion"], "networking.istio.io/v1")
            self.assertEqual(set(document), {"apiVersion", "kind", "metadata", "spec"})
        self.assertLessEqual(set(self.entry["spec"]), SERVICEENTRY_FIELDS)
        self.assertLessEqual(set(self.rule["spec"]), DESTINATIONRULE_FIELDS)
        self.assertEqual(self.entry["spec"]["location"], "MESH_EXTERNAL")

    def test_jwks_cluster_is_istios_name_for_the_service_entry(self):
        [host] = self.entry["spec"]["hosts"]
        clusters = {istio_cluster_name(host, p["number"]) for p in self.entry["spec"]["ports"]}
        self.assertEqual(self.jwks["cluster"], "outbound|443||idp.example.com")
        self.assertIn(self.jwks["cluster"], clusters)
        self.assertEqual(urllib.parse.urlparse(self.jwks["url"]).hostname, host)

    def test_destination_rule_originates_tls_to_the_idp(self):
        [host] = self.entry["spec"]["hosts"]
        self.assertEqual(self.rule["spec"]["host"], host)
        port = int(re.match(r"outbound\|(\d+)\|", self.jwks["cluster"]).group(1))
        [setting] = [
            s for s in self.rule["spec"]["trafficPolicy"]["portLevelSettings"] if s["port"]["number"] == port
        ]
        self.assertEqual(setting["tls"]["mode"], "SIMPLE")
        self.assertEqual(setting["tls"]["sni"], host)


if __name__ == "__main__":
    unittest.main()
