"""A tiny in-process upstream that counts every request it receives.

The attack and soak suites put it behind Envoy instead of the MCP server: a
test reads `count` before and after a request, so "the upstream never saw
it" is a number that can fail, not an absence of evidence.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the soak opens many connections at once; 5 would refuse some

    def handle_error(self, request, client_address):
        pass  # Envoy closing an idle upstream connection is not worth a traceback


class CountingUpstream:
    def __init__(self):
        self._lock = threading.Lock()
        self._count = 0
        self.last_headers = None
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def count(self):
        with self._lock:
            return self._count

    def _handler(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with upstream._lock:
                    upstream._count += 1
                    upstream.last_headers = headers
                body = json.dumps({"path": self.path, "headers": headers}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args):
                pass

        return Handler

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
