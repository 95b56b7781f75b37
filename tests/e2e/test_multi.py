"""Many MCP servers and many issuers behind one Envoy (issue 17), end to end.

One Keycloak with two realms (`mcp` and `mcp2`), one oidc-provider (tests/e2e/idp/server.mjs)
and one Envoy listener in front of the module's MCP upstream (mcp_server.py, with its witness):

  server "a"  /a/...  resource {origin}/a/mcp  trusts realm `mcp`            (cluster realm1)
  server "b"  /b/...  resource {origin}/b/mcp  trusts realm `mcp2`, then     (cluster realm2)
                                               oidc-provider                 (cluster oidc)
  anything else: `unmatched: reject` (404)

Envoy strips the `/a` and `/b` prefixes on the way to the upstream, which serves `/mcp`. Each
issuer has its own Envoy cluster, so a key fetch shows as that cluster's request count.
Tokens without a browser come from each realm's service client and oidc-provider's
client-credentials grant; the sign-ins are the real thing (test_signin.py's clients).

Classes:
  TwoServers         the documents, the sign-ins, tokens accepted where they belong and refused
                     everywhere else (the upstream sees nothing, no key is fetched for a stranger),
                     paths of no server (404) and paths that are not plain (400).
  OneIdpDown         its own Envoy and oidc-provider: the provider is stopped, realm-2 tokens keep
                     working, including the realm's first (cold) key fetch after the outage.
  RouteMetadata      `serverSelection: routeMetadata`: Envoy's route metadata picks the server.
"""

import json
import os
import shutil
import sys
import unittest
import urllib.parse

import harness
import keycloak as kc
import tokens
import witness
from test_idp import Idp
from test_signin import MCP2_PYTHON, TIMINGS, Layout

REALM2 = "mcp2"
# The listener's port is decided before Keycloak starts: its realms name the resources.
PORT = harness.free_port()
ORIGIN = f"http://127.0.0.1:{PORT}"
RESOURCE = {"a": f"{ORIGIN}/a/mcp", "b": f"{ORIGIN}/b/mcp"}
PRM_PATH = {name: f"/.well-known/oauth-protected-resource/{name}/mcp" for name in RESOURCE}
CLUSTERS = ("realm1", "realm2", "oidc")
INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e-multi", "version": "1"}}})

KEYCLOAK = None
UPSTREAM = None
MODULE_LOGS = None
KEEP_MODULE_LOGS = False


def setUpModule():
    global KEYCLOAK, UPSTREAM, MODULE_LOGS, KEEP_MODULE_LOGS
    MODULE_LOGS = harness.new_log_dir("multi-module")
    UPSTREAM, port = harness.start_mcp_server(MODULE_LOGS)
    UPSTREAM.port = port
    try:
        KEYCLOAK = kc.Keycloak(MODULE_LOGS, [RESOURCE["a"]], service_client=True, more_realms=[
            kc.realm([RESOURCE["b"]], name=REALM2, service_client=True)]).start()
    except BaseException:
        KEEP_MODULE_LOGS = True
        print(f"\nKeycloak did not start; logs in {MODULE_LOGS}", file=sys.stderr)
        UPSTREAM.stop()
        raise
    print(f"\n[multi] Keycloak {kc.VERSION} (two realms) ready in {KEYCLOAK.start_seconds:.1f} s", file=sys.stderr)


def tearDownModule():
    if KEYCLOAK is not None:
        KEYCLOAK.stop()
    if UPSTREAM is not None:
        UPSTREAM.stop()
    if MODULE_LOGS and not KEEP_MODULE_LOGS:
        shutil.rmtree(MODULE_LOGS, ignore_errors=True)
    # test_signin's list, which Layout.sign_in fills: print and take out this module's entries.
    for entry in [t for t in TIMINGS if t[1] == TwoServers.NAME]:
        TIMINGS.remove(entry)
        print(f"[multi] {entry[0]:36} {entry[2]:6.2f} s", file=sys.stderr)


def realm_issuer(name):
    return KEYCLOAK.issuer_of(name)


def keycloak_jwks(name, cluster):
    return {"url": f"{realm_issuer(name)}/protocol/openid-connect/certs", "cluster": cluster, "timeoutMs": 2000}


def plugin_config(resource, oidc_issuer):
    """Servers a and b as the module docstring lays them out (`resource`: name -> URL)."""
    return {
        "servers": [
            {
                "name": "a",
                "match": {"pathPrefix": "/a"},
                "issuer": realm_issuer(kc.REALM),
                "jwks": keycloak_jwks(kc.REALM, "realm1"),
                "resourceMetadata": {"resource": resource["a"], "scopesSupported": [kc.SCOPE]},
            },
            {
                "name": "b",
                "match": {"pathPrefix": "/b"},
                "issuers": [
                    {"issuer": realm_issuer(REALM2), "jwks": keycloak_jwks(REALM2, "realm2")},
                    {"issuer": oidc_issuer,
                     "jwks": {"url": f"{oidc_issuer}/.well-known/jwks.json", "cluster": "oidc", "timeoutMs": 2000}},
                ],
                "resourceMetadata": {"resource": resource["b"], "scopesSupported": [kc.SCOPE]},
            },
        ],
        "unmatched": "reject",
    }


def without_filter(route):
    """`route` with the Wasm filter off: the witness's fence must reach the upstream whatever
    the filter does with paths that match no server."""
    route["typed_per_filter_config"] = {"envoy.filters.http.wasm": {
        "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}
    return route


def server_routes():
    """/a/... and /b/... to the upstream's /..., the fence unfiltered, the rest to the upstream."""
    return [
        without_filter({"match": {"prefix": witness.FENCE_PREFIX}, "route": {"cluster": "mcp_server"}}),
        {"match": {"prefix": "/a/"}, "route": {"cluster": "mcp_server", "prefix_rewrite": "/", "timeout": "0s"}},
        {"match": {"prefix": "/b/"}, "route": {"cluster": "mcp_server", "prefix_rewrite": "/", "timeout": "0s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "mcp_server", "timeout": "0s"}},
    ]


def set_routes(config, routes):
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"] = routes


def start_envoy(cls, listener_port, plugin, idp_port, routes):
    """Envoy with `plugin` in front of the module's upstream, clusters realm1/realm2 -> Keycloak
    and oidc -> `idp_port`; sets cls.envoy (stopped by a class cleanup)."""
    admin_port = harness.free_port()
    config = harness.bootstrap(listener_port=listener_port, admin_port=admin_port, upstream_port=UPSTREAM.port,
                               jwks_port=KEYCLOAK.port, http_filters=[harness.wasm_filter(plugin)])
    harness.add_cluster(config, "realm1", KEYCLOAK.port)
    harness.add_cluster(config, "realm2", KEYCLOAK.port)
    harness.add_cluster(config, "oidc", idp_port)
    set_routes(config, routes)
    cls.envoy = harness.Envoy(config, listener_port=listener_port, admin_port=admin_port, log_dir=cls.log_dir)
    cls.addClassCleanup(cls.envoy.stop)
    cls.envoy.wait_ready()


class Gateway:
    """Requests through a class's Envoy, and what the upstream and the IdP clusters saw."""

    def post(self, path, token=None):
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return harness.http_request(self.envoy.listener_port, "POST", path, headers, INITIALIZE)

    def fetches(self):
        """Requests each IdP cluster has sent (key fetches: nothing else uses these clusters)."""
        stats = self.envoy.stats("^cluster\\.(realm1|realm2|oidc)\\.upstream_rq_total$")
        return {name: stats.get(f"cluster.{name}.upstream_rq_total", 0) for name in CLUSTERS}

    def upstream(self):
        return witness.RemoteWitness(UPSTREAM.port)

    def assert_accepted(self, path, token):
        """200 from the upstream's /mcp, which saw the request without the credential."""
        mark = self.upstream().count
        status, _, body = self.post(path, token)
        self.assertEqual(status, 200, body[:300])
        seen = witness.settled(self.upstream(), self.envoy.listener_port, mark)
        self.assertEqual([(r["method"], r["path"]) for r in seen], [("POST", "/mcp")])
        witness.assert_credential_gone(self, seen, token)

    def assert_refused(self, path, token, described):
        """401 invalid_token naming `described`, the challenge pointing at `path`'s server, and
        nothing reaching the upstream."""
        mark = self.upstream().count
        status, headers, body = self.post(path, token)
        self.assertEqual(status, 401, body[:300])
        challenge = headers["www-authenticate"]
        self.assertIn('error="invalid_token"', challenge)
        description = challenge.split('error_description="', 1)[1].split('"', 1)[0]
        self.assertIn(described, description.lower())
        server = path.split("/")[1]
        self.assertIn(f'resource_metadata="{self.origin}{PRM_PATH[server]}"', challenge)
        witness.assert_nothing_reached(self, self.upstream(), self.envoy.listener_port, mark)
        return description


class TwoServers(Gateway, Layout):
    """Servers a and b on one listener, with real sign-ins to each."""

    NAME = "multi"

    @classmethod
    def setUpClass(cls):
        cls.keep_logs_until_done()
        cls.idp = Idp(cls.log_dir, layout="standard", resources=list(RESOURCE.values()), rfc9207="on")
        cls.addClassCleanup(cls.idp.stop)
        cls.origin = ORIGIN
        start_envoy(cls, PORT, plugin_config(RESOURCE, cls.idp.issuer), cls.idp.port, server_routes())
        cls.artifacts = os.path.join(cls.log_dir, "artifacts")
        cls.setup_done()

    def failure_report(self):
        return f"{super().failure_report()}\nIdP log tail:\n{self.idp.process.log_tail(20)}"

    # -- what clients discover ---------------------------------------------------------------

    def test_each_server_has_its_own_protected_resource_metadata(self):
        expected = {"a": [realm_issuer(kc.REALM)], "b": [realm_issuer(REALM2), self.idp.issuer]}
        for name, servers in expected.items():
            with self.subTest(server=name):
                status, headers, body = harness.http_request(PORT, "GET", PRM_PATH[name])
                self.assertEqual(status, 200, body)
                self.assertEqual(headers.get("access-control-allow-origin"), "*")
                document = json.loads(body)
                self.assertEqual(document["resource"], RESOURCE[name])
                # In the configured order: clients pick the first.
                self.assertEqual(document["authorization_servers"], servers)
                self.assertEqual(document["scopes_supported"], [kc.SCOPE])

    def test_the_challenge_names_the_servers_own_metadata(self):
        for name in RESOURCE:
            with self.subTest(server=name):
                mark = self.upstream().count
                status, headers, _ = self.post(f"/{name}/mcp")
                self.assertEqual(status, 401)
                self.assertTrue(headers["www-authenticate"].startswith(
                    f'Bearer resource_metadata="{ORIGIN}{PRM_PATH[name]}"'), headers["www-authenticate"])
                witness.assert_nothing_reached(self, self.upstream(), PORT, mark)

    # -- sign-ins ----------------------------------------------------------------------------

    def sign_in_to(self, server, label, argv_of):
        self.resource = RESOURCE[server]
        out = self.sign_in(f"{label} -> {server}", argv_of())
        self.assertNotIn("error", out, out)
        realm = kc.REALM if server == "a" else REALM2
        issuer = realm_issuer(realm)
        # The first authorization-server metadata the client read (SDKs try several paths).
        metadata_url = next((h["url"] for h in out["hops"] if h["status"] == 200 and "/.well-known/" in h["url"]
                             and "protected-resource" not in h["url"]), "")
        self.assertTrue(metadata_url.startswith(KEYCLOAK.origin + "/"), out["hops"])
        self.assertIn(f"/realms/{realm}/", metadata_url + "/")
        self.assert_signed_in(out, issuer_recorded=issuer, token_issuer=issuer, metadata_url=metadata_url,
                              registration=f"{issuer}/clients-registrations/openid-connect")
        return out

    def test_mcp2_signs_in_to_a_at_realm_1(self):
        self.sign_in_to("a", "python mcp 2.3.0 (DCR)", lambda: self.python_client(MCP2_PYTHON))

    def test_mcp2_signs_in_to_b_at_realm_2_the_first_issuer(self):
        self.sign_in_to("b", "python mcp 2.3.0 (DCR)", lambda: self.python_client(MCP2_PYTHON))

    def test_typescript_sdk_signs_in_to_b(self):
        self.sign_in_to("b", "typescript sdk 1.32.2 (DCR)", self.ts_client)

    # -- tokens where they belong ------------------------------------------------------------

    def test_oidc_provider_token_is_accepted_at_b_only(self):
        token = self.idp.client_credentials_token(RESOURCE["b"])
        self.assert_accepted("/b/mcp", token)
        # Server a trusts realm 1 alone. A one-issuer server checks `iss` before choosing a key
        # (core/verify.rs): the token's `kid` is none of realm 1's, yet the refusal names the
        # issuer and costs realm 1 no refetch.
        before = self.fetches()
        self.assert_refused("/a/mcp", token, "issuer")
        self.assertEqual(self.fetches(), before)

    def test_realm_2_token_is_accepted_at_b(self):
        self.assert_accepted("/b/mcp", KEYCLOAK.service_token(REALM2))

    # -- cross-use ---------------------------------------------------------------------------

    def test_a_token_for_a_from_an_issuer_b_trusts_is_refused_at_b_by_audience(self):
        token = self.idp.client_credentials_token(RESOURCE["a"])
        self.assert_refused("/b/mcp", token, "audience")

    def test_a_realm_1_token_accepted_at_a_is_refused_at_b_without_a_key_fetch(self):
        token = KEYCLOAK.service_token(kc.REALM)
        self.assert_accepted("/a/mcp", token)  # verified, keys fetched, the token cached for a
        before = self.fetches()
        for _ in range(2):  # the second would be served from a verified-token cache, were it shared
            self.assert_refused("/b/mcp", token, "issuer")
        self.assertEqual(self.fetches(), before)
        self.assert_accepted("/a/mcp", token)

    def test_a_realm_1_token_never_seen_is_refused_at_b_without_a_key_fetch(self):
        # A token whose `kid` no cached key set holds: the issuer is refused before any key work.
        key = tokens.SigningKey.rsa()
        token = tokens.mint(key, iss=realm_issuer(kc.REALM), aud=RESOURCE["b"])
        before = self.fetches()
        self.assert_refused("/b/mcp", token, "issuer")
        self.assertEqual(self.fetches(), before)

    def test_a_path_of_no_server_is_rejected_with_404(self):
        token = KEYCLOAK.service_token(kc.REALM)
        for path in ("/c/mcp", "/ab/mcp", "/mcp", "/"):
            for credential in (None, token):
                with self.subTest(path=path, token=bool(credential)):
                    mark = self.upstream().count
                    status, headers, body = self.post(path, credential)
                    self.assertEqual(status, 404, body[:300])
                    self.assertIn("application/json", headers.get("content-type", ""))
                    self.assertIn("error", json.loads(body))
                    witness.assert_nothing_reached(self, self.upstream(), PORT, mark)

    def test_a_path_that_is_not_plain_selects_no_server(self):
        # The upstream could normalise it into another server's prefix: 400, whatever the token.
        token = KEYCLOAK.service_token(kc.REALM)
        for path in ("/a/../b/mcp", "/a/%2e%2e/b/mcp", "/a%2Fmcp", "/a//mcp", "/a;x/mcp"):
            with self.subTest(path=path):
                mark = self.upstream().count
                status, _, body = self.post(path, token)
                self.assertEqual(status, 400, body[:300])
                witness.assert_nothing_reached(self, self.upstream(), PORT, mark)


class OneIdpDown(Gateway, harness.KeepsLogsOnFailure, unittest.TestCase):
    """oidc-provider stopped: server b keeps taking realm-2 tokens, whose keys it fetches for
    the first time after the outage, and oidc-provider's tokens fail closed or use cached keys."""

    @classmethod
    def setUpClass(cls):
        cls.keep_logs_until_done()
        port = harness.free_port()
        cls.origin = f"http://127.0.0.1:{port}"
        # Realm 2 names PORT's resources; this Envoy keeps their URLs (its own port is only
        # where the tests connect), so realm-2 tokens are for it too.
        cls.idp = Idp(cls.log_dir, layout="standard", resources=list(RESOURCE.values()))
        cls.addClassCleanup(cls.idp.stop)
        start_envoy(cls, port, plugin_config(RESOURCE, cls.idp.issuer), cls.idp.port, server_routes())
        cls.setup_done()

    def assert_refused(self, path, token, described):
        # The challenge names the configured resource's origin (ORIGIN), not this listener's.
        origin, self.origin = self.origin, ORIGIN
        try:
            return super().assert_refused(path, token, described)
        finally:
            self.origin = origin

    def test_realm_2_keeps_working_while_oidc_provider_is_down(self):
        oidc_token = self.idp.client_credentials_token(RESOURCE["b"])
        realm2_tokens = [KEYCLOAK.service_token(REALM2) for _ in range(2)]
        self.assert_accepted("/b/mcp", oidc_token)
        self.assertEqual(self.fetches()["realm2"], 0, "realm 2's keys are fetched on its first token")

        self.idp.process.stop()
        harness.wait_until(lambda: not harness.port_open(self.idp.port), 10, what="oidc-provider to stop")

        # Realm 2's first token: its keys are fetched now, with oidc-provider gone.
        self.assert_accepted("/b/mcp", realm2_tokens[0])
        self.assertGreaterEqual(self.fetches()["realm2"], 1)
        # oidc-provider's keys are still cached: its token still verifies.
        self.assert_accepted("/b/mcp", oidc_token)
        # An oidc-provider token with a key it never published fails closed...
        stranger = tokens.mint(tokens.SigningKey.rsa(), iss=self.idp.issuer, aud=RESOURCE["b"])
        self.assert_refused("/b/mcp", stranger, "key")
        # ...and realm 2 is not held up by it, cached or not.
        self.assert_accepted("/b/mcp", realm2_tokens[1])
        self.assert_accepted("/b/mcp", realm2_tokens[0])
        # Server a's realm is untouched too.
        self.assert_accepted("/a/mcp", KEYCLOAK.service_token(kc.REALM))


class RouteMetadata(Gateway, harness.KeepsLogsOnFailure, unittest.TestCase):
    """`serverSelection: routeMetadata`: the route names the server (Envoy route metadata
    `filter_metadata.mcp_authn.server`); the filter does no matching of its own. Both servers
    trust one issuer (inline keys), so only the route tells a token's server."""

    @classmethod
    def setUpClass(cls):
        cls.keep_logs_until_done()
        port = harness.free_port()
        cls.origin = f"http://127.0.0.1:{port}"
        cls.key = tokens.SigningKey.rsa()
        cls.issuer = "https://issuer.route-metadata.example"
        cls.resources = {name: f"{cls.origin}/{name}/mcp" for name in ("a", "b")}
        plugin = {
            "servers": [{"name": name, "issuer": cls.issuer, "jwks": {"inline": tokens.jwks(cls.key)},
                         "resourceMetadata": {"resource": resource}} for name, resource in cls.resources.items()],
            "serverSelection": "routeMetadata",
        }

        def named(prefix, server):
            route = {"match": {"prefix": prefix},
                     "route": {"cluster": "mcp_server", "prefix_rewrite": "/", "timeout": "0s"}}
            if server:
                route["metadata"] = {"filter_metadata": {"mcp_authn": {"server": server}}}
            return route

        routes = [
            without_filter({"match": {"prefix": witness.FENCE_PREFIX}, "route": {"cluster": "mcp_server"}}),
            named("/a/", "a"), named("/b/", "b"), named("/unknown/", "c"), named("/", None),
        ]
        start_envoy(cls, port, plugin, KEYCLOAK.port, routes)
        cls.setup_done()

    def token(self, server):
        return tokens.mint(self.key, iss=self.issuer, aud=self.resources[server])

    def test_the_route_picks_the_server(self):
        self.assert_accepted("/a/mcp", self.token("a"))
        self.assert_accepted("/b/mcp", self.token("b"))
        # The same issuer, the other route's server: its audience.
        self.assert_refused("/b/mcp", self.token("a"), "audience")
        self.assert_refused("/a/mcp", self.token("b"), "audience")

    def test_a_route_naming_no_server_fails_closed(self):
        for path in ("/unknown/mcp", "/mcp"):
            with self.subTest(path=path):
                mark = self.upstream().count
                status, _, body = self.post(path, self.token("a"))
                self.assertEqual(status, 500, body[:300])
                witness.assert_nothing_reached(self, self.upstream(), self.envoy.listener_port, mark)


if __name__ == "__main__":
    unittest.main()
