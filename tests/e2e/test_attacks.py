"""The attack corpus end to end: every case through a real Envoy, refused with
the right status and `error=`, and never seen by the (counting) upstream.

The corpus is generated fresh each run by attacks.py. A positive control
proves the upstream counter moves for a valid token, so "count unchanged"
is a check that can fail.
"""

import unittest

import attacks
import harness
import tokens
import witness
from jwks_server import JwksServer
from stack import Stack, raw_request

RSA_KEY = tokens.SigningKey.rsa()
EC_KEY = tokens.SigningKey.p256()
PSS_KEY = tokens.SigningKey.rsa_pss()
ATTACKER_KEY = tokens.SigningKey.rsa()


class AttackCorpusTest(harness.ReportsFailures, unittest.TestCase):
    MODE = "strict"

    @classmethod
    def setUpClass(cls):
        cls.attacker_jwks = JwksServer(tokens.jwks(ATTACKER_KEY), harness.free_port()).start()
        cls.addClassCleanup(cls.attacker_jwks.stop)
        cls.stack = Stack(tokens.jwks(RSA_KEY, EC_KEY, PSS_KEY), name=f"attacks-{cls.MODE}",
                          mode=cls.MODE).start()
        cls.addClassCleanup(cls.stack.stop)
        cls.ctx = attacks.Context(RSA_KEY, EC_KEY, ATTACKER_KEY, cls.stack.issuer, cls.stack.resource,
                                  cls.attacker_jwks.url, PSS_KEY)

    def on_test_failure(self):
        self.stack.report_failure()

    def send(self, case):
        headers = [("content-type", "application/json")]
        if case.token is not None:
            headers.append(("authorization", f"Bearer {case.token}"))
        headers += case.headers
        return raw_request(self.stack.listener_port, "POST", case.path, headers, b"{}")

    def test_valid_tokens_reach_the_upstream(self):
        for name, token in attacks.valid_tokens(self.ctx).items():
            with self.subTest(name):
                before = self.stack.upstream.count
                status, _, body = self.send(attacks.Case(name, token))
                self.assertEqual(status, 200, body)
                seen = witness.settled(self.stack.upstream, self.stack.listener_port, before)
                self.assertEqual(len(seen), 1, seen)
                witness.assert_credential_gone(self, seen, token)

    def test_every_attack_is_refused_before_the_upstream(self):
        cases = attacks.build(self.ctx)
        allowed_before = self.stack.envoy.counter("mcp_authn.allowed")
        for case in cases:
            with self.subTest(case.name):
                before = self.stack.upstream.count
                status, headers, body = self.send(case)
                expected_status, expected_error = case.expect
                witness.assert_nothing_reached(self, self.stack.upstream, self.stack.listener_port, before,
                                               case.name)
                if case.expect == attacks.TOO_LARGE_FOR_ENVOY:
                    # Envoy's own 60 KiB header limit answers (or drops) before the filter runs.
                    self.assertIn(status, (431, None), body[:200])
                    continue
                self.assertEqual(status, expected_status, body[:300])
                challenge = headers.get("www-authenticate", "")
                self.assertTrue(challenge.startswith("Bearer "), challenge)
                self.assertIn(f'error="{expected_error}"', challenge)
                self.assertIn(f'resource_metadata="http://127.0.0.1:{self.stack.listener_port}/', challenge)
        self.assertEqual(self.stack.envoy.counter("mcp_authn.allowed"), allowed_before)
        self.assertEqual(self.attacker_jwks.count, 0, "the filter fetched a key named by a token")
        self.assertEqual(self.stack.vm_health(), [])

    def test_no_token_gets_a_bare_challenge(self):
        if self.MODE != "strict":
            self.skipTest("optional mode lets token-less requests through")
        for name, extra in {"none": [], "basic": [("authorization", "Basic dTpw")]}.items():
            with self.subTest(name):
                before = self.stack.upstream.count
                status, headers, _ = raw_request(self.stack.listener_port, "POST", "/mcp", extra, b"{}")
                self.assertEqual(status, 401)
                self.assertNotIn("error=", headers.get("www-authenticate", ""))
                witness.assert_nothing_reached(self, self.stack.upstream, self.stack.listener_port, before)


    def test_header_bytes_that_are_not_utf8_neither_crash_nor_pass(self):
        """HTTP allows any byte above 0x7F in a header value (obs-text) and Envoy passes it on.
        The SDK's header reads unwrap UTF-8, so one such header used to panic the VM and fail
        every later request on the worker with 503."""
        if self.MODE != "strict":
            self.skipTest("one mode is enough")
        valid = attacks.valid_tokens(self.ctx)["RS256"]
        odd = ("x-odd", b"caf\xe9 \xff\xfe")
        before = self.stack.upstream.count
        status, _, body = self.send(attacks.Case("odd header", valid, headers=[odd]))
        self.assertEqual(status, 200, body[:300])
        seen = witness.settled(self.stack.upstream, self.stack.listener_port, before)
        self.assertEqual(len(seen), 1, seen)
        # Read as text only inside the filter: the upstream gets the bytes as they were sent.
        self.assertEqual(witness.header(seen[0], "x-odd"), ["caf\xe9 \xff\xfe"])
        witness.assert_credential_gone(self, seen, valid)
        refused = {
            "token with a Latin-1 byte": [("authorization", b"Bearer " + valid.encode() + b"\xe9")],
            "Latin-1 scheme": [("authorization", b"B\xe9arer " + valid.encode())],
            "no token, odd header": [odd],
        }
        for name, extra in refused.items():
            with self.subTest(name):
                before = self.stack.upstream.count
                status, headers, body = raw_request(self.stack.listener_port, "POST", "/mcp", extra, b"{}")
                self.assertEqual(status, 401, body[:300])
                self.assertTrue(headers.get("www-authenticate", "").startswith("Bearer "))
                witness.assert_nothing_reached(self, self.stack.upstream, self.stack.listener_port, before, name)
        # A name that is not a token never reaches the filter: Envoy's codec refuses it.
        status, _, _ = raw_request(self.stack.listener_port, "GET", "/mcp", [(b"x-caf\xe9", "1")])
        self.assertEqual(status, 400)
        self.assertEqual(self.stack.vm_health(), [])
        self.assertEqual(self.send(attacks.Case("after", valid))[0], 200)

    def test_a_flood_of_unknown_kids_keeps_the_verified_token_cache(self):
        """Each made-up kid may force a JWKS refetch (one per minRefreshIntervalSeconds = 1 s);
        the IdP serves the same body, so the worker keeps its keys and its token cache."""
        if self.MODE != "strict":
            self.skipTest("one mode is enough")
        valid = attacks.valid_tokens(self.ctx)["ES256"]
        # Twice: a request that waited for the first fetch is decided without the cache.
        for _ in range(2):
            self.assertEqual(self.send(attacks.Case("warm", valid))[0], 200)
        hits = self.stack.envoy.counter("mcp_authn.token_cache.hit")
        self.assertEqual(self.send(attacks.Case("cached", valid))[0], 200)
        self.assertEqual(self.stack.envoy.counter("mcp_authn.token_cache.hit"), hits + 1)
        fetches = self.stack.jwks.count
        refetches = self.stack.envoy.counter("mcp_authn.jwks_refetch.unknown_kid")
        flood = 0

        def three_refetches_served():
            nonlocal flood
            flood += 1
            forged = attacks.sign_raw(ATTACKER_KEY, {"alg": "RS256", "kid": f"made-up-{flood}"},
                                      attacks.claims(self.ctx))
            self.assertEqual(self.send(attacks.Case("unknown kid", forged))[0], 401)
            return (self.stack.jwks.count >= fetches + 3
                    and self.stack.envoy.counter("mcp_authn.jwks_refetch.unknown_kid") >= refetches + 3)

        harness.wait_until(three_refetches_served, timeout=30, interval=0.1, what="three unknown-kid refetches")
        hits = self.stack.envoy.counter("mcp_authn.token_cache.hit")
        self.assertEqual(self.send(attacks.Case("cached after the flood", valid))[0], 200)
        self.assertEqual(self.stack.envoy.counter("mcp_authn.token_cache.hit"), hits + 1,
                         "the refetches of an identical JWKS flushed the verified-token cache")


class AttackCorpusOptionalModeTest(AttackCorpusTest):
    """Optional mode passes requests without a token, but a presented bad token is refused."""

    MODE = "optional"


if __name__ == "__main__":
    unittest.main()
