"""What the Envoy-in-a-test Istio suites (test_istio_buffer, test_istio_tls) share: a quiet
loopback HTTP server for the upstream or the IdP, and an Envoy running Istio-rendered filters.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ship import harness


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers JSON."""

    def send_json(self, status, body):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LoopbackServer:
    """A threaded HTTP(S) server on 127.0.0.1 at a free port, served from a daemon thread.

    Handler errors are not printed: a reset stream or a refused handshake is what some
    tests provoke.
    """

    def __init__(self, handler_class, ssl_context=None):
        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self._httpd = Server(("127.0.0.1", 0), handler_class)
        if ssl_context is not None:
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def start_envoy(*, upstream_port, http_filters, log_dir, add_cleanup, customize=None, name="envoy"):
    """Envoy with `http_filters` in front of `upstream_port`, ready; `customize(bootstrap)` may
    add the clusters and secrets Istio would have generated. Its stop goes to `add_cleanup`
    (a test's addCleanup or a class's addClassCleanup) before the wait, so a failed start is
    stopped too."""
    listener_port, admin_port = harness.free_port(), harness.free_port()
    bootstrap = harness.bootstrap(
        listener_port=listener_port, admin_port=admin_port, upstream_port=upstream_port,
        jwks_port=harness.free_port(), http_filters=http_filters,
    )
    if customize:
        customize(bootstrap)
    envoy = harness.Envoy(bootstrap, listener_port=listener_port, admin_port=admin_port, log_dir=log_dir, name=name)
    add_cleanup(envoy.stop)
    envoy.wait_ready(timeout=30)
    return envoy
