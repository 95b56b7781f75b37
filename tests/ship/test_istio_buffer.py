"""envoy/istio/envoyfilter-buffer.yaml: Envoy's buffer filter between mcp-authn and the router.

With mcpAuthorization the filter decides from the body, and lets the headers continue so its
body callback runs; without a buffer below it, the router starts the upstream request on those
headers. The EnvoyFilter's patch, in Envoy after mcp-authn as Istio orders them, must keep a
denied call from reaching the MCP server at all.
"""

import copy
import http.client
import json
import os
import tempfile
import threading
import time
import unittest
import urllib.parse

import istio_xds
from ship import applied, harness, run
from istio_envoy import LoopbackServer, QuietHandler, start_envoy
from jwks_server import JWKS_PATH, JwksServer  # noqa: E402  (tests/e2e, on the path via ship)
from tokens import SigningKey, jwks, mint  # noqa: E402


class BufferEnvoyFilterTest(unittest.TestCase):
    """envoyfilter-buffer.yaml: Envoy's buffer filter between mcp-authn and the router."""

    @classmethod
    def setUpClass(cls):
        [cls.envoy_filter] = applied("envoyfilter-buffer.yaml")
        [cls.plugin] = applied("wasmplugin.yaml")
        [cls.patch] = cls.envoy_filter["spec"]["configPatches"]

    def test_inserted_before_the_router_of_the_plugins_inbound_traffic(self):
        self.assertEqual(self.patch["applyTo"], "HTTP_FILTER")
        self.assertEqual(self.patch["match"]["context"], "SIDECAR_INBOUND")
        chain = self.patch["match"]["listener"]["filterChain"]["filter"]
        self.assertEqual(chain["name"], "envoy.filters.network.http_connection_manager")
        # Anchored on the router, not on mcp-authn's filter name (which Istio 1.30 changed).
        self.assertEqual(chain["subFilter"]["name"], "envoy.filters.http.router")
        self.assertEqual(self.patch["patch"]["operation"], "INSERT_BEFORE")
        self.assertEqual(self.envoy_filter["spec"]["workloadSelector"]["labels"],
                         self.plugin["spec"]["selector"]["matchLabels"])
        self.assertEqual(self.envoy_filter["metadata"]["namespace"], self.plugin["metadata"]["namespace"])

    def test_holds_at_least_the_body_the_filter_accepts(self):
        value = self.patch["patch"]["value"]
        self.assertEqual(value["name"], "envoy.filters.http.buffer")
        limit = self.plugin["spec"]["pluginConfig"].get("mcpAuthorization", {}).get("maxRequestBodyBytes", 1048576)
        self.assertGreaterEqual(value["typed_config"]["max_request_bytes"], limit)

    def test_envoy_accepts_the_filter_chain_it_makes(self):
        """`envoy --mode validate` on mcp-authn, the patch's filter and the router, in that order."""
        bootstrap = harness.bootstrap(
            listener_port=harness.free_port(), admin_port=harness.free_port(), upstream_port=harness.free_port(),
            jwks_port=harness.free_port(),
            http_filters=[istio_xds.wasm_plugin(self.plugin, harness.WASM_PATH), self.patch["patch"]["value"]],
        )
        for broken in (False, True):
            if broken:  # control: a misspelt field in the patch is refused
                bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
                    "http_filters"][1]["typed_config"]["max_request_byte"] = 1
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(bootstrap, f)
            self.addCleanup(os.unlink, f.name)
            result = run([harness.envoy_binary(), "--mode", "validate", "-c", f.name], timeout=120)
            self.assertEqual(result.returncode != 0, broken, result.stdout[-2000:] + result.stderr[-2000:])


class HeadersSeenUpstream(LoopbackServer):
    """An upstream that counts every request whose headers reach it, body or not.

    A request the router starts and then resets (headers sent, body withheld) counts here,
    which a counter of complete requests would miss.
    """

    def __init__(self):
        self.headers_seen = 0
        self._lock = threading.Lock()
        upstream = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                with upstream._lock:
                    upstream.headers_seen += 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_json(200, b'{"jsonrpc":"2.0","id":7,"result":{"content":[]}}')

        super().__init__(Handler)

    def count(self):
        with self._lock:
            return self.headers_seen


class BufferedDenialTest(harness.KeepsLogsOnFailure, unittest.TestCase):
    """The EnvoyFilter's effect in Envoy: with mcpAuthorization, a denied tools/call opens no
    request at the MCP server; an allowed one reaches it. Filters as Istio orders them:
    mcp-authn (the WasmPlugin, Istio 1.30 shape), then the patch's buffer filter, then the router."""

    @classmethod
    def setUpClass(cls):
        cls.keep_logs_until_done()
        [plugin] = applied("wasmplugin.yaml")
        [envoy_filter] = applied("envoyfilter-buffer.yaml")
        [patch] = envoy_filter["spec"]["configPatches"]
        cls.key = SigningKey.rsa()
        cls.jwks_server = JwksServer(jwks(cls.key), harness.free_port()).start()
        cls.addClassCleanup(cls.jwks_server.stop)
        cls.upstream = HeadersSeenUpstream()
        cls.addClassCleanup(cls.upstream.stop)
        plugin = copy.deepcopy(plugin)
        cls.config = config = plugin["spec"]["pluginConfig"]
        # The IdP's cluster as plain HTTP to the test's JWKS server: TLS is test_istio_tls.py's job.
        config["jwks"]["url"] = f"https://{urllib.parse.urlparse(config['jwks']['url']).hostname}{JWKS_PATH}"
        config["mcpAuthorization"] = {"rules": ['mcp.tool.name == "echo"']}
        cls.envoy = start_envoy(
            upstream_port=cls.upstream.port,
            http_filters=[istio_xds.wasm_plugin(plugin, harness.WASM_PATH), patch["patch"]["value"]],
            log_dir=cls.log_dir, add_cleanup=cls.addClassCleanup,
            customize=lambda bootstrap: harness.add_cluster(bootstrap, config["jwks"]["cluster"], cls.jwks_server.port),
        )
        cls.setup_done()

    def call_tool(self, name):
        """POST a tools/call, its body sent a moment after its headers (as a slow client would):
        time enough for a router that started on the headers to reach the upstream."""
        token = mint(self.key, iss=self.config["issuer"], aud=self.config["audiences"][0])
        body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                           "params": {"name": name, "arguments": {}}}).encode()
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                   "mcp-protocol-version": "2025-06-18", "authorization": f"Bearer {token}",
                   "content-length": str(len(body))}
        conn = http.client.HTTPConnection("127.0.0.1", self.envoy.listener_port, timeout=15)
        try:
            conn.putrequest("POST", "/mcp", skip_accept_encoding=True)
            for header, value in headers.items():
                conn.putheader(header, value)
            conn.endheaders()
            time.sleep(0.3)
            conn.send(body)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def test_a_denied_call_opens_no_upstream_request(self):
        before = self.upstream.count()
        status, body = self.call_tool("delete_file")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["error"], {"code": -32602, "message": "Unknown tool: delete_file"})
        self.assertEqual(self.upstream.count(), before)

    def test_an_allowed_call_reaches_the_server(self):
        before = self.upstream.count()
        status, body = self.call_tool("echo")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.upstream.count(), before + 1)


if __name__ == "__main__":
    unittest.main()
