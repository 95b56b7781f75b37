"""End-to-end tests of fronting a real OpenID provider (issue 4, spec section 6).

The provider is panva's `oidc-provider` (tests/e2e/idp/server.mjs, installed by
scripts/setup-idp.sh), in two layouts: `standard` (RFC 8414 + OpenID discovery at the
root, JWKS at /.well-known/jwks.json) and `keycloak` (a realm under /realms/mcp with
Keycloak's endpoint paths and no RFC 8414 document). Envoy reaches it through a
cluster named `idp`; the MCP upstream is mcp_server.py.

Each class runs its own IdP and Envoy, so the IdP's request log and Envoy's counters
belong to that class alone and every hop can be asserted, not only the final result.
"""

import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.parse

import anyio
import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

import harness

SERVER_MJS = os.path.join(harness.HERE, "idp", "server.mjs")
SCOPE = "mcp:tools"
JWKS_TIMEOUT_MS = 1000


def node_binary():
    """The pinned Node.js that runs the provider (scripts/setup-idp.sh installs it)."""
    if os.environ.get("IDP_NODE"):
        return os.environ["IDP_NODE"]
    script = os.path.join(harness.ROOT, "scripts", "setup-idp.sh")
    done = subprocess.run([script, "--print-path"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"the test IdP is not installed: run scripts/setup-idp.sh ({done.stderr.strip()})")
    return done.stdout.strip()


class Idp:
    """oidc-provider on a free 127.0.0.1 port, logging one JSON line per request."""

    def __init__(self, log_dir, *, layout, resources, authorization_query=None, jwks_path=None, name="idp",
                 rfc9207="off", cimd=False, env=None):
        # rfc9207 "off" by default: a fronted provider that sends `iss` is refused without a
        # passage (docs/identity-providers.md), and most fronting tests run no login, so they play a
        # provider without it. The sign-in tests and the passage test turn it on.
        self.port = harness.free_port()
        self.layout = layout
        self.jwks_path = jwks_path
        self.origin = f"http://127.0.0.1:{self.port}"
        self.issuer = self.origin + ("/realms/mcp" if layout == "keycloak" else "")
        argv = [node_binary(), SERVER_MJS, "--port", str(self.port), "--layout", layout, "--scope", SCOPE]
        for resource in resources:
            argv += ["--resource", resource]
        if authorization_query:
            argv += ["--authorization-query", authorization_query]
        if jwks_path:
            argv += ["--jwks-path", jwks_path]
        argv += ["--rfc9207", rfc9207]
        if cimd:
            argv += ["--cimd", "on"]
        self.process = harness.Process(name, argv, log_dir, env=env)
        try:
            harness.wait_until(
                lambda: self.listening() or not self.process.alive(), 20, what="the IdP to listen"
            )
            if not self.process.alive():
                raise RuntimeError(f"the IdP exited:\n{self.process.log_tail()}")
        except BaseException:
            self.process.stop()
            raise

    def listening(self):
        return any("listening" in line for line in self._lines())

    def _lines(self):
        with open(self.process.log_path, "rb") as f:
            for raw in f.read().splitlines():
                try:
                    yield json.loads(raw)
                except ValueError:
                    continue

    def requests(self):
        """[(method, path, status)] the provider answered, in order."""
        return [(e["method"], e["path"], e["status"]) for e in self._lines() if "method" in e]

    def path(self, endpoint):
        """The provider's own path of `endpoint` in this layout."""
        keycloak = {
            "discovery": "/realms/mcp/.well-known/openid-configuration",
            "token": "/realms/mcp/protocol/openid-connect/token",
            "jwks": "/realms/mcp/protocol/openid-connect/certs",
            "registration": "/realms/mcp/clients-registrations/openid-connect",
        }
        standard = {
            "rfc8414": "/.well-known/oauth-authorization-server",
            "discovery": "/.well-known/openid-configuration",
            "token": "/token",
            "jwks": self.jwks_path or "/.well-known/jwks.json",
            "registration": "/register",
        }
        return (keycloak if self.layout == "keycloak" else standard)[endpoint]

    def get_json(self, endpoint):
        status, _, body = harness.http_request(self.port, "GET", self.path(endpoint))
        if status != 200:
            raise AssertionError(f"IdP {endpoint}: {status} {body[:200]!r}")
        return json.loads(body)

    def client_credentials_token(self, resource):
        """Register a client directly at the IdP and get a token for `resource` (no gateway)."""
        status, _, body = harness.http_request(
            self.port,
            "POST",
            self.path("registration"),
            {"content-type": "application/json"},
            json.dumps({"grant_types": ["client_credentials"], "response_types": [], "scope": SCOPE}),
        )
        if status != 201:
            raise AssertionError(f"IdP registration: {status} {body[:300]!r}")
        client = json.loads(body)
        response = httpx.post(
            self.origin + self.path("token"),
            data={"grant_type": "client_credentials", "resource": resource, "scope": SCOPE},
            auth=(client["client_id"], client["client_secret"]),
            timeout=10,
        )
        if response.status_code != 200:
            raise AssertionError(f"IdP token: {response.status_code} {response.text[:300]}")
        return response.json()["access_token"]

    def stop(self):
        self.process.stop()


# -- a real MCP client that logs in with the client-credentials grant ---------------------


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client_info = client_info


class RegisteringClientCredentials(OAuthClientProvider):
    """The SDK's OAuth flow (401 -> RFC 9728 -> RFC 8414 -> RFC 7591 registration), ending in a
    client-credentials token request instead of a browser login.

    The SDK's own ClientCredentialsOAuthProvider skips registration (fixed credentials), so
    the discovery, metadata and registration steps here are the SDK's unchanged; only step 5
    (`_perform_authorization`) is the grant. The client registers a loopback redirect URI:
    oidc-provider answers a registration without one with `"redirect_uris": []`, which the
    SDK's OAuthClientInformationFull refuses (min_length=1).
    """

    def __init__(self, server_url):
        metadata = OAuthClientMetadata(
            redirect_uris=["http://127.0.0.1:9/callback"],
            grant_types=["client_credentials"],
            response_types=[],
            token_endpoint_auth_method="client_secret_basic",
            client_name="mcp-authn-e2e",
        )
        super().__init__(server_url, metadata, MemoryStorage())

    async def _perform_authorization(self) -> httpx.Request:
        data = {"grant_type": "client_credentials"}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        data, headers = self.context.prepare_token_auth(data, headers)
        if self.context.should_include_resource_param(self.context.protocol_version):
            data["resource"] = self.context.get_resource_url()
        if self.context.client_metadata.scope:
            data["scope"] = self.context.client_metadata.scope
        return httpx.Request("POST", self._get_token_endpoint(), data=data, headers=headers)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Records every request the client sends and the status it got back."""

    def __init__(self):
        self.inner = httpx.AsyncHTTPTransport()
        self.hops = []

    async def handle_async_request(self, request):
        response = await self.inner.handle_async_request(request)
        self.hops.append((request.method, str(request.url), response.status_code))
        return response

    async def aclose(self):
        await self.inner.aclose()


def oauth_roundtrip(url, timeout=45):
    """Start from the MCP URL alone: log in through discovery, then call a tool.

    Returns (result, hops, provider) with hops [(method, url, status)] in order.
    """
    transport = RecordingTransport()
    provider = RegisteringClientCredentials(url)

    async def run():
        async with httpx.AsyncClient(
            auth=provider, transport=transport, timeout=httpx.Timeout(10, read=30)
        ) as http:
            async with streamable_http_client(url, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    call = await session.call_tool("echo", {"text": "through the IdP"})
        return {"server_name": init.serverInfo.name, "echo": call.content[0].text, "error": call.isError}

    async def bounded():
        with anyio.fail_after(timeout):
            return await run()

    return anyio.run(bounded), transport.hops, provider


def buffer_registration(config):
    """Envoy's buffer filter after the Wasm filter, enabled on the registration route only
    (docs/identity-providers.md): the filter lets a registration's headers continue so that its body
    callback runs, and the buffer filter then holds them until the whole body is in, so the
    router never sends a registration to the MCP upstream before the filter has answered."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    filters.insert(
        len(filters) - 1,  # just before the router
        {
            "name": "envoy.filters.http.buffer",
            "disabled": True,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": 65536,
            },
        },
    )
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    upstream = routes[-1]["route"]
    routes.insert(
        0,
        {
            "match": {"prefix": "/.well-known/oauth-authorization-server/"},
            "route": dict(upstream),
            "typed_per_filter_config": {
                "envoy.filters.http.buffer": {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                    "config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
                        "buffer": {"max_request_bytes": 65536},
                    },
                }
            },
        },
    )
    return config


# -- the test cases ----------------------------------------------------------------------


class IdpCase(harness.KeepsLogsOnFailure, unittest.TestCase):
    """One IdP, one MCP upstream and one Envoy (cluster `idp` -> the IdP) per class."""

    LAYOUT = "standard"
    AUTHORIZATION_QUERY = None
    JWKS_PATH = None
    # A fronted provider that sends RFC 9207 `iss` is refused without a passage (test_signin),
    # so these classes play one that does not, unless they run the login through a passage.
    RFC9207 = "off"

    @classmethod
    def provider(cls):
        raise NotImplementedError

    @classmethod
    def plugin_config(cls):
        return {
            "issuer": cls.idp.issuer,
            # No url: derived from the issuer and provider.
            "jwks": {"cluster": "idp", "timeoutMs": JWKS_TIMEOUT_MS},
            "provider": cls.provider(),
            "resourceMetadata": {"resource": cls.resource, "scopesSupported": [SCOPE]},
        }

    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(harness.WASM_PATH):
            raise RuntimeError(f"{harness.WASM_PATH} is missing: build it with scripts/build.sh")
        cls.keep_logs_until_done()
        started = time.monotonic()
        cls.upstream, cls.upstream_port = harness.start_mcp_server(cls.log_dir)
        cls.addClassCleanup(cls.upstream.stop)
        listener_port, admin_port = harness.free_port(), harness.free_port()
        cls.origin = f"http://127.0.0.1:{listener_port}"
        cls.resource = f"{cls.origin}/mcp"
        cls.idp = Idp(
            cls.log_dir,
            layout=cls.LAYOUT,
            resources=[cls.resource],
            authorization_query=cls.AUTHORIZATION_QUERY,
            jwks_path=cls.JWKS_PATH,
            rfc9207=cls.RFC9207,
        )
        cls.addClassCleanup(cls.idp.stop)
        config = harness.bootstrap(
            listener_port=listener_port,
            admin_port=admin_port,
            upstream_port=cls.upstream_port,
            jwks_port=cls.idp.port,
            http_filters=[harness.wasm_filter(cls.plugin_config())],
        )
        harness.add_cluster(config, "idp", cls.idp.port)
        buffer_registration(config)
        cls.adjust_bootstrap(config)
        cls.envoy = harness.Envoy(config, listener_port=listener_port, admin_port=admin_port, log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready()
        cls.startup_seconds = time.monotonic() - started
        cls.setup_done()

    @classmethod
    def adjust_bootstrap(cls, config):
        """Hook for a class that needs more Envoy routes."""

    def failure_report(self):
        return (f"Envoy log tail:\n{self.envoy.process.log_tail(40)}\n"
                f"IdP log tail:\n{self.idp.process.log_tail(40)}")

    # -- helpers -----------------------------------------------------------------------

    def gateway(self, method, path, headers=None, body=None, timeout=10):
        return harness.http_request(self.envoy.listener_port, method, path, headers, body, timeout=timeout)

    def gateway_json(self, path):
        status, headers, body = self.gateway("GET", path)
        self.assertEqual(status, 200, body[:300])
        self.assertIn("application/json", headers.get("content-type", ""))
        return json.loads(body)

    def as_metadata(self):
        return self.gateway_json("/.well-known/oauth-authorization-server/mcp")

    def register(self, document, path="/.well-known/oauth-authorization-server/mcp/client-registration"):
        status, headers, body = self.gateway(
            "POST", path, {"content-type": "application/json"}, json.dumps(document)
        )
        return status, headers, json.loads(body) if body else None

    def post_initialize(self, token, extra_headers=None):
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        headers.update(extra_headers or {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "e2e-idp", "version": "0"},
                },
            }
        )
        return self.gateway("POST", "/mcp", headers, body)

    def idp_cluster(self, stat):
        hits = self.envoy.stats(f"^cluster\\.idp\\.{stat}$")
        return next(iter(hits.values()), 0)

    def assert_gateway_serves_idp_keys(self, path="/.well-known/jwks.json"):
        status, headers, body = self.gateway("GET", path)
        self.assertEqual(status, 200, body[:300])
        self.assertIn("jwk-set+json", headers.get("content-type", ""))
        served = json.loads(body)["keys"]
        published = self.idp.get_json("jwks")["keys"]
        self.assertEqual({k["kid"] for k in served}, {k["kid"] for k in published})
        by_kid = {k["kid"]: k for k in served}
        for key in published:
            self.assertEqual((by_kid[key["kid"]]["n"], by_kid[key["kid"]]["e"]), (key["n"], key["e"]))
        for key in served:
            self.assertFalse({"d", "p", "q", "dp", "dq", "qi"} & key.keys(), "private members leaked")

    def assert_prm_names_gateway(self):
        prm = self.gateway_json("/.well-known/oauth-protected-resource/mcp")
        self.assertEqual(prm["resource"], self.resource)
        self.assertEqual(prm["authorization_servers"], [self.resource])


class KeycloakLayoutTest(IdpCase):
    """provider keycloak in front of a Keycloak-shaped realm: discovery, DCR through the gateway,
    derived JWKS (`{issuer}/protocol/openid-connect/certs`), a real MCP client end to end."""

    LAYOUT = "keycloak"

    @classmethod
    def provider(cls):
        return {"keycloak": {"cluster": "idp"}}

    def test_1_idp_has_no_rfc8414_document(self):
        # The premise of fronting Keycloak: a client can't discover it with RFC 8414 alone.
        for path in ("/.well-known/oauth-authorization-server/realms/mcp", "/.well-known/oauth-authorization-server"):
            status, _, _ = harness.http_request(self.idp.port, "GET", path)
            self.assertEqual(status, 404, path)
        self.assertEqual(self.idp.get_json("discovery")["issuer"], self.idp.issuer)

    def test_2_metadata_names_the_gateway(self):
        self.assert_prm_names_gateway()
        doc = self.as_metadata()
        self.assertEqual(doc["issuer"], self.resource)
        self.assertEqual(
            doc["registration_endpoint"],
            f"{self.origin}/.well-known/oauth-authorization-server/mcp/client-registration",
        )
        # The rest is the IdP's own document.
        upstream = self.idp.get_json("discovery")
        self.assertEqual(doc["token_endpoint"], upstream["token_endpoint"])
        self.assertEqual(doc["jwks_uri"], upstream["jwks_uri"])
        self.assertEqual(doc["authorization_endpoint"], upstream["authorization_endpoint"])
        # The OpenID-discovery spelling of the path gets the same document.
        self.assertEqual(self.gateway_json("/.well-known/openid-configuration/mcp"), doc)
        self.assertIn(("GET", self.idp.path("discovery"), 200), self.idp.requests())

    def test_3_registration_through_the_gateway_is_the_idps(self):
        before = len(self.idp.requests())
        status, headers, client = self.register(
            {
                "redirect_uris": ["http://127.0.0.1:9/callback"],
                "grant_types": ["client_credentials"],
                "response_types": [],
                "client_name": "gateway-dcr",
                "scope": SCOPE,
            }
        )
        self.assertEqual(status, 201, client)
        self.assertEqual(headers.get("cache-control"), "no-store")
        self.assertTrue(client["client_id"] and client["client_secret"])
        self.assertEqual(client["client_name"], "gateway-dcr")
        # The IdP itself created it (its registration_client_uri names the realm path).
        self.assertTrue(
            client["registration_client_uri"].endswith(f"{self.idp.path('registration')}/{client['client_id']}")
        )
        self.assertIn(("POST", self.idp.path("registration"), 201), self.idp.requests()[before:])
        # The IdP's refusal is passed through with its status.
        status, _, error = self.register({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "nope"})
        self.assertEqual(status, 400, error)
        self.assertEqual(error["error"], "invalid_client_metadata")
        # Only POST registers.
        status, _, _ = self.gateway("GET", "/.well-known/oauth-authorization-server/mcp/client-registration")
        self.assertEqual(status, 405)

    def test_4_real_mcp_client_logs_in_through_the_gateway(self):
        started = time.monotonic()
        idp_before = len(self.idp.requests())
        allowed_before = self.envoy.counter("mcp_authn.allowed")
        result, hops, provider = oauth_roundtrip(self.resource)
        elapsed = time.monotonic() - started
        self.assertFalse(result["error"])
        self.assertEqual(result["echo"], "through the IdP")
        self.assertEqual(result["server_name"], "e2e-upstream")

        gw = self.origin
        token_url = self.idp.origin + self.idp.path("token")
        expected = [
            ("POST", f"{gw}/mcp", 401),
            ("GET", f"{gw}/.well-known/oauth-protected-resource/mcp", 200),
            ("GET", f"{gw}/.well-known/oauth-authorization-server/mcp", 200),
            ("POST", f"{gw}/.well-known/oauth-authorization-server/mcp/client-registration", 201),
            ("POST", token_url, 200),
            ("POST", f"{gw}/mcp", 200),
        ]
        self.assertEqual(hops[: len(expected)], expected, hops)
        # After login, every request goes to the gateway and succeeds.
        for method, url, status in hops[len(expected):]:
            self.assertTrue(url.startswith(gw + "/mcp") and status < 300, (method, url, status))

        # The client bound itself to the gateway's issuer and got a JWT for the resource.
        context = provider.context
        self.assertEqual(str(context.oauth_metadata.issuer), self.resource)
        self.assertEqual(context.client_info.issuer, self.resource)
        token = context.current_tokens.access_token
        claims = json.loads(_b64(token.split(".")[1]))
        self.assertEqual((claims["iss"], claims["aud"]), (self.idp.issuer, self.resource))

        # The IdP saw the gateway's registration and the client's token request, and the
        # gateway fetched its keys from the derived Keycloak cert path.
        idp_hops = self.idp.requests()[idp_before:]
        self.assertIn(("POST", self.idp.path("registration"), 201), idp_hops)
        self.assertIn(("POST", self.idp.path("token"), 200), idp_hops)
        self.assertIn(("GET", self.idp.path("jwks"), 200), self.idp.requests())
        self.assertGreater(self.envoy.counter("mcp_authn.allowed"), allowed_before)
        self.assertGreaterEqual(self.idp_cluster("upstream_rq_completed"), 2)
        print(f"\n[timing] Keycloak-layout MCP login + tool call: {elapsed:.2f}s", file=sys.stderr)

    def test_5_gateway_serves_idp_keys(self):
        # Needs keys cached: a token from the IdP makes the gateway fetch them.
        status, _, body = self.post_initialize(self.idp.client_credentials_token(self.resource))
        self.assertEqual(status, 200, body[:300])
        self.assert_gateway_serves_idp_keys()
        # ...also at the realm's cert path on the gateway.
        self.assert_gateway_serves_idp_keys(self.idp.path("jwks"))

    def test_6_wrong_audience_token_from_the_idp_is_refused(self):
        other = Idp(self.log_dir, layout="keycloak", resources=["http://127.0.0.1:1/other"], name="idp-other")
        try:
            token = other.client_credentials_token("http://127.0.0.1:1/other")
        finally:
            other.stop()
        status, headers, _ = self.post_initialize(token)
        self.assertEqual(status, 401)
        self.assertIn('error="invalid_token"', headers.get("www-authenticate", ""))


def route_passage_to_idp(config):
    """The route the filter's passage needs (docs/identity-providers.md): requests it marked with
    `x-mcp-authn-route: idp` (after rewriting `:path`) go to the `idp` cluster."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"].insert(
        0,
        {
            "match": {
                "prefix": "/",
                "headers": [{"name": "x-mcp-authn-route", "string_match": {"exact": "idp"}}],
            },
            "route": {"cluster": "idp", "timeout": "10s"},
        },
    )


class KeycloakPassageTest(IdpCase):
    """`gatewayPrefix`: the client reaches only the gateway. The Keycloak realm is exposed at
    /idp/realms/mcp/..., the metadata's endpoints point there, and the filter rewrites `:path`
    and marks the request for the route to the IdP cluster."""

    LAYOUT = "keycloak"
    RFC9207 = "on"

    @classmethod
    def provider(cls):
        return {"keycloak": {"cluster": "idp", "gatewayPrefix": "/idp"}}

    @classmethod
    def adjust_bootstrap(cls, config):
        route_passage_to_idp(config)

    def test_metadata_endpoints_point_into_the_passage(self):
        doc = self.as_metadata()
        base = f"{self.origin}/idp/realms/mcp/protocol/openid-connect"
        self.assertEqual(doc["token_endpoint"], f"{base}/token")
        self.assertEqual(doc["authorization_endpoint"], f"{base}/auth")
        self.assertEqual(doc["jwks_uri"], f"{base}/certs")
        self.assertEqual(
            doc["registration_endpoint"],
            f"{self.origin}/.well-known/oauth-authorization-server/mcp/client-registration",
        )

    def test_real_mcp_client_never_leaves_the_gateway(self):
        idp_before = len(self.idp.requests())
        result, hops, _ = oauth_roundtrip(self.resource)
        self.assertEqual(result["echo"], "through the IdP")
        gw = self.origin
        expected = [
            ("POST", f"{gw}/mcp", 401),
            ("GET", f"{gw}/.well-known/oauth-protected-resource/mcp", 200),
            ("GET", f"{gw}/.well-known/oauth-authorization-server/mcp", 200),
            ("POST", f"{gw}/.well-known/oauth-authorization-server/mcp/client-registration", 201),
            ("POST", f"{gw}/idp/realms/mcp/protocol/openid-connect/token", 200),
            ("POST", f"{gw}/mcp", 200),
        ]
        self.assertEqual(hops[: len(expected)], expected, hops)
        self.assertTrue(all(url.startswith(gw + "/") for _, url, _ in hops), hops)
        # The IdP got the token request on its own path.
        self.assertIn(("POST", self.idp.path("token"), 200), self.idp.requests()[idp_before:])

    def test_only_the_realm_is_reachable(self):
        before = len(self.idp.requests())
        for path in (
            "/idp/realms/mcp/../../admin/master/console/",
            "/idp/realms/mcp/%2e%2e/%2e%2e/admin",
            "/idp/realms/other/protocol/openid-connect/certs",
            "/idp/admin/master/console/",
        ):
            status, _, _ = self.gateway("GET", path)
            self.assertEqual(status, 401, path)
        self.assertEqual(self.idp.requests()[before:], [], "nothing outside the realm reached the IdP")

    def test_a_client_cannot_route_itself_to_the_idp(self):
        token = self.idp.client_credentials_token(self.resource)
        status, _, _ = self.post_initialize(token)  # the gateway fetches its keys
        self.assertEqual(status, 200)
        before = len(self.idp.requests())
        headers = {"x-mcp-authn-route": "idp"}
        status, _, body = self.post_initialize(token, extra_headers=headers)
        self.assertEqual(status, 200, body[:300])
        self.assertIn(b"e2e-upstream", body)
        self.assertEqual(self.idp.requests()[before:], [])


class StandardLayoutOidcTest(IdpCase):
    """provider oidc (RFC 8414 path-inserted metadata) in front of the standard layout; no
    clientId, so registration goes to the IdP directly; JWKS derived as /.well-known/jwks.json."""

    @classmethod
    def provider(cls):
        return {"oidc": {}}  # cluster: defaults to jwks.cluster

    def test_metadata_keeps_idp_registration(self):
        self.assert_prm_names_gateway()
        doc = self.as_metadata()
        self.assertEqual(doc["issuer"], self.resource)
        self.assertEqual(doc["registration_endpoint"], self.idp.origin + "/register")
        self.assertIn(("GET", self.idp.path("rfc8414"), 200), self.idp.requests())
        status, _, _ = self.gateway("POST", "/.well-known/oauth-authorization-server/mcp/client-registration",
                                    {"content-type": "application/json"}, "{}")
        self.assertEqual(status, 404)

    def test_real_mcp_client_with_direct_registration(self):
        result, hops, _ = oauth_roundtrip(self.resource)
        self.assertEqual(result["echo"], "through the IdP")
        gw = self.origin
        expected = [
            ("POST", f"{gw}/mcp", 401),
            ("GET", f"{gw}/.well-known/oauth-protected-resource/mcp", 200),
            ("GET", f"{gw}/.well-known/oauth-authorization-server/mcp", 200),
            ("POST", self.idp.origin + "/register", 201),
            ("POST", self.idp.origin + "/token", 200),
            ("POST", f"{gw}/mcp", 200),
        ]
        self.assertEqual(hops[: len(expected)], expected, hops)
        self.assertIn(("GET", "/.well-known/jwks.json", 200), self.idp.requests())

    def test_derived_jwks_accepts_idp_token(self):
        status, _, body = self.post_initialize(self.idp.client_credentials_token(self.resource))
        self.assertEqual(status, 200, body[:300])
        self.assert_gateway_serves_idp_keys()


class DiscoveredJwksTest(IdpCase):
    """`jwks` omitted: the filter reads `jwks_uri` from the provider's RFC 8414 metadata and
    fetches the keys from a path no convention would guess."""

    JWKS_PATH = "/keys/signing"

    @classmethod
    def provider(cls):
        return {"oidc": {"cluster": "idp"}}

    @classmethod
    def plugin_config(cls):
        config = super().plugin_config()
        del config["jwks"]
        return config

    def test_discovered_jwks_accepts_idp_token(self):
        status, _, body = self.post_initialize(self.idp.client_credentials_token(self.resource))
        self.assertEqual(status, 200, body[:300])
        requests = self.idp.requests()
        discovery = requests.index(("GET", self.idp.path("rfc8414"), 200))
        keys = requests.index(("GET", self.JWKS_PATH, 200))
        self.assertLess(discovery, keys, requests)
        self.assertNotIn("/.well-known/jwks.json", [path for _, path, _ in requests])
        self.assert_gateway_serves_idp_keys()


class Auth0ModeTest(IdpCase):
    """provider auth0 in front of the standard layout whose authorization endpoint already has
    a query (including a stale `audience`)."""

    AUTHORIZATION_QUERY = "prompt=login&audience=stale"

    @classmethod
    def provider(cls):
        return {"auth0": {"cluster": "idp"}}

    def test_authorization_endpoint_names_the_audience_once(self):
        for path in ("/.well-known/oauth-authorization-server/mcp", "/.well-known/openid-configuration/mcp"):
            doc = self.gateway_json(path)
            self.assertEqual(doc["issuer"], self.resource)
            endpoint = doc["authorization_endpoint"]
            parsed = urllib.parse.urlsplit(endpoint)
            self.assertEqual(f"{parsed.scheme}://{parsed.netloc}{parsed.path}", self.idp.origin + "/authorize")
            query = urllib.parse.parse_qs(parsed.query)
            self.assertEqual(query["audience"], [self.resource], endpoint)
            self.assertEqual(query["prompt"], ["login"], endpoint)
            self.assertEqual(parsed.query.count("audience="), 1, endpoint)
            self.assertIn("audience=" + urllib.parse.quote(self.resource, safe=""), parsed.query)
            # No clientId: Auth0's own registration endpoint is advertised unchanged.
            self.assertEqual(doc["registration_endpoint"], self.idp.origin + "/register")
        # Auth0 mode reads OpenID discovery under the issuer.
        self.assertIn(("GET", self.idp.path("discovery"), 200), self.idp.requests())

    def test_idp_token_accepted(self):
        status, _, body = self.post_initialize(self.idp.client_credentials_token(self.resource))
        self.assertEqual(status, 200, body[:300])


class ClientIdModeTest(IdpCase):
    """`clientId` set: registration is answered by the gateway with the pre-registered client."""

    CLIENT_ID = "mcp-public-client"

    @classmethod
    def provider(cls):
        return {"oidc": {"cluster": "idp"}}

    @classmethod
    def plugin_config(cls):
        config = super().plugin_config()
        config["clientId"] = cls.CLIENT_ID
        return config

    def test_local_registration(self):
        doc = self.as_metadata()
        registration = f"{self.origin}/.well-known/oauth-authorization-server/mcp/client-registration"
        self.assertEqual(doc["registration_endpoint"], registration)
        idp_before = len(self.idp.requests())
        redirect_uris = ["http://127.0.0.1:33418/callback", "http://localhost:6274/oauth/callback"]
        status, headers, client = self.register({"redirect_uris": redirect_uris, "client_name": "Inspector"})
        self.assertEqual(status, 201, client)
        self.assertEqual(client["client_id"], self.CLIENT_ID)
        self.assertEqual(client["redirect_uris"], redirect_uris)
        self.assertEqual(client["client_name"], "Inspector")
        self.assertEqual(client["token_endpoint_auth_method"], "none")
        self.assertEqual(headers.get("cache-control"), "no-store")
        status, _, error = self.register({"client_name": "no redirect"})
        self.assertEqual(status, 400, error)
        self.assertEqual(error["error"], "invalid_redirect_uri")
        self.assertEqual(self.idp.requests()[idp_before:], [], "local registration must not reach the IdP")

    def test_registration_body_arriving_late(self):
        # The headers reach Envoy well before the body: the MCP upstream must not answer first.
        body = json.dumps({"redirect_uris": ["http://127.0.0.1:9/cb"]}).encode()
        head = (
            "POST /.well-known/oauth-authorization-server/mcp/client-registration HTTP/1.1\r\n"
            f"host: 127.0.0.1:{self.envoy.listener_port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", self.envoy.listener_port), timeout=5) as conn:
            conn.sendall(head)
            time.sleep(0.5)
            conn.sendall(body)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 201"), answer[:300])
        self.assertIn(b'"client_id":"mcp-public-client"', answer)


class KeycloakDownCase(IdpCase):
    """provider keycloak in front of a Keycloak-shaped realm; each test here may stop the IdP,
    so each class has exactly one test and no test depends on another's order."""

    LAYOUT = "keycloak"

    @classmethod
    def provider(cls):
        return {"keycloak": {}}

    @classmethod
    def plugin_config(cls):
        config = super().plugin_config()
        config["verifiedTokenCache"] = {"capacity": 0}  # every request checks the signature
        return config

    def register_while_down(self):
        """A forwarded registration with the IdP down: the filter's JSON 503, not Envoy's text."""
        status, headers, body = self.gateway(
            "POST", "/.well-known/oauth-authorization-server/mcp/client-registration",
            {"content-type": "application/json"}, json.dumps({"redirect_uris": ["http://127.0.0.1:9/cb"]}))
        self.assertEqual(status, 503, body)
        self.assertEqual(headers.get("content-type"), "application/json")
        self.assertEqual(headers.get("cache-control"), "no-store")
        self.assertEqual(json.loads(body)["error"], "temporarily_unavailable")

    def assert_gateway_keys_still_served(self):
        status, _, body = self.gateway("GET", "/.well-known/jwks.json")
        self.assertEqual(status, 200, body[:200])
        self.assertTrue(json.loads(body)["keys"])


class IdpMismatchTest(KeycloakDownCase):
    def test_mismatched_provider_is_a_502(self):
        """A provider type that does not match the IdP (oidc in front of a Keycloak realm, which
        has no RFC 8414 document) is a bad answer: 502."""
        listener_port, admin_port = harness.free_port(), harness.free_port()
        config = dict(super().plugin_config(), provider={"oidc": {}})
        bootstrap = harness.bootstrap(
            listener_port=listener_port,
            admin_port=admin_port,
            upstream_port=self.upstream_port,
            jwks_port=self.idp.port,
            http_filters=[harness.wasm_filter(config)],
        )
        harness.add_cluster(bootstrap, "idp", self.idp.port)
        buffer_registration(bootstrap)
        envoy = harness.Envoy(bootstrap, listener_port=listener_port, admin_port=admin_port,
                              log_dir=self.log_dir, name="envoy-mismatch")
        try:
            envoy.wait_ready()
            status, _, body = harness.http_request(listener_port, "GET", "/.well-known/oauth-authorization-server/mcp")
            self.assertEqual(status, 502, body)
            self.assertEqual(json.loads(body)["error"], "temporarily_unavailable")
            self.assertIn(("GET", "/.well-known/oauth-authorization-server/realms/mcp", 404), self.idp.requests())
        finally:
            envoy.stop()


class IdpDownTest(KeycloakDownCase):
    def test_idp_down(self):
        """The IdP stops after the gateway cached its keys (but not its metadata): discovery and
        registration answer the documented 503 within the timeout, tokens keep being verified."""
        first = self.idp.client_credentials_token(self.resource)
        second = self.idp.client_credentials_token(self.resource)
        status, _, body = self.post_initialize(first)
        self.assertEqual(status, 200, body[:300])  # keys fetched and cached
        self.idp.stop()
        self.assertFalse(harness.port_open(self.idp.port))

        for path in ("/.well-known/oauth-authorization-server/mcp", "/.well-known/openid-configuration/mcp"):
            status, headers, body = self.gateway("GET", path)
            self.assertEqual(status, 503, (path, body))
            self.assertEqual(headers.get("cache-control"), "no-store")
            self.assertEqual(json.loads(body)["error"], "temporarily_unavailable")
        self.register_while_down()

        # An IdP that accepts connections but never answers: the filter's own timeout, 503.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as black_hole:
            black_hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            black_hole.bind(("127.0.0.1", self.idp.port))
            black_hole.listen(16)  # never accepted: the kernel completes connects, nobody answers
            status, _, body = self.gateway("GET", "/.well-known/oauth-authorization-server/mcp",
                                           timeout=JWKS_TIMEOUT_MS / 1000 + 10)
            self.assertEqual(status, 503, body)
            self.assertEqual(json.loads(body)["error"], "temporarily_unavailable")

        # A token never seen before is still verified with the cached keys.
        status, _, body = self.post_initialize(second)
        self.assertEqual(status, 200, body[:300])
        status, _, _ = self.post_initialize(None)
        self.assertEqual(status, 401)
        self.assert_gateway_keys_still_served()


class MetadataCacheTest(KeycloakDownCase):
    def test_metadata_is_cached_and_survives_an_outage(self):
        """The documented metadata cache: a second request skips the IdP, and the document is
        still served while the IdP is down (registration, never cached, gets the 503)."""
        discovery = ("GET", self.idp.path("discovery"), 200)
        first = self.as_metadata()
        fetched = self.idp.requests().count(discovery)
        self.assertEqual(fetched, 1)
        self.assertEqual(self.gateway_json("/.well-known/openid-configuration/mcp"), first)
        self.assertEqual(self.idp.requests().count(discovery), fetched, "the second request reached the IdP")
        self.idp.stop()
        self.assertEqual(self.as_metadata(), first)
        self.register_while_down()


def _b64(segment):
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


if __name__ == "__main__":
    unittest.main()
