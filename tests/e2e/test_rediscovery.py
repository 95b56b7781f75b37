"""Discovered keys (`jwks` omitted, `provider` set): after a failed fetch from the discovered
`jwks_uri`, the filter asks the provider's metadata again (docs/keys.md), so a provider
that moved its keys is followed without a restart.
"""

import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
import tokens
from stack import Stack, raw_request

OLD_KEY, NEW_KEY = tokens.SigningKey.rsa(), tokens.SigningKey.rsa()


class Provider:
    """Metadata at the well-known paths naming `jwks_uri`; keys at /keys-a and /keys-b."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys_path = "/keys-a"
        self.broken = set()
        self.documents = {"/keys-a": tokens.jwks(OLD_KEY), "/keys-b": tokens.jwks(OLD_KEY, NEW_KEY)}
        self.requests = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with provider.lock:
                    provider.requests.append(self.path)
                    if self.path.startswith("/.well-known/"):
                        status, body = 200, {"issuer": provider.issuer,
                                             "jwks_uri": provider.issuer + provider.keys_path}
                    elif self.path in provider.documents and self.path not in provider.broken:
                        status, body = 200, provider.documents[self.path]
                    else:
                        status, body = 500, {"error": "broken"}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.url = self.issuer  # Stack reads it for the jwks entry, which DiscoveredStack drops
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def seen(self, path):
        with self.lock:
            return sum(1 for p in self.requests if p == path)

    def metadata_fetches(self):
        with self.lock:
            return sum(1 for p in self.requests if p.startswith("/.well-known/"))


class DiscoveredStack(Stack):
    def plugin_config(self):
        config = super().plugin_config()
        del config["jwks"]  # discovered from the provider's metadata
        config["provider"] = {"oidc": {"cluster": "jwks"}}
        return config


class RediscoveryTest(harness.ReportsFailures, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.provider = Provider()
        cls.stack = DiscoveredStack(None, name="rediscovery", jwks_server=cls.provider).start()
        cls.addClassCleanup(cls.stack.stop)

    def on_test_failure(self):
        self.stack.report_failure()

    def send(self, key):
        token = tokens.mint(key, iss=self.stack.issuer, aud=self.stack.resource)
        return raw_request(self.stack.listener_port, "POST", "/mcp", [("authorization", f"Bearer {token}")], b"{}")[0]

    def test_a_failed_discovered_fetch_discovers_again(self):
        self.assertEqual(self.send(OLD_KEY), 200)
        self.assertEqual((self.provider.metadata_fetches(), self.provider.seen("/keys-a")), (1, 1))
        # The provider moves its keys and the old location breaks.
        with self.provider.lock:
            self.provider.keys_path = "/keys-b"
            self.provider.broken.add("/keys-a")
        # A token under the new key makes the filter refetch from /keys-a (once the default
        # 30 s minRefreshIntervalSeconds allows: discovered keys take default timings), which
        # fails; the next attempt (after the 1 s backoff) reads the metadata again and follows
        # it to /keys-b.
        harness.wait_until(lambda: self.send(NEW_KEY) == 200, 50, interval=0.5, what="the new key accepted")
        self.assertGreaterEqual(self.provider.seen("/keys-a"), 2)
        self.assertEqual(self.provider.metadata_fetches(), 2)
        self.assertGreaterEqual(self.provider.seen("/keys-b"), 1)
        self.assertEqual(self.send(OLD_KEY), 200)


if __name__ == "__main__":
    unittest.main()
