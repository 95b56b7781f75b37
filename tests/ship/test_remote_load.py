"""Envoy loading the module over HTTP (`vm_config.code.remote`), with a sha256 pin.

What Envoy 1.40 does (observed, and asserted below): the listener's init waits for the
fetch, then Envoy turns ready either way. With the right sha256 the filter runs (401 for a
request without a token). With a wrong one, every attempt is rejected ("Retry limit
exceeded"), `wasm.remote_load_fetch_failures` counts it, the plugin is marked failed
("Plugin configured to fail closed failed to load"), and every request gets a bare 503
from Envoy: nothing reaches the upstream, so a bad module fails closed.
"""

import functools
import http.server
import json
import os
import shutil
import sys
import threading
import unittest

from ship import ROOT, WASM_PATH, harness, sha256_file


class _CountingUpstream(http.server.BaseHTTPRequestHandler):
    """An upstream that answers 200 and counts requests, to prove none got through."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.hits += 1
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


class RemoteLoadCase(unittest.TestCase):
    """One Envoy fetching dist/mcp_authn.wasm from a loopback file server."""

    SHA256 = None  # subclasses: the pin given to Envoy

    @classmethod
    def setUpClass(cls):
        cls.log_dir = harness.new_log_dir(cls.__name__)
        cls.keep_logs = True  # until set-up succeeds and no test fails
        cls.addClassCleanup(cls.remove_logs)
        cls.files = _serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietFiles, directory=os.path.dirname(WASM_PATH))))
        cls.addClassCleanup(cls.files.server_close)
        cls.addClassCleanup(cls.files.shutdown)
        cls.upstream = _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingUpstream))
        cls.upstream.hits = 0
        cls.addClassCleanup(cls.upstream.server_close)
        cls.addClassCleanup(cls.upstream.shutdown)

        listener_port, admin_port = harness.free_port(), harness.free_port()
        with open(os.path.join(ROOT, "envoy", "demo", "demo-jwks.json")) as f:
            jwks = json.load(f)
        wasm = harness.wasm_filter({
            "issuer": "https://idp.example.com",
            "jwks": {"inline": jwks},
            "resourceMetadata": {"resource": f"http://127.0.0.1:{listener_port}/mcp"},
        })
        files_port = cls.files.server_address[1]
        wasm["typed_config"]["config"]["vm_config"]["code"] = {
            "remote": {
                "http_uri": {
                    "uri": f"http://127.0.0.1:{files_port}/{os.path.basename(WASM_PATH)}",
                    "cluster": "wasm_files",
                    "timeout": "5s",
                },
                "sha256": cls.SHA256,
                # Bounded: two attempts, short backoff, so a bad pin settles in seconds.
                "retry_policy": {
                    "retry_back_off": {"base_interval": "0.2s", "max_interval": "1s"},
                    "num_retries": 1,
                },
            }
        }
        config = harness.bootstrap(
            listener_port=listener_port,
            admin_port=admin_port,
            upstream_port=cls.upstream.server_address[1],
            jwks_port=harness.free_port(),  # unused: the keys are inline
            http_filters=[wasm],
        )
        config["static_resources"]["clusters"].append(harness._static_cluster("wasm_files", files_port))
        cls.envoy = harness.Envoy(config, listener_port=listener_port, admin_port=admin_port,
                                  log_dir=cls.log_dir)
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready(timeout=30)
        cls.keep_logs = False

    @classmethod
    def remove_logs(cls):
        """Runs last (cleanups are LIFO); logs of a failed class are kept."""
        if cls.keep_logs:
            print(f"\nlogs kept in {cls.log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.log_dir, ignore_errors=True)

    def run(self, result=None):
        """Print the tail of Envoy's log when this test fails or errors."""
        before = len(result.failures) + len(result.errors) if result else 0
        outcome = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            type(self).keep_logs = True
            print(f"\n--- {self.id()}: Envoy log tail ---\n{self.envoy.process.log_tail()}\n--- end ---",
                  file=sys.stderr)
        return outcome

    def remote_load_stats(self):
        stats = self.envoy.stats(r"^wasm\.remote_load_fetch_")
        return stats["wasm.remote_load_fetch_successes"], stats["wasm.remote_load_fetch_failures"]

    def log(self):
        with open(self.envoy.process.log_path, errors="replace") as f:
            return f.read()


class RightSha256Test(RemoteLoadCase):
    SHA256 = sha256_file(WASM_PATH)

    def test_module_is_fetched_once_and_the_filter_answers_401(self):
        status, headers, _ = harness.http_request(self.envoy.listener_port, "GET", "/mcp")
        self.assertEqual(status, 401)
        self.assertIn("resource_metadata=", headers["www-authenticate"])
        self.assertEqual(self.remote_load_stats(), (1, 0))
        self.assertEqual(self.envoy.counter("mcp_authn.denied.missing"), 1)
        self.assertEqual(self.upstream.hits, 0)


class WrongSha256Test(RemoteLoadCase):
    # The module's sha256 with its first byte flipped: well-formed, never matching.
    SHA256 = "%02x" % (int(sha256_file(WASM_PATH)[:2], 16) ^ 0xFF) + sha256_file(WASM_PATH)[2:]

    def test_envoy_refuses_the_module_and_fails_closed(self):
        self.assertEqual(self.remote_load_stats(), (0, 1))
        self.assertIn("Plugin configured to fail closed failed to load", self.log())
        # The module never ran: none of its metrics exist.
        self.assertEqual(self.envoy.stats(r"^wasmcustom\.mcp_authn\."), {})
        for _ in range(3):
            status, _, body = harness.http_request(self.envoy.listener_port, "GET", "/mcp")
            self.assertEqual((status, body), (503, b""))
        self.assertEqual(self.upstream.hits, 0)


if __name__ == "__main__":
    unittest.main()
