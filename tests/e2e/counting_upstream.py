"""A tiny in-process upstream that counts every request it receives.

The attack and soak suites put it behind Envoy instead of the MCP server: a
test reads `count` before and after a request, so "the upstream never saw
it" is a number that can fail, not an absence of evidence. A request is
recorded (witness.py's shape) as soon as its headers arrive, before its body
is read, so one the router opened and then reset counts too.
"""

import json
import threading

import witness
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the soak opens many connections at once; 5 would refuse some

    def handle_error(self, request, client_address):
        pass  # Envoy closing an idle upstream connection is not worth a traceback


class CountingUpstream:
    def __init__(self, keep_records=True):
        self._lock = threading.Lock()
        self._count = 0
        self.keep_records = keep_records  # the soak only counts: a record per request would grow
        self.seen = []
        self.last_headers = None
        # Optional scripted answer: respond(method, path, headers, body) -> (status, [(name,
        # value)], body), or None for the default echo of path and headers. A body that is not
        # bytes is an iterable of parts, streamed.
        self.respond = None
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def count(self):
        with self._lock:
            return self._count

    def since(self, mark):
        """The requests recorded after the first `mark` (witness.py's interface)."""
        assert self.keep_records, "records are off"
        with self._lock:
            return list(self.seen[mark:])

    def _handler(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                with upstream._lock:
                    upstream._count += 1
                    if upstream.keep_records:
                        upstream.seen.append(witness.record(self.command, self.path, self.headers.items()))
                    upstream.last_headers = headers
                length = int(self.headers.get("content-length") or 0)
                request_body = self.rfile.read(length) if length else b""
                scripted = upstream.respond and upstream.respond(self.command, self.path, headers, request_body)
                if scripted:
                    status, extra, body = scripted
                else:
                    status, extra = 200, [("content-type", "application/json")]
                    body = json.dumps({"path": self.path, "headers": headers}).encode()
                self.send_response(status)
                for name, value in extra:
                    self.send_header(name, value)
                if isinstance(body, bytes):
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                # An iterable of parts: sent chunked, each flushed before the next is asked for.
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for part in body:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

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
