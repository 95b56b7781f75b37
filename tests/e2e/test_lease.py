"""The shared JWKS lease under a race: many cold requests at once on several workers while
the first fetch is slow. Exactly one fetch reaches the IdP, every request gets the right
answer, and none waits past the fetch timeout (docs/keys.md: the bound on a paused request).
"""

import threading
import time
import unittest

import harness
import tokens
import witness
from stack import Stack

KEY = tokens.SigningKey.rsa()
TIMEOUT_MS = 4000
FETCH_DELAY_S = 1.5  # the first fetch is slow, so every request below arrives during it
REQUESTS = 48
WORKERS = 4
# Slack on top of the timeout for a loaded CI machine; the bound under test is the timeout.
SLACK_S = 3


class ColdRaceTest(harness.ReportsFailures, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(tokens.jwks(KEY), name="lease-race", concurrency=WORKERS,
                          jwks_options={"timeoutMs": TIMEOUT_MS})
        cls.stack.jwks.set_delay(FETCH_DELAY_S)
        cls.stack.start()
        cls.addClassCleanup(cls.stack.stop)

    def on_test_failure(self):
        self.stack.report_failure()

    def test_one_fetch_serves_every_worker(self):
        good = tokens.mint(KEY, iss=self.stack.issuer, aud=self.stack.resource)
        forged = tokens.mint(tokens.SigningKey.rsa(kid=KEY.kid), iss=self.stack.issuer, aud=self.stack.resource)
        results = [None] * REQUESTS
        start = threading.Barrier(REQUESTS)

        def send(i):
            token = forged if i % 4 == 3 else good
            start.wait()
            began = time.monotonic()
            status, _, _ = harness.http_request(self.stack.listener_port, "POST", "/mcp",
                                                {"authorization": f"Bearer {token}"}, "{}",
                                                timeout=TIMEOUT_MS / 1000 + 10)
            results[i] = (status, time.monotonic() - began)

        mark = self.stack.upstream.count
        threads = [threading.Thread(target=send, args=(i,)) for i in range(REQUESTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=TIMEOUT_MS / 1000 + 20)
        self.assertTrue(all(r is not None for r in results), results)

        expected = [401 if i % 4 == 3 else 200 for i in range(REQUESTS)]
        self.assertEqual([s for s, _ in results], expected)
        slowest = max(elapsed for _, elapsed in results)
        self.assertLess(slowest, TIMEOUT_MS / 1000 + SLACK_S, f"a request waited {slowest:.2f} s")
        self.assertEqual(self.stack.jwks.count, 1, "more than one fetch reached the IdP")
        self.assertEqual(self.stack.envoy.counter("mcp_authn.jwks_fetch.success"), 1)
        self.assertEqual(self.stack.envoy.counter("mcp_authn.allowed"), expected.count(200))
        self.assertEqual(self.stack.envoy.counter("mcp_authn.denied.bad_signature"), expected.count(401))
        seen = witness.settled(self.stack.upstream, self.stack.listener_port, mark)
        self.assertEqual(len(seen), expected.count(200))
        witness.assert_credential_gone(self, seen, good)
        # The premise: requests were spread over several workers, so some waited on a fetch
        # another worker made (the lease), not only on their own worker's.
        port = self.stack.listener_port
        busy = [w for w in range(WORKERS)
                if sum(self.stack.envoy.stats(f"listener.127.0.0.1_{port}.worker_{w}.downstream_cx_total").values())]
        self.assertGreaterEqual(len(busy), 2, f"only workers {busy} got connections")
        self.assertEqual(self.stack.vm_health(), [])


if __name__ == "__main__":
    unittest.main()
