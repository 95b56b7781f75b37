"""The Istio manifests in envoy/istio/: Istio's schemas, the image pin, the IdP layout, Envoy.

Istio cannot run here, so:
- every manifest as it is applied (a template as scripts/oci.sh renders it into dist/istio/, any
  other file as committed) is valid against the CRD schemas of Istio 1.30.3, and all but the
  TrafficExtension against Istio 1.24.6's, with unknown fields refused (istio_schema.py);
- the WasmPlugin and TrafficExtension pin the compat image this build made, by the manifest
  digest Istio compares `sha256` with;
- pluginConfig.jwks.cluster is Istio's name for the ServiceEntry port where the sidecar
  originates TLS, and the DestinationRule checks the IdP's certificate name there
  (test_istio_tls.py runs that in Envoy);
- (test_istio_buffer.py: the buffer EnvoyFilter, in Envoy;)
- a real Envoy runs the filter configured the way Istio would (istio_xds.wasm_plugin).
"""

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

import istio_schema
import istio_xds
from ship import (ISTIO_DIR, OCI_DIR, PLACEHOLDER, RENDERED_DIR, ROOT, applied, applied_path, harness,
                  is_template, load_yaml)

RENDERER = os.path.join(ROOT, "scripts", "istio_manifests.py")
DEFAULT_IMAGE = "registry.example.com/mcp/mcp-authn"
NEWEST, OLDEST = "1.30.3", "1.24.6"  # the vendored schemas (tests/ship/istio-crds/README.md)
# The templates that load the filter: (file, kind of the plugin document in it).
PLUGINS = (("trafficextension.yaml", "TrafficExtension"), ("wasmplugin-gateway.yaml", "WasmPlugin"),
           ("wasmplugin.yaml", "WasmPlugin"))


def applied_paths():
    """Every manifest of envoy/istio/ as a user applies it."""
    return [applied_path(n) for n in sorted(os.listdir(ISTIO_DIR)) if n.endswith(".yaml")]


def one_of_kind(documents, kind):
    [document] = [d for d in documents if d["kind"] == kind]
    return document


def compat_image():
    """(manifest digest, tag) of the compat image scripts/oci.sh built."""
    layout = os.path.join(OCI_DIR, "mcp_authn-compat")
    with open(os.path.join(layout, "index.json")) as f:
        [descriptor] = json.load(f)["manifests"]
    algorithm, hex_digest = descriptor["digest"].split(":")
    with open(os.path.join(layout, "blobs", algorithm, hex_digest), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hex_digest
    return descriptor["digest"], descriptor["annotations"]["org.opencontainers.image.ref.name"]


def wasm_spec(document):
    """The Wasm settings of a WasmPlugin (its spec) or a TrafficExtension (spec.wasm)."""
    return document["spec"]["wasm"] if document["kind"] == "TrafficExtension" else document["spec"]


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.newest, cls.oldest = istio_schema.Crds(NEWEST), istio_schema.Crds(OLDEST)
        cls.documents = [(os.path.relpath(p, ROOT), d) for p in applied_paths() for d in load_yaml(p)]

    def test_vendored_schemas_hold_the_kinds_the_manifests_use(self):
        kinds = {"WasmPlugin", "ServiceEntry", "DestinationRule", "EnvoyFilter"}
        self.assertEqual(self.newest.kinds(), kinds | {"TrafficExtension"})
        self.assertEqual(self.oldest.kinds(), kinds)  # TrafficExtension is new in Istio 1.30
        self.assertEqual({d["kind"] for _, d in self.documents}, kinds | {"TrafficExtension"})

    def test_every_template_is_rendered(self):
        for name in os.listdir(ISTIO_DIR):
            if name.endswith(".yaml") and is_template(os.path.join(ISTIO_DIR, name)):
                with open(os.path.join(RENDERED_DIR, name)) as f:
                    self.assertNotIn("${", f.read(), name)

    def test_every_manifest_is_valid_for_the_newest_istio(self):
        for path, document in self.documents:
            with self.subTest(manifest=path, kind=document["kind"]):
                self.assertEqual(self.newest.errors(document), [])

    def test_every_manifest_but_the_traffic_extension_is_valid_for_istio_1_24(self):
        for path, document in self.documents:
            with self.subTest(manifest=path, kind=document["kind"]):
                if document["kind"] == "TrafficExtension":
                    self.assertEqual(self.oldest.errors(document),
                                     [f"TrafficExtension extensions.istio.io/v1alpha1 is not served by Istio {OLDEST}"])
                else:
                    self.assertEqual(self.oldest.errors(document), [])

    def test_the_validator_refuses_what_the_api_server_would(self):
        """Controls: each mutation of a valid manifest is reported, with the reason."""
        plugin = one_of_kind(applied("wasmplugin.yaml"), "WasmPlugin")
        idp = applied("serviceentry.yaml")
        rule, entry = one_of_kind(idp, "DestinationRule"), one_of_kind(idp, "ServiceEntry")

        def mutated(document, change):
            document = copy.deepcopy(document)
            change(document)
            return document

        cases = {
            # A structural schema would silently drop these two; the name check would vanish.
            "'subjectAltName' was unexpected": mutated(rule, lambda d: d["spec"]["trafficPolicy"][
                "portLevelSettings"][0]["tls"].update(subjectAltName=["idp.example.com"])),
            "'sha265' was unexpected": mutated(plugin, lambda d: d["spec"].update(sha265="0" * 64)),
            "unknown top-level field 'specs'": mutated(plugin, lambda d: d.update(specs={})),
            "only one of targetRefs or selector can be set": mutated(plugin, lambda d: d["spec"].update(
                targetRefs=[{"kind": "Service", "name": "mcp"}])),
            "'AUTHENTICATION' is not one of": mutated(plugin, lambda d: d["spec"].update(phase="AUTHENTICATION")),
            "does not match '(^$|^[a-f0-9]{64}$)'": mutated(plugin, lambda d: d["spec"].update(
                sha256="sha256:" + d["spec"]["sha256"])),
            "metadata.name: 'MCP_authn'": mutated(plugin, lambda d: d["metadata"].update(name="MCP_authn")),
            "metadata.uid: not a field a manifest sets": mutated(plugin, lambda d: d["metadata"].update(uid="x")),
            "spec.ports: ": mutated(entry, lambda d: d["spec"]["ports"].append(dict(d["spec"]["ports"][0]))),
            "spec.hosts[0]: ": mutated(entry, lambda d: d["spec"].update(hosts=["*"])),
            # A CEL rule the validator has no equivalent for is an error, never skipped.
            "CEL rule with no Python equivalent": mutated(entry, lambda d: d["spec"].update(
                endpoints=[{"labels": {"a": "b"}}])),
        }
        for expected, document in cases.items():
            with self.subTest(expected=expected):
                errors = self.newest.errors(document)
                self.assertTrue(any(expected in e for e in errors), errors)


class ImagePinTest(unittest.TestCase):
    """The sha256 comes from the build, so it cannot go stale.

    For an oci:// url, Istio's agent compares `sha256` with the digest of the image manifest it
    pulled (pkg/wasm/cache.go: a mismatch is "module downloaded from ... has checksum ...").
    test_oci.py's registry round trip checks that a registry serves this same digest.
    """

    def test_manifests_pin_the_compat_image_this_build_made(self):
        digest, tag = compat_image()
        for name, kind in PLUGINS:
            with self.subTest(manifest=name):
                spec = wasm_spec(one_of_kind(applied(name), kind))
                self.assertEqual(spec["sha256"], digest.removeprefix("sha256:"))
                self.assertEqual(spec["url"], f"oci://{DEFAULT_IMAGE}:{tag}")

    def test_templates_leave_exactly_the_image_to_fill_in(self):
        for name, _ in PLUGINS:
            with open(os.path.join(ISTIO_DIR, name)) as f:
                text = f.read()
            self.assertEqual(sorted(set(PLACEHOLDER.findall(text))), ["DIGEST", "IMAGE", "TAG"], name)
            self.assertEqual(text.count("$"), 3, name)

    def test_the_renderer_takes_the_image_and_refuses_a_bad_digest(self):
        out = tempfile.mkdtemp(prefix="mcp-authn-ship-istio-")
        self.addCleanup(shutil.rmtree, out, True)
        digest = "sha256:" + "ab" * 32

        def render(image, tag, digest):
            return subprocess.run([sys.executable, RENDERER, ISTIO_DIR, out, image, tag, digest],
                                  capture_output=True, text=True, timeout=30)

        result = render("reg.internal:5000/team/mcp-authn", "1.2.3", digest)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(os.listdir(out)), sorted(name for name, _ in PLUGINS))
        [plugin] = load_yaml(os.path.join(out, "wasmplugin.yaml"))
        self.assertEqual(plugin["spec"]["url"], "oci://reg.internal:5000/team/mcp-authn:1.2.3")
        self.assertEqual(plugin["spec"]["sha256"], "ab" * 32)
        for bad in ("ab" * 32, "sha256:" + "AB" * 32, "sha256:abc"):
            self.assertNotEqual(render(DEFAULT_IMAGE, "1", bad).returncode, 0, bad)
        self.assertNotEqual(render(DEFAULT_IMAGE + "@sha256:" + "ab" * 32, "1", digest).returncode, 0)


class PluginTest(unittest.TestCase):
    """The WasmPlugin (Istio 1.24+) and the TrafficExtension (1.30+) are the same plugin."""

    @classmethod
    def setUpClass(cls):
        [cls.plugin] = applied("wasmplugin.yaml")
        [cls.extension] = applied("trafficextension.yaml")

    def test_authn_phase_fail_closed_inbound_only(self):
        for document in (self.plugin, self.extension):
            with self.subTest(kind=document["kind"]):
                spec, wasm = document["spec"], wasm_spec(document)
                self.assertEqual(spec["phase"], "AUTHN")
                self.assertEqual(wasm["failStrategy"], "FAIL_CLOSE")
                self.assertEqual(spec["match"], [{"mode": "SERVER"}])
                self.assertEqual(wasm["pluginName"], "mcp_authn")  # the filter's root_id
                self.assertEqual(wasm["imagePullPolicy"], "IfNotPresent")

    def test_both_describe_the_same_plugin(self):
        for field in ("selector", "match", "phase"):
            self.assertEqual(self.plugin["spec"][field], self.extension["spec"][field], field)
        for field in ("url", "sha256", "pluginConfig", "pluginName", "failStrategy", "imagePullPolicy"):
            self.assertEqual(self.plugin["spec"][field], self.extension["spec"]["wasm"][field], field)
        self.assertEqual(self.plugin["metadata"], self.extension["metadata"])


class IdpServiceTest(unittest.TestCase):
    """The IdP laid out as Istio's TLS-origination task does, with the certificate name checked."""

    @classmethod
    def setUpClass(cls):
        documents = applied("serviceentry.yaml")
        cls.entry = one_of_kind(documents, "ServiceEntry")
        cls.rule = one_of_kind(documents, "DestinationRule")
        [plugin] = applied("wasmplugin.yaml")
        cls.jwks = plugin["spec"]["pluginConfig"]["jwks"]
        [cls.host] = cls.entry["spec"]["hosts"]
        cls.ports = {p["number"]: p for p in cls.entry["spec"]["ports"]}

    def test_jwks_cluster_is_the_plain_http_port_istio_originates_tls_on(self):
        port = int(self.jwks["cluster"].split("|")[1])
        self.assertEqual(self.jwks["cluster"], istio_xds.cluster_name(self.host, port))
        self.assertEqual(self.jwks["cluster"], "outbound|80||idp.example.com")
        self.assertEqual(self.ports[port]["protocol"], "HTTP")
        self.assertEqual(self.ports[port]["targetPort"], 443)
        self.assertEqual(urllib.parse.urlparse(self.jwks["url"]).hostname, self.host)
        self.assertEqual(self.rule["spec"]["host"], self.host)
        self.assertEqual(self.entry["spec"]["location"], "MESH_EXTERNAL")

    def test_tls_is_originated_with_the_idps_name_checked(self):
        tls = istio_xds.port_tls(self.rule, int(self.jwks["cluster"].split("|")[1]))
        self.assertEqual(tls["mode"], "SIMPLE")
        self.assertEqual(tls["sni"], self.host)
        self.assertEqual(tls["subjectAltNames"], [self.host])
        socket, auto, _ = istio_xds.upstream_tls(tls)
        validation = socket["typed_config"]["common_tls_context"]["combined_validation_context"]
        self.assertEqual(validation["default_validation_context"]["match_subject_alt_names"], [{"exact": self.host}])
        self.assertIsNone(auto)

    def test_https_port_is_passed_through_so_apps_calling_the_idp_get_no_double_tls(self):
        self.assertEqual(self.ports[443]["protocol"], "HTTPS")
        self.assertIsNone(istio_xds.port_tls(self.rule, 443))

    def test_visible_only_in_the_plugins_namespace(self):
        [plugin] = applied("wasmplugin.yaml")
        for document in (self.entry, self.rule):
            self.assertEqual(document["spec"]["exportTo"], ["."])
            self.assertEqual(document["metadata"]["namespace"], plugin["metadata"]["namespace"])


class IstioShapedEnvoyTest(unittest.TestCase):
    """The WasmPlugin loaded by Envoy as Istio 1.24-1.29 delivers it (plugin name
    "<namespace>.<name>"; test_istio_tls.py runs the 1.30+ TrafficExtension shape)."""

    @classmethod
    def setUpClass(cls):
        [plugin] = applied("wasmplugin.yaml")
        cls.log_dir = harness.new_log_dir(cls.__name__)
        cls.addClassCleanup(shutil.rmtree, cls.log_dir, True)  # failures carry the log tail
        listener_port, admin_port = harness.free_port(), harness.free_port()
        wasm = istio_xds.wasm_plugin(plugin, harness.WASM_PATH, istio_1_30=False)
        cls.plugin_name = wasm["typed_config"]["config"]["name"]
        bootstrap = harness.bootstrap(
            listener_port=listener_port, admin_port=admin_port,
            upstream_port=harness.free_port(), jwks_port=harness.free_port(), http_filters=[wasm],
        )
        # Nothing listens behind it: a request without a token never needs the keys.
        config = plugin["spec"]["pluginConfig"]
        harness.add_cluster(bootstrap, config["jwks"]["cluster"], harness.free_port())
        cls.envoy = harness.Envoy(bootstrap, listener_port=listener_port, admin_port=admin_port,
                                  log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready(timeout=30)
        cls.resource = config["resourceMetadata"]["resource"]

    def test_request_without_token_gets_the_challenge(self):
        self.assertEqual(self.plugin_name, "mcp.mcp-authn")
        status, headers, _ = harness.http_request(self.envoy.listener_port, "GET", "/mcp")
        self.assertEqual(status, 401, self.envoy.process.log_tail())
        origin = self.resource.rsplit("/mcp", 1)[0]
        self.assertIn(f'resource_metadata="{origin}/.well-known/oauth-protected-resource/mcp"',
                      headers["www-authenticate"])


class GatewayPluginEnvoyTest(unittest.TestCase):
    """wasmplugin-gateway.yaml's filter as Istio delivers it to the ingress gateway: one plugin,
    two MCP servers on one host, each with its own metadata and challenge, the rest refused."""

    HOST = "mcp.example.com"

    @classmethod
    def setUpClass(cls):
        plugin = one_of_kind(applied("wasmplugin-gateway.yaml"), "WasmPlugin")
        cls.config = plugin["spec"]["pluginConfig"]
        cls.log_dir = harness.new_log_dir(cls.__name__)
        cls.addClassCleanup(shutil.rmtree, cls.log_dir, True)
        listener_port, admin_port = harness.free_port(), harness.free_port()
        bootstrap = harness.bootstrap(
            listener_port=listener_port, admin_port=admin_port, upstream_port=harness.free_port(),
            jwks_port=harness.free_port(), http_filters=[istio_xds.wasm_plugin(plugin, harness.WASM_PATH)],
        )
        # Nothing listens behind the IdP clusters: no request here needs keys.
        for cluster in {"outbound|80||idp.example.com", "outbound|80||login.example.org"}:
            harness.add_cluster(bootstrap, cluster, harness.free_port())
        cls.envoy = harness.Envoy(bootstrap, listener_port=listener_port, admin_port=admin_port,
                                  log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready(timeout=30)

    def get(self, path, host=HOST, method="GET"):
        return harness.http_request(self.envoy.listener_port, method, path, {"host": host})

    def test_each_server_has_its_own_metadata_and_challenge(self):
        for server in self.config["servers"]:
            name = server["name"]
            with self.subTest(server=name):
                status, _, body = self.get(f"/.well-known/oauth-protected-resource/{name}/mcp")
                self.assertEqual(status, 200, self.envoy.process.log_tail())
                document = json.loads(body)
                self.assertEqual(document["resource"], f"https://{self.HOST}/{name}/mcp")
                issuers = [i["issuer"] for i in server.get("issuers", [server])]
                self.assertEqual(document["authorization_servers"], issuers)
                status, headers, _ = self.get(f"/{name}/mcp", method="POST")
                self.assertEqual(status, 401)
                self.assertIn(f'resource_metadata="https://{self.HOST}/.well-known/oauth-protected-resource/{name}/mcp"',
                              headers["www-authenticate"])

    def test_a_request_for_no_server_is_refused(self):
        for host, path in ((self.HOST, "/other/mcp"), (self.HOST, "/filesx/mcp"), ("other.example.com", "/files/mcp")):
            with self.subTest(host=host, path=path):
                status, _, _ = self.get(path, host=host, method="POST")
                self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
