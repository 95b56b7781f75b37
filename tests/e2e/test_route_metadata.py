"""`serverSelection: routeMetadata` in a real Envoy: the filter reads its route's
`filter_metadata.mcp_authn.server` through the property path
["xds", "route_metadata", "filter_metadata", "mcp_authn", "server"] and decides with that
server; a route that names no configured server is a 500, never a pass. The routes answer
with direct responses, so a body naming the route is proof the request was forwarded.
"""

import json
import unittest

import harness
import tokens

KEY = tokens.SigningKey.rsa()


def route(prefix, server=None):
    entry = {
        "match": {"prefix": prefix},
        "direct_response": {"status": 200, "body": {"inline_string": f"forwarded {prefix}"}},
    }
    if server is not None:
        entry["metadata"] = {"filter_metadata": {"mcp_authn": {"server": server}}}
    return entry


class RouteMetadataTest(harness.KeepsLogsOnFailure, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keep_logs_until_done()
        listener_port, admin_port = harness.free_port(), harness.free_port()
        origin = f"http://127.0.0.1:{listener_port}"
        cls.issuer = "https://idp.example.com"
        cls.files = f"{origin}/files/mcp"
        cls.search = f"{origin}/search/mcp"
        server = lambda name, resource: {  # noqa: E731
            "name": name,
            "issuer": cls.issuer,
            "jwks": {"inline": tokens.jwks(KEY)},
            "resourceMetadata": {"resource": resource},
        }
        plugin = {
            "servers": [server("files", cls.files), server("search", cls.search)],
            "serverSelection": "routeMetadata",
        }
        config = harness.bootstrap(
            listener_port=listener_port,
            admin_port=admin_port,
            upstream_port=harness.free_port(),
            jwks_port=harness.free_port(),
            http_filters=[harness.wasm_filter(plugin)],
        )
        config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "route_config"
        ]["virtual_hosts"][0]["routes"] = [
            route("/.well-known/oauth-protected-resource/files", "files"),
            route("/files", "files"),
            route("/search", "search"),
            route("/unknown", "nope"),
            route("/"),
        ]
        cls.envoy = harness.Envoy(config, listener_port=listener_port, admin_port=admin_port,
                                  log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready()
        cls.setup_done()

    def post(self, path, token=None):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return harness.http_request(self.envoy.listener_port, "POST", path, headers, "{}")

    def test_the_route_names_the_server_that_decides(self):
        for_files = tokens.mint(KEY, iss=self.issuer, aud=self.files)
        status, _, body = self.post("/files/mcp", for_files)
        self.assertEqual((status, body), (200, b"forwarded /files"))
        # The same token on the route that names the other server: its audience is refused.
        status, headers, body = self.post("/search/mcp", for_files)
        self.assertEqual(status, 401, body)
        self.assertIn('error_description="audience mismatch"', headers["www-authenticate"])
        # Each server's challenge points to its own document.
        status, headers, _ = self.post("/search/mcp")
        self.assertEqual(status, 401)
        self.assertIn(f'resource_metadata="http://127.0.0.1:{self.envoy.listener_port}'
                      '/.well-known/oauth-protected-resource/search/mcp"',
                      headers["www-authenticate"])
        status, _, body = harness.http_request(
            self.envoy.listener_port, "GET", "/.well-known/oauth-protected-resource/files/mcp")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["resource"], self.files)

    def test_a_route_without_a_configured_server_fails_closed(self):
        token = tokens.mint(KEY, iss=self.issuer, aud=self.files)
        before = self.envoy.counter("mcp_authn.unmatched")
        for path in ["/unknown/mcp", "/other/mcp"]:
            status, _, body = self.post(path, token)
            self.assertEqual(status, 500, path)
            self.assertEqual(json.loads(body)["error"], "server_error", path)
        self.assertEqual(self.envoy.counter("mcp_authn.unmatched"), before + 2)
        def logged():
            with open(self.envoy.process.log_path) as log:
                return "names no configured server" in log.read()

        harness.wait_until(logged, 10, what="the warning in Envoy's log")


if __name__ == "__main__":
    unittest.main()
