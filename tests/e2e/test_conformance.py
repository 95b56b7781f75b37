"""The official MCP conformance suite (@modelcontextprotocol/conformance 0.2.0-alpha.12), run
against conformance_server.py (mcp==2.3.0) directly and through the gateway in strict mode,
for the 2026-07-28 and 2025-11-25 requirement sets. The runner cannot send a token, so a Node
preload (conformance_token.cjs) adds one to each of its requests.

The gateway must be transparent: no scenario that passes directly may fail through it. The
per-scenario table is written to the log directory (and printed with CONFORMANCE_TABLE=1);
docs/conformance.md holds the one from the last full run.
"""

import glob
import json
import os
import re
import subprocess
import unittest

import harness
import tokens

KEY = tokens.SigningKey.rsa()
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MCP2_PYTHON = os.path.join(ROOT, ".venv-mcp2", "bin", "python")
SUITE = os.path.join(
    ROOT, ".deps", "node-peers", "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"
)
REVISIONS = ("2026-07-28", "2025-11-25")


def node_binary():
    out = subprocess.run(
        [os.path.join(ROOT, "scripts", "setup-idp.sh"), "--print-path"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def scenario_results(output_dir):
    """{scenario: {(check id, check name): status}} from the runner's checks.json files."""
    results = {}
    for path in glob.glob(os.path.join(output_dir, "server-*", "checks.json")):
        folder = os.path.basename(os.path.dirname(path))
        name = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", folder[len("server-"):])
        with open(path) as f:
            checks = json.load(f)
        statuses = {}
        for check in checks:
            key = (check["id"], check["name"])
            # A check repeated in one scenario counts as passed only if every instance passed.
            if statuses.get(key) != "FAILURE":
                statuses[key] = check["status"]
        results[name] = statuses
    return results


def counts(statuses):
    values = list(statuses.values())
    return values.count("SUCCESS"), values.count("FAILURE")


class ConformanceTest(harness.KeepsLogsOnFailure, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(harness.WASM_PATH):
            raise RuntimeError(f"{harness.WASM_PATH} is missing: build it with scripts/build.sh")
        cls.keep_logs_until_done()
        cls.node = node_binary()
        port = harness.free_port()
        cls.direct_url = f"http://127.0.0.1:{port}/mcp"
        argv = [MCP2_PYTHON, os.path.join(HERE, "conformance_server.py"), str(port)]
        cls.server = harness.start_server("conformance_server", argv, port, cls.log_dir)
        cls.addClassCleanup(cls.server.stop)
        # Active authorization, so every POST goes through the header and body checks and
        # every list through the filter; the rule allows everything.
        plugin = {"mode": "strict", "mcpAuthorization": {"rules": ["true"]}}
        harness.start_gateway(cls, tokens.jwks(KEY), port, plugin)
        cls.gateway_url = cls.envoy.url("/mcp")
        cls.token = tokens.mint(KEY, iss=cls.issuer, aud=cls.resource, lifetime=3600, extra={"sub": "conformance"})
        cls.setup_done()

    def run_suite(self, url, revision, label, token=None):
        output = os.path.join(self.log_dir, f"{label}-{revision}")
        argv = [self.node]
        env = dict(os.environ)
        if token:
            argv += ["--require", os.path.join(HERE, "conformance_token.cjs")]
            env["CONFORMANCE_TOKEN"] = token
            env["CONFORMANCE_NODE_PEERS"] = os.path.join(ROOT, ".deps", "node-peers")
        argv += [SUITE, "server", "--url", url, "--requirements", revision, "--timeout", "15000", "-o", output]
        with open(os.path.join(self.log_dir, f"{label}-{revision}.log"), "w") as log:
            subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=300, cwd=HERE)
        results = scenario_results(output)
        self.assertTrue(results, f"no results from the {label} run of {revision}")
        return results

    def test_no_scenario_that_passes_directly_fails_through_the_gateway(self):
        rows = []
        for revision in REVISIONS:
            direct = self.run_suite(self.direct_url, revision, "direct")
            gateway = self.run_suite(self.gateway_url, revision, "gateway", token=self.token)
            for scenario in sorted(direct):
                d, g = direct[scenario], gateway.get(scenario, {})
                rows.append((revision, scenario, counts(d), counts(g)))
                for check, status in d.items():
                    if status == "SUCCESS":
                        with self.subTest(revision=revision, scenario=scenario, check=check):
                            self.assertEqual(g.get(check), "SUCCESS", "passes directly, not through the gateway")
            # The scenarios this repository's 2026-07-28 work touches must pass in both.
            if revision == "2026-07-28":
                for scenario in ("caching", "http-header-validation", "http-custom-header-server-validation"):
                    with self.subTest(scenario=scenario):
                        self.assertEqual(counts(direct[scenario])[1], 0, direct[scenario])
                        self.assertEqual(counts(gateway[scenario])[1], 0, gateway[scenario])
        table = ["| revision | scenario | direct (passed/failed) | gateway (passed/failed) |", "|---|---|---|---|"]
        table += [f"| {r} | {s} | {d[0]}/{d[1]} | {g[0]}/{g[1]} |" for r, s, d, g in rows]
        with open(os.path.join(self.log_dir, "conformance-table.md"), "w") as f:
            f.write("\n".join(table) + "\n")
        if os.environ.get("CONFORMANCE_TABLE"):
            print("\n".join(table))


if __name__ == "__main__":
    unittest.main()
