"""The docs' promises run in Envoy: the query and cookie token locations (the credential removed
from `:path` and from the cookie, the rest kept), `claimsToHeaders` (exact values, client
copies removed), `jwks.inline` given as a JSON string, and the CORS preflight and exposed
headers of envoy/envoy.yaml. The upstream is the witness for each.
"""

import json
import os
import re
import unittest

import harness
import tokens
import witness
from counting_upstream import CountingUpstream
from stack import Stack

KEY = tokens.SigningKey.rsa()
OTHER = tokens.SigningKey.rsa()
CLAIMS = [{"claim": "sub", "header": "x-mcp-user"}, {"claim": "tenant", "header": "x-mcp-tenant"}]


class LocationCase(harness.ReportsFailures, unittest.TestCase):
    EXTRA = {}

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(tokens.jwks(KEY), name=cls.__name__, plugin_extra=cls.EXTRA).start()
        cls.addClassCleanup(cls.stack.stop)

    def on_test_failure(self):
        self.stack.report_failure()

    def token(self, key=KEY, **extra):
        return tokens.mint(key, iss=self.stack.issuer, aud=self.stack.resource, extra=extra)

    def send(self, path, headers):
        mark = self.stack.upstream.count
        status, _, body = harness.http_request(self.stack.listener_port, "POST", path, headers, "{}")
        return status, body, mark

    def reached(self, mark):
        seen = witness.settled(self.stack.upstream, self.stack.listener_port, mark)
        self.assertEqual(len(seen), 1, seen)
        return seen[0]


class QueryParameterTest(LocationCase):
    EXTRA = {"authorizationLocation": {"queryParameter": {"name": "token"}}, "claimsToHeaders": CLAIMS}

    def test_the_token_leaves_the_path_and_the_claims_become_headers(self):
        token = self.token(sub="alice", tenant="acme")
        status, body, mark = self.send(f"/mcp?a=1&token={token}&b=2",
                                       {"x-mcp-user": "mallory", "x-mcp-tenant": "evil"})
        self.assertEqual(status, 200, body)
        seen = self.reached(mark)
        self.assertEqual(seen["path"], "/mcp?a=1&b=2")
        witness.assert_credential_gone(self, [seen], token, {"x-mcp-user": "alice", "x-mcp-tenant": "acme"})

    def test_a_claim_the_token_lacks_leaves_its_header_absent(self):
        token = self.token(sub="bob")
        status, body, mark = self.send(f"/mcp?token={token}", {"x-mcp-tenant": "evil"})
        self.assertEqual(status, 200, body)
        witness.assert_credential_gone(self, [self.reached(mark)], token, {"x-mcp-user": "bob", "x-mcp-tenant": None})

    def test_a_bad_token_in_the_query_reaches_nothing(self):
        status, _, mark = self.send(f"/mcp?token={self.token(OTHER, sub='x')}", {})
        self.assertEqual(status, 401)
        witness.assert_nothing_reached(self, self.stack.upstream, self.stack.listener_port, mark)


class CookieTest(LocationCase):
    EXTRA = {"authorizationLocation": {"cookie": {"name": "mcp_token"}}, "claimsToHeaders": CLAIMS[:1]}

    def test_the_token_leaves_the_cookie_and_the_other_cookies_stay(self):
        token = self.token(sub="carol")
        status, body, mark = self.send("/mcp", {"cookie": f"a=1; mcp_token={token}; b=2"})
        self.assertEqual(status, 200, body)
        seen = self.reached(mark)
        cookies = witness.header(seen, "cookie")
        self.assertEqual([c.replace(" ", "") for c in cookies], ["a=1;b=2"])
        witness.assert_credential_gone(self, [seen], token, {"x-mcp-user": "carol"})

    def test_a_token_only_cookie_header_is_removed(self):
        token = self.token(sub="carol")
        status, body, mark = self.send("/mcp", {"cookie": f"mcp_token={token}"})
        self.assertEqual(status, 200, body)
        self.assertEqual(witness.header(self.reached(mark), "cookie"), [])


class InlineJwksStringTest(LocationCase):
    EXTRA = {"jwks": {"inline": json.dumps(tokens.jwks(KEY))}}

    def test_keys_given_as_a_json_string_verify_without_a_fetch(self):
        token = self.token(sub="dave")
        status, body, mark = self.send("/mcp", {"authorization": f"Bearer {token}"})
        self.assertEqual(status, 200, body)
        witness.assert_credential_gone(self, [self.reached(mark)], token)
        status, _, _ = self.send("/mcp", {"authorization": f"Bearer {self.token(OTHER, sub='x')}"})
        self.assertEqual(status, 401)
        self.assertEqual(self.stack.jwks.count, 0)


class ExampleEnvoyYamlCorsTest(harness.KeepsLogsOnFailure, unittest.TestCase):
    """envoy/envoy.yaml as shipped (ports and paths rewritten, as scripts/demo.sh does)."""

    @classmethod
    def setUpClass(cls):
        cls.keep_logs_until_done()
        cls.upstream = CountingUpstream().start()
        cls.addClassCleanup(cls.upstream.stop)
        port, admin, idp = harness.free_port(), harness.free_port(), harness.free_port()
        with open(os.path.join(harness.ROOT, "envoy", "envoy.yaml")) as f:
            text = f.read()
        for old, new in [("port_value: 10000", f"port_value: {port}"),
                         ("port_value: 3000", f"port_value: {cls.upstream.port}"),
                         ("port_value: 9901", f"port_value: {admin}"),
                         ("port_value: 8080", f"port_value: {idp}"),
                         ("127.0.0.1:10000", f"127.0.0.1:{port}"),
                         ("filename: dist/mcp_authn.wasm", f"filename: {harness.WASM_PATH}")]:
            assert old in text, old
            text = text.replace(old, new)
        cls.envoy = harness.Envoy(text, listener_port=port, admin_port=admin, log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready()
        cls.setup_done()

    def test_a_preflight_is_answered_before_authentication(self):
        mark = self.upstream.count
        status, headers, _ = harness.http_request(self.envoy.listener_port, "OPTIONS", "/mcp", {
            "origin": "http://app.example", "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, mcp-protocol-version"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["access-control-allow-origin"], "http://app.example")
        allowed = {h.strip() for h in headers["access-control-allow-headers"].split(",")}
        self.assertLessEqual({"authorization", "content-type", "mcp-protocol-version", "mcp-session-id"}, allowed)
        self.assertIn("POST", headers["access-control-allow-methods"])
        self.assertEqual(self.upstream.count, mark)

    def test_the_challenge_is_readable_cross_origin(self):
        status, headers, _ = harness.http_request(self.envoy.listener_port, "POST", "/mcp",
                                                  {"origin": "http://app.example"}, "{}")
        self.assertEqual(status, 401)
        exposed = {h.strip() for h in headers["access-control-expose-headers"].split(",")}
        self.assertLessEqual({"www-authenticate", "mcp-session-id"}, exposed)
        self.assertTrue(re.match(r'Bearer resource_metadata="http://127\.0\.0\.1:\d+/', headers["www-authenticate"]))


if __name__ == "__main__":
    unittest.main()
