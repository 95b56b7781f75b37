"""An in-process JWKS endpoint the tests can observe and steer.

It runs in a thread of the test process so a test can read the exact number
of fetches Envoy made, swap the key set (rotation), make it answer 500, or
start it late on a port chosen in advance (IdP down at Envoy start-up).
`set_fault` makes it misbehave in the ways of FAULTS (fault-injection suite).
"""

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JWKS_PATH = "/jwks.json"

# Injectable misbehaviours of the JWKS endpoint (set_fault); None serves normally.
FAULTS = ("status_500", "garbage", "not_a_jwks", "empty_set", "huge_body", "slow", "reset")
SLOW_SECONDS = 3  # past any timeoutMs the tests configure
HUGE_BYTES = 10 * 1024 * 1024


class JwksServer:
    def __init__(self, document, port):
        self.port = port
        self._lock = threading.Lock()
        self._document = document
        self._status = 200
        self._fault = None
        self._delay = 0.0
        self.cache_control = None  # sent as Cache-Control with the document when set
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

    def set_delay(self, seconds):
        """Wait `seconds` before each answer (a slow but working IdP)."""
        with self._lock:
            self._delay = seconds

    def set_fault(self, fault):
        """Misbehave as `fault` (one of FAULTS) on every JWKS request; None heals."""
        assert fault is None or fault in FAULTS, fault
        with self._lock:
            self._fault = fault

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?", 1)[0] != JWKS_PATH:
                    self._reply(404, {"error": "not_found"})
                    return
                with server._lock:
                    server._count += 1
                    status, document, fault = server._status, server._document, server._fault
                    delay = server._delay
                time.sleep(delay)
                if fault is not None:
                    self._misbehave(fault, document)
                elif status == 200:
                    self._reply(200, document)
                else:
                    self._reply(status, {"error": "injected_failure"})

            def _misbehave(self, fault, document):
                if fault == "status_500":
                    self._reply(500, {"error": "injected_failure"})
                elif fault == "garbage":
                    self._reply(200, raw=b"\x00\xff<html>not json{{{")
                elif fault == "not_a_jwks":
                    self._reply(200, {"issuer": "x", "jwks_uri": "y", "keys_": document["keys"]})
                elif fault == "empty_set":
                    self._reply(200, {"keys": []})
                elif fault == "huge_body":
                    # The real keys, padded to 10 MB: usable if the size bound did not hold.
                    padding = "x" * (HUGE_BYTES - len(json.dumps(document)))
                    self._reply(200, dict(document, padding=padding))
                elif fault == "slow":
                    time.sleep(SLOW_SECONDS)
                    try:
                        self._reply(200, document)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # Envoy gave up waiting, as it should
                elif fault == "reset":
                    # RST instead of an answer: linger on with a zero timeout, then close.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True

            def _reply(self, status, body=None, raw=None):
                payload = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                if server.cache_control:
                    self.send_header("cache-control", server.cache_control)
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
