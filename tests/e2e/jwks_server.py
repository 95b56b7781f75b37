"""An in-process JWKS endpoint the tests can observe and steer.

It runs in a thread of the test process so a test can read the exact number
of fetches Envoy made, swap the key set (rotation), make it answer 500, or
start it late on a port chosen in advance (IdP down at Envoy start-up).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JWKS_PATH = "/jwks.json"


class JwksServer:
    def __init__(self, document, port):
        self.port = port
        self._lock = threading.Lock()
        self._document = document
        self._status = 200
        self._count = 0
        self._httpd = None
        self._thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    @property
    def count(self):
        """Requests received for the JWKS path (any outcome)."""
        with self._lock:
            return self._count

    def set_document(self, document):
        with self._lock:
            self._document = document

    def set_status(self, status):
        """Answer every JWKS request with `status` (200 serves the document)."""
        with self._lock:
            self._status = status

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?", 1)[0] != JWKS_PATH:
                    self._reply(404, {"error": "not_found"})
                    return
                with server._lock:
                    server._count += 1
                    status, document = server._status, server._document
                if status == 200:
                    self._reply(200, document)
                else:
                    self._reply(status, {"error": "injected_failure"})

            def _reply(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
