"""The docs' promises about keys and stats, run in Envoy: every `denied.<reason>` counter moves
by exactly one for its own kind of request (and no other counter does), and a JWKS served
with `Cache-Control: max-age` is refreshed in the background ahead of that expiry, not after
`cacheDurationSeconds`.
"""

import json
import time
import unittest

import jwt

import harness
import tokens
import witness
from stack import Stack, raw_request

KEY = tokens.SigningKey.rsa()
REASONS = ["missing", "invalid_request", "malformed", "unsupported_alg", "unknown_kid", "bad_signature",
           "expired", "not_yet_valid", "issuer", "audience", "missing_claim", "invalid_claim"]
MAX_AGE = 60  # the lower clamp (docs/keys.md): refresh-ahead starts a tenth before, at 54 s


class DeniedCountersTest(harness.ReportsFailures, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(tokens.jwks(KEY), name="counters",
                          plugin_extra={"jwtValidationOptions": {"requiredClaims": ["exp", "sub"]}}).start()
        cls.addClassCleanup(cls.stack.stop)

    def on_test_failure(self):
        self.stack.report_failure()

    def claims(self, **overrides):
        now = int(time.time())
        claims = {"iss": self.stack.issuer, "aud": self.stack.resource, "sub": "u", "nbf": now - 10, "exp": now + 300}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def signed(self, key=KEY, **overrides):
        return jwt.encode(self.claims(**overrides), key.private_key, algorithm=key.alg, headers={"kid": key.kid})

    def cases(self):
        now = int(time.time())
        bearer = lambda token: [("authorization", f"Bearer {token}")]  # noqa: E731
        return {
            "missing": [],
            "invalid_request": bearer(self.signed()) * 2,
            "malformed": bearer("not.a.jwt"),
            "unsupported_alg": bearer(jwt.encode(self.claims(), "secret-of-32-bytes-for-hmac-xxxxx",
                                                 algorithm="HS256", headers={"kid": KEY.kid})),
            "unknown_kid": bearer(self.signed(tokens.SigningKey.rsa())),
            "bad_signature": bearer(self.signed(tokens.SigningKey.rsa(kid=KEY.kid))),
            "expired": bearer(self.signed(exp=now - 3600, nbf=now - 7200)),
            "not_yet_valid": bearer(self.signed(nbf=now + 3600, exp=now + 7200)),
            "issuer": bearer(self.signed(iss="http://127.0.0.1:1")),
            "audience": bearer(self.signed(aud="http://127.0.0.1:1/other")),
            "missing_claim": bearer(self.signed(sub=None)),
            "invalid_claim": bearer(self.signed(exp="soon")),
        }

    def counters(self):
        names = [f"mcp_authn.denied.{r}" for r in REASONS] + ["mcp_authn.allowed"]
        return {n: self.stack.envoy.counter(n) for n in names}

    def test_each_reason_moves_its_own_counter_once(self):
        for reason, headers in self.cases().items():
            with self.subTest(reason):
                before, mark = self.counters(), self.stack.upstream.count
                status, response_headers, _ = raw_request(self.stack.listener_port, "POST", "/mcp", headers, b"{}")
                self.assertEqual(status, 400 if reason == "invalid_request" else 401)
                witness.assert_nothing_reached(self, self.stack.upstream, self.stack.listener_port, mark)
                after = self.counters()
                moved = {n: after[n] - before[n] for n in after if after[n] != before[n]}
                self.assertEqual(moved, {f"mcp_authn.denied.{reason}": 1})


class CacheControlRefreshAheadTest(harness.ReportsFailures, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # cacheDurationSeconds (1 h) would apply without the header: a refresh within about a
        # minute can only come from max-age.
        cls.stack = Stack(tokens.jwks(KEY), name="cache-control", concurrency=2,
                          jwks_options={"cacheDurationSeconds": 3600})
        cls.stack.jwks.cache_control = f"public, max-age={MAX_AGE}"
        cls.stack.start()
        cls.addClassCleanup(cls.stack.stop)

    def on_test_failure(self):
        self.stack.report_failure()

    def send(self):
        token = tokens.mint(KEY, iss=self.stack.issuer, aud=self.stack.resource, lifetime=600)
        return raw_request(self.stack.listener_port, "POST", "/mcp", [("authorization", f"Bearer {token}")], b"{}")[0]

    def test_max_age_drives_a_background_refresh_before_expiry(self):
        self.assertEqual(self.send(), 200)
        first = time.monotonic()
        self.assertEqual(self.stack.jwks.count, 1)
        # No traffic needed: the tick refreshes ahead of expiry.
        harness.wait_until(lambda: self.stack.jwks.count >= 2, MAX_AGE + 15, interval=0.2,
                           what="the background refresh")
        self.assertLess(time.monotonic() - first, MAX_AGE, "refreshed only after the keys expired")
        self.assertEqual(self.stack.envoy.counter("mcp_authn.jwks_fetch.success"), 2)
        self.assertEqual(self.send(), 200)
        self.assertEqual(self.stack.jwks.count, 2, "a request after the refresh fetched again")


if __name__ == "__main__":
    unittest.main()
