"""End-to-end tests: real Envoy + dist/mcp_authn.wasm + JWKS server + MCP peers.

Each class starts one Envoy (plus an upstream MCP server and a JWKS server)
for all of its tests, because start-up and Wasm compilation dominate the run
time. Classes whose assertions depend on exact fetch counts get their own
Envoy so no other test's traffic can disturb them.
"""

import json
import os
import time
import unittest

import harness
import mcp_client
import tokens
import witness
from jwks_server import JwksServer

# Generated once per run: trusted keys, a key the IdP rotates to, and an
# attacker key that is never published.
RSA_KEY = tokens.SigningKey.rsa()
EC_KEY = tokens.SigningKey.p256()
NEW_RSA_KEY = tokens.SigningKey.rsa()
ATTACKER_KEY = tokens.SigningKey.rsa()

MIN_REFRESH_SECONDS = 1

def initialize(version="2025-06-18"):
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "e2e-raw", "version": "0"},
            },
        }
    )


INITIALIZE = initialize()


class EnvoyCase(harness.KeepsLogsOnFailure, unittest.TestCase):
    """Starts upstream, JWKS server and Envoy for the class; stops them after."""

    MODE = "strict"
    CONCURRENCY = 1
    START_JWKS = True  # False: the IdP is down when Envoy starts

    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(harness.WASM_PATH):
            raise RuntimeError(f"{harness.WASM_PATH} is missing: build it with scripts/build.sh")
        cls.keep_logs_until_done()
        cls.upstream, upstream_port = harness.start_mcp_server(cls.log_dir)
        cls.addClassCleanup(cls.upstream.stop)
        cls.witness = witness.RemoteWitness(upstream_port)

        cls.jwks = JwksServer(tokens.jwks(RSA_KEY, EC_KEY), harness.free_port())
        if cls.START_JWKS:
            cls.jwks.start()
        cls.addClassCleanup(cls.jwks.stop)

        listener_port, admin_port = harness.free_port(), harness.free_port()
        cls.issuer = f"http://127.0.0.1:{cls.jwks.port}"
        cls.resource = f"http://127.0.0.1:{listener_port}/mcp"
        config = harness.bootstrap(
            listener_port=listener_port,
            admin_port=admin_port,
            upstream_port=upstream_port,
            jwks_port=cls.jwks.port,
            http_filters=[harness.wasm_filter(cls.plugin_config())],
        )
        cls.envoy = harness.Envoy(
            config,
            listener_port=listener_port,
            admin_port=admin_port,
            log_dir=cls.log_dir,
            concurrency=cls.CONCURRENCY,
        )
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready()
        cls.setup_done()

    @classmethod
    def plugin_config(cls):
        # `audiences` is left out on purpose: it defaults to the resource.
        return {
            "issuer": cls.issuer,
            "jwks": {
                "url": cls.jwks.url,
                "cluster": "jwks",
                "timeoutMs": 1000,
                "cacheDurationSeconds": 300,
                "minRefreshIntervalSeconds": MIN_REFRESH_SECONDS,
            },
            "resourceMetadata": {"resource": cls.resource},
            "mode": cls.MODE,
        }

    # -- helpers ---------------------------------------------------------

    def token(self, key=RSA_KEY, **overrides):
        claims = {"iss": self.issuer, "aud": self.resource}
        claims.update(overrides)
        return tokens.mint(key, **claims)

    def post_initialize(self, token=None, path="/mcp"):
        """A raw MCP initialize POST on a fresh connection: (status, headers, body)."""
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return harness.http_request(self.envoy.listener_port, "POST", path, headers, INITIALIZE)

    def metadata_url(self):
        return f"http://127.0.0.1:{self.envoy.listener_port}/.well-known/oauth-protected-resource/mcp"

    def assert_nothing_reached(self, mark):
        witness.assert_nothing_reached(self, self.witness, self.envoy.listener_port, mark)

    def assert_reached_clean(self, mark, token):
        seen = witness.settled(self.witness, self.envoy.listener_port, mark)
        witness.assert_credential_gone(self, seen, token)

    def assert_invalid_token(self, response):
        status, headers, body = response
        self.assertEqual(status, 401, body)
        challenge = headers.get("www-authenticate", "")
        self.assertTrue(challenge.startswith("Bearer "), challenge)
        self.assertIn('error="invalid_token"', challenge)
        self.assertIn(f'resource_metadata="{self.metadata_url()}"', challenge)


class StrictModeTest(EnvoyCase):
    CONCURRENCY = 2

    def test_missing_token_gets_challenge(self):
        mark = self.witness.count
        status, headers, body = self.post_initialize()
        self.assert_nothing_reached(mark)
        self.assertEqual(status, 401, body)
        self.assertEqual(headers.get("www-authenticate"), f'Bearer resource_metadata="{self.metadata_url()}"')
        self.assertIn("error", json.loads(body))

    def test_challenge_ignores_query(self):
        status, headers, _ = self.post_initialize(path="/mcp?session=1")
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("www-authenticate"), f'Bearer resource_metadata="{self.metadata_url()}"')

    def test_protected_resource_metadata(self):
        status, headers, body = harness.http_request(
            self.envoy.listener_port, "GET", "/.well-known/oauth-protected-resource/mcp"
        )
        self.assertEqual(status, 200, body)
        self.assertIn("application/json", headers.get("content-type", ""))
        document = json.loads(body)
        self.assertEqual(document["resource"], self.resource)
        self.assertEqual(document["authorization_servers"], [self.issuer])

    def test_mcp_client_with_valid_token(self):
        token, mark = self.token(), self.witness.count
        seen = mcp_client.roundtrip(self.envoy.url(), token)
        self.assert_reached_clean(mark, token)
        self.assertEqual(seen["server_name"], "e2e-upstream")
        self.assertEqual(seen["tools"], ["echo", "echo_headers"])
        self.assertNotIn("authorization", seen["headers"])

    def test_both_mcp_revisions_pass_with_a_token_and_not_without(self):
        for version in ("2025-06-18", "2025-11-25"):
            with self.subTest(version):
                headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                           "mcp-protocol-version": version}
                status, _, body = harness.http_request(self.envoy.listener_port, "POST", "/mcp", headers,
                                                       initialize(version))
                self.assertEqual(status, 401, body)
                token, mark = self.token(), self.witness.count
                headers["authorization"] = f"Bearer {token}"
                status, answer_headers, body = harness.http_request(self.envoy.listener_port, "POST", "/mcp",
                                                                    headers, initialize(version))
                self.assertEqual(status, 200, body)
                data = body.decode().split("data: ", 1)[-1] if b"data: " in body else body.decode()
                self.assertEqual(json.loads(data)["result"]["protocolVersion"], version)
                self.assert_reached_clean(mark, token)

    def test_es256_token_accepted(self):
        status, _, body = self.post_initialize(self.token(EC_KEY))
        self.assertEqual(status, 200, body)

    def test_invalid_tokens_rejected(self):
        cases = {
            "expired": self.token(lifetime=-3600, nbf_offset=-7200),
            "not yet valid": self.token(nbf_offset=3600, lifetime=7200),
            "malformed": "not-a-jwt",
            "wrong audience": self.token(aud="http://127.0.0.1:1/other"),
            "wrong issuer": self.token(iss="http://127.0.0.1:1"),
            "bad signature": tokens.mint(ATTACKER_KEY, iss=self.issuer, aud=self.resource, kid=RSA_KEY.kid),
        }
        for name, token in cases.items():
            with self.subTest(name):
                mark = self.witness.count
                self.assert_invalid_token(self.post_initialize(token))
                self.assert_nothing_reached(mark)

    def test_stats_count_outcomes(self):
        metrics = [
            "mcp_authn.allowed",
            "mcp_authn.denied.missing",
            "mcp_authn.denied.expired",
            "mcp_authn.denied.audience",
            "mcp_authn.denied.bad_signature",
        ]
        before = {m: self.envoy.counter(m) for m in metrics}
        for _ in range(3):
            self.assertEqual(self.post_initialize(self.token())[0], 200)
        for _ in range(2):
            self.assertEqual(self.post_initialize()[0], 401)
        self.assertEqual(self.post_initialize(self.token(lifetime=-3600, nbf_offset=-7200))[0], 401)
        self.assertEqual(self.post_initialize(self.token(aud="http://127.0.0.1:1/other"))[0], 401)
        forged = tokens.mint(ATTACKER_KEY, iss=self.issuer, aud=self.resource, kid=RSA_KEY.kid)
        self.assertEqual(self.post_initialize(forged)[0], 401)

        delta = {m: self.envoy.counter(m) - before[m] for m in metrics}
        expected = dict(zip(metrics, [3, 2, 1, 1, 1]))
        self.assertEqual(delta, expected, f"all mcp_authn stats: {self.envoy.stats()}")


class SingleFetchAcrossWorkersTest(EnvoyCase):
    CONCURRENCY = 2

    def test_jwks_fetched_once_for_all_workers(self):
        for i in range(50):
            status, _, body = self.post_initialize(self.token())
            self.assertEqual(status, 200, f"request {i}: {body!r}")
        self.assertEqual(self.jwks.count, 1)
        self.assertEqual(self.envoy.counter("mcp_authn.jwks_fetch.success"), 1)
        self.assertEqual(self.envoy.counter("mcp_authn.allowed"), 50)
        # Guard the test's own premise: both workers served traffic.
        port = self.envoy.listener_port
        for worker in (0, 1):
            served = self.envoy.stats(f"listener.127.0.0.1_{port}.worker_{worker}.downstream_cx_total")
            self.assertGreater(sum(served.values()), 0, f"worker_{worker} got no connections")


class RotationTest(EnvoyCase):
    CONCURRENCY = 2

    def test_new_kid_triggers_one_refetch(self):
        self.assertEqual(self.post_initialize(self.token())[0], 200)
        self.assertEqual(self.jwks.count, 1)

        self.jwks.set_document(tokens.jwks(RSA_KEY, EC_KEY, NEW_RSA_KEY))
        # Refused until the refetch rate limit allows the one refetch, then accepted: a
        # condition, not a sleep.
        harness.wait_until(lambda: self.post_initialize(self.token(NEW_RSA_KEY))[0] == 200, 10,
                           interval=0.2, what="the rotated key accepted")
        self.assertEqual(self.jwks.count, 2)

        # Both workers now know both keys without fetching again.
        for i in range(10):
            key = NEW_RSA_KEY if i % 2 else RSA_KEY
            self.assertEqual(self.post_initialize(self.token(key))[0], 200, f"request {i}")
        self.assertEqual(self.jwks.count, 2)
        self.assertEqual(self.envoy.counter("mcp_authn.jwks_refetch.unknown_kid"), 1)


class IdpErrorKeepsCacheTest(EnvoyCase):
    def test_failed_refetch_keeps_cached_keys(self):
        self.assertEqual(self.post_initialize(self.token())[0], 200)
        self.jwks.set_status(500)
        # Unknown kid forces a refetch (once the rate limit allows), which fails: deny, but
        # keep old keys.
        def refetched():
            self.assertEqual(self.post_initialize(self.token(NEW_RSA_KEY))[0], 401)
            return self.jwks.count >= 2

        harness.wait_until(refetched, 10, interval=0.2, what="the failed refetch")
        self.assertGreaterEqual(self.envoy.counter("mcp_authn.jwks_fetch.failure"), 1)
        self.assertEqual(self.post_initialize(self.token())[0], 200)


class IdpDownAtStartTest(EnvoyCase):
    START_JWKS = False

    def test_recovers_without_restart(self):
        started = time.monotonic()
        response = self.post_initialize(self.token())
        elapsed = time.monotonic() - started
        self.assertEqual(response[0], 401, response[2])
        self.assertLess(elapsed, 5, "request with the IdP down must fail fast, not hang")
        self.assertEqual(self.envoy.counter("mcp_authn.denied.keys_unavailable"), 1)
        self.assertGreaterEqual(self.envoy.counter("mcp_authn.jwks_fetch.failure"), 1)

        self.jwks.start()

        def accepted():
            return self.post_initialize(self.token())[0] == 200

        harness.wait_until(accepted, timeout=15, interval=0.25, what="acceptance after the IdP came up")
        self.assertGreaterEqual(self.jwks.count, 1)


class OptionalModeTest(EnvoyCase):
    MODE = "optional"

    def test_no_token_reaches_upstream(self):
        before = self.envoy.counter("mcp_authn.passed_unauthenticated")
        status, _, body = self.post_initialize()
        self.assertEqual(status, 200, body)
        self.assertEqual(self.envoy.counter("mcp_authn.passed_unauthenticated"), before + 1)

    def test_invalid_token_rejected(self):
        self.assert_invalid_token(self.post_initialize(self.token(lifetime=-3600, nbf_offset=-7200)))

    def test_valid_token_stripped(self):
        token, mark = self.token(), self.witness.count
        seen = mcp_client.roundtrip(self.envoy.url(), token)
        self.assertNotIn("authorization", seen["headers"])
        self.assert_reached_clean(mark, token)


class PermissiveModeTest(EnvoyCase):
    MODE = "permissive"

    def test_invalid_token_forwarded_untouched(self):
        token = self.token(lifetime=-3600, nbf_offset=-7200)
        seen = mcp_client.roundtrip(self.envoy.url(), token)
        self.assertEqual(seen["headers"].get("authorization"), f"Bearer {token}")

    def test_valid_token_stripped(self):
        token, mark = self.token(), self.witness.count
        seen = mcp_client.roundtrip(self.envoy.url(), token)
        self.assertNotIn("authorization", seen["headers"])
        self.assert_reached_clean(mark, token)

    def test_no_token_reaches_upstream(self):
        status, _, body = self.post_initialize()
        self.assertEqual(status, 200, body)


if __name__ == "__main__":
    unittest.main()
