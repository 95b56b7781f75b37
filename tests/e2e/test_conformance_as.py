"""The conformance suite's authorization-server scenarios against the gateway-fronted metadata:
a real OpenID provider (test_idp's `oidc-provider`, standard layout) behind `provider.oidc`, so
the issuer the suite is given is the gateway's own (`{resource}`), whose RFC 8414 document the
filter serves adapted from the provider's.

Only `authorization-server-metadata-endpoint` is asserted: `authorization-code-grant` needs an
interactive login at the provider, which this suite does not drive (see docs/conformance.md).
"""

import glob
import json
import os
import subprocess
import unittest

import harness
import test_idp

SUITE = os.path.join(
    harness.ROOT, ".deps", "node-peers", "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"
)


class AuthorizationServerConformanceTest(harness.KeepsLogsOnFailure, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(harness.WASM_PATH):
            raise RuntimeError(f"{harness.WASM_PATH} is missing: build it with scripts/build.sh")
        cls.keep_logs_until_done()
        cls.upstream, upstream_port = harness.start_mcp_server(cls.log_dir)
        cls.addClassCleanup(cls.upstream.stop)
        listener_port, admin_port = harness.free_port(), harness.free_port()
        cls.resource = f"http://127.0.0.1:{listener_port}/mcp"
        cls.idp = test_idp.Idp(cls.log_dir, layout="standard", resources=[cls.resource])
        cls.addClassCleanup(cls.idp.stop)
        plugin = {
            "issuer": cls.idp.issuer,
            "jwks": {"cluster": "idp", "timeoutMs": 1000},
            "provider": {"oidc": {}},
            "resourceMetadata": {"resource": cls.resource, "scopesSupported": [test_idp.SCOPE]},
        }
        config = harness.bootstrap(
            listener_port=listener_port,
            admin_port=admin_port,
            upstream_port=upstream_port,
            jwks_port=cls.idp.port,
            http_filters=[harness.wasm_filter(plugin)],
        )
        harness.add_cluster(config, "idp", cls.idp.port)
        cls.envoy = harness.Envoy(config, listener_port=listener_port, admin_port=admin_port, log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready()
        cls.setup_done()

    def test_metadata_endpoint_scenario_passes_against_the_gateway_issuer(self):
        output = os.path.join(self.log_dir, "authorization")
        argv = [test_idp.node_binary(), SUITE, "authorization", "--url", self.resource,
                "--scenario", "authorization-server-metadata-endpoint", "-o", output]
        with open(os.path.join(self.log_dir, "authorization.log"), "w") as log:
            subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=120, cwd=harness.HERE)
        paths = glob.glob(os.path.join(output, "*", "checks.json"))
        self.assertTrue(paths, "the runner wrote no results")
        checks = [check for path in paths for check in json.load(open(path))]
        failed = [(c["name"], c.get("errorMessage")) for c in checks if c["status"] == "FAILURE"]
        if os.environ.get("CONFORMANCE_TABLE"):
            print("\n".join(f"{c['status']:8} {c['name']}" for c in checks))
        self.assertTrue(any(c["status"] == "SUCCESS" for c in checks), checks)
        self.assertEqual(failed, [])


if __name__ == "__main__":
    unittest.main()
