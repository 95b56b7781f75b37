"""Fault injection end to end: the JWKS endpoint misbehaves (jwks_server.FAULTS)
while a real Envoy serves traffic.

For every fault:
- cached keys keep serving, and the failed refetch is logged and counted;
- strict mode with no cached keys fails closed (401, never the upstream) with
  a clear log line;
- the filter recovers by itself once the IdP heals (no request needed);
- no worker VM panics, traps or gets replaced.
Also: a key removed from the JWKS stops verifying after the next fetch.
"""

import re
import time
import unittest

import harness
import tokens
from jwks_server import FAULTS
from stack import Stack, raw_request

KEY = tokens.SigningKey.rsa()

# The reason each fault must be logged with ("JWKS fetch from ... failed: <reason>").
REASONS = {
    "status_500": r"HTTP status 500",
    "garbage": r"unusable JWKS: not a JSON object",
    "not_a_jwks": r'unusable JWKS: no "keys" array',
    "empty_set": r"unusable JWKS: no usable key \(the set is empty\)",
    "huge_body": r"body of \d+ bytes exceeds \d+",
    "slow": r"HTTP status 504",
    "reset": r"HTTP status 503|no response \(connection failed or reset\)",
}


class FaultCase(harness.ReportsFailures, unittest.TestCase):
    """One stack per class; helpers to send tokens and read the filter's log."""

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(tokens.jwks(KEY), name=cls.__name__).start()
        cls.addClassCleanup(cls.stack.stop)
        cls.published = [KEY]

    def on_test_failure(self):
        self.stack.report_failure()

    def send(self, key):
        token = tokens.mint(key, iss=self.stack.issuer, aud=self.stack.resource)
        started = time.monotonic()
        status, _, body = raw_request(self.stack.listener_port, "POST", "/mcp",
                                      [("authorization", f"Bearer {token}")], b"{}")
        return status, time.monotonic() - started

    def publish(self, *keys):
        self.published.extend(keys)
        self.stack.jwks.set_document(tokens.jwks(*self.published))

    def fetch_failures_logged(self):
        pattern = re.escape(f"JWKS fetch from {self.stack.jwks.url} failed: ") + r"(.*); keeping the last good keys"
        return re.findall(pattern, self.stack.envoy_log())

    def assert_logged_reason(self, fault, logged_before):
        """Waits for a fetch-failure line naming this fault's reason (a fetch started under the
        previous fault may log its own reason first)."""
        pattern = re.compile(f"^(?:{REASONS[fault]})$")

        def logged():
            return any(pattern.match(r) for r in self.fetch_failures_logged()[logged_before:])

        try:
            harness.wait_until(logged, 10, what=f"the fetch-failure log line for {fault}")
        except TimeoutError:
            self.fail(f"{fault}: logged {self.fetch_failures_logged()[logged_before:]}")

    def refetch_with_an_unknown_kid(self):
        """Sends tokens with an unknown kid until one makes the filter refetch (the refetch is
        rate-limited by minRefreshIntervalSeconds): a condition, not a sleep. Each is refused."""
        fetches = self.stack.jwks.count

        def refetched():
            status, elapsed = self.send(tokens.SigningKey.rsa())
            self.assertEqual(status, 401)
            self.assertLess(elapsed, 5)
            return self.stack.jwks.count > fetches

        harness.wait_until(refetched, 10, interval=0.2, what="an unknown-kid refetch")

    def counter(self, name):
        return self.stack.envoy.counter(f"mcp_authn.{name}")

    def wait_for_fetch_without_traffic(self, fetches_before, timeout=15):
        """The filter's own retry (backoff after a failure) reaches the healed IdP."""
        harness.wait_until(lambda: self.stack.jwks.count > fetches_before, timeout, interval=0.1,
                           what="a background JWKS fetch")
        harness.wait_until(lambda: self.counter("jwks_fetch.success") > self.successes, timeout,
                           interval=0.1, what="a successful background fetch")

    def assert_vm_healthy(self):
        self.assertEqual(self.stack.vm_health(), [])


class CachedKeysSurviveFaultsTest(FaultCase):
    def test_each_fault(self):
        self.assertEqual(self.send(KEY)[0], 200)
        for fault in FAULTS:
            with self.subTest(fault):
                self.stack.jwks.set_fault(fault)
                logged_before = len(self.fetch_failures_logged())
                # A token with an unknown kid makes the filter refetch; that fetch fails.
                self.refetch_with_an_unknown_kid()
                self.assert_logged_reason(fault, logged_before)
                # The last good keys keep serving.
                self.assertEqual(self.send(KEY)[0], 200)
                self.assert_vm_healthy()
        # The IdP heals: the filter's own retry reaches it without any request.
        self.successes = self.counter("jwks_fetch.success")
        fetches = self.stack.jwks.count
        self.stack.jwks.set_fault(None)
        self.wait_for_fetch_without_traffic(fetches)
        self.assertEqual(self.send(KEY)[0], 200)
        self.assert_vm_healthy()


class StrictFailsClosedWithoutKeysTest(FaultCase):
    """The IdP misbehaves from the start: no key was ever cached."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack.jwks.set_fault(FAULTS[0])

    def test_each_fault(self):
        for fault in FAULTS:
            with self.subTest(fault):
                self.stack.jwks.set_fault(fault)
                logged_before = len(self.fetch_failures_logged())
                unavailable = self.counter("denied.keys_unavailable")

                def refused_until_a_fetch_fails():
                    # Requests fetch only once the retry backoff (1 s doubling, at most
                    # 10 s) has passed; every one of them is refused quickly meanwhile.
                    status, elapsed = self.send(KEY)
                    self.assertEqual(status, 401)
                    self.assertLess(elapsed, 5)
                    return len(self.fetch_failures_logged()) > logged_before

                harness.wait_until(refused_until_a_fetch_fails, 15, interval=0.5,
                                   what="the fetch-failure log line")
                self.assert_logged_reason(fault, logged_before)
                self.assertGreater(self.counter("denied.keys_unavailable"), unavailable)
                self.assertEqual(self.stack.upstream.count, 0, "a request passed without keys")
                self.assert_vm_healthy()
        # The retry backs off to at most 10 s, in the background as well as on requests,
        # so the filter recovers by itself once the IdP heals.
        self.stack.jwks.set_fault(None)
        harness.wait_until(lambda: self.send(KEY)[0] == 200, 20, interval=0.5, what="recovery")
        self.assert_vm_healthy()


class RemovedKeyTest(FaultCase):
    def test_removed_key_is_refused_after_the_next_fetch(self):
        retired = tokens.SigningKey.rsa()
        self.publish(retired)
        self.assertEqual(self.send(retired)[0], 200)
        self.published.remove(retired)
        self.stack.jwks.set_document(tokens.jwks(*self.published))
        # A token with an unknown kid makes the filter refetch; the new set lacks `retired`.
        self.refetch_with_an_unknown_kid()
        harness.wait_until(lambda: self.send(retired)[0] == 401, 5, what="the retired key refused")
        self.assertEqual(self.send(KEY)[0], 200)
        self.assert_vm_healthy()


if __name__ == "__main__":
    unittest.main()
