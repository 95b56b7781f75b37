"""One protected stack for the hardening suites: a counting upstream, a JWKS
server and an Envoy running the filter, started together and stopped by pid.

    stack = Stack(jwks_document, mode="strict").start()
    ...
    stack.stop()
"""

import os
import shutil
import socket
import sys

import harness
from counting_upstream import CountingUpstream
from jwks_server import JwksServer


class Stack:
    def __init__(self, jwks_document, *, name="stack", mode="strict", concurrency=1,
                 jwks_options=None, jwks_server=None, plugin_extra=None, buffer=False):
        self.name = name
        self.mode = mode
        self.concurrency = concurrency
        self.jwks_options = {"timeoutMs": 1000, "cacheDurationSeconds": 300, "minRefreshIntervalSeconds": 1}
        self.jwks_options.update(jwks_options or {})
        self.jwks = jwks_server or JwksServer(jwks_document, harness.free_port())
        self.plugin_extra = plugin_extra or {}  # merged into the plugin config (mcpAuthorization, ...)
        self.buffer = buffer  # envoy.filters.http.buffer after the filter (docs/mcp-authorization.md)
        self.upstream = CountingUpstream()
        self.log_dir = harness.new_log_dir(name)
        self.envoy = None
        self.keep_logs = False  # set by report_failure: a failed run keeps its logs
        self.listener_port = harness.free_port()
        self.issuer = f"http://127.0.0.1:{self.jwks.port}"
        self.resource = f"http://127.0.0.1:{self.listener_port}/mcp"

    def plugin_config(self):
        return {
            "issuer": self.issuer,
            "jwks": dict(url=self.jwks.url, cluster="jwks", **self.jwks_options),
            "resourceMetadata": {"resource": self.resource},
            "mode": self.mode,
            **self.plugin_extra,
        }

    def start(self):
        if not os.path.isfile(harness.WASM_PATH):
            raise RuntimeError(f"{harness.WASM_PATH} is missing: build it with scripts/build.sh")
        try:
            self.upstream.start()
            self.jwks.start()
            admin_port = harness.free_port()
            config = harness.bootstrap(
                listener_port=self.listener_port,
                admin_port=admin_port,
                upstream_port=self.upstream.port,
                jwks_port=self.jwks.port,
                http_filters=[harness.wasm_filter(self.plugin_config())]
                + ([harness.buffer_filter()] if self.buffer else []),
            )
            self.envoy = harness.Envoy(config, listener_port=self.listener_port, admin_port=admin_port,
                                       log_dir=self.log_dir, concurrency=self.concurrency, name="envoy")
            self.envoy.wait_ready()
            self.vm_created = self._vms_created()
        except BaseException:
            self.keep_logs = True
            self.stop()
            raise
        return self

    def stop(self):
        if self.envoy is not None:
            self.envoy.stop()
        self.jwks.stop()
        self.upstream.stop()
        if not self.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def envoy_log(self):
        with open(self.envoy.process.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def vm_health(self):
        """Problems showing a worker VM crashed or panicked: log lines and non-zero stats."""
        problems = [line for line in self.envoy_log().splitlines() if _vm_trouble(line.lower())]
        stats = self.envoy.stats("^wasm\\.")
        problems += [f"{k}={v}" for k, v in stats.items() if ("fail" in k or "reload" in k) and v]
        if self._vms_created() != self.vm_created:  # a crashed VM is replaced by a new one
            problems.append(f"wasm VMs created: {self.vm_created} at start, {self._vms_created()} now")
        return problems

    def _vms_created(self):
        return self.envoy.stats("^wasm\\.envoy\\.wasm\\.runtime\\.v8\\.created$")

    def report_failure(self):
        self.keep_logs = True
        print(f"\n--- {self.name}: logs kept in {self.log_dir}; Envoy log tail ---\n"
              f"{self.envoy.process.log_tail() if self.envoy else ''}\n--- end ---", file=sys.stderr)


def _vm_trouble(line):
    return (any(s in line for s in ("panicked", "wasm trap", "runtimeerror", "vm failed", "plugin failed"))
            or ("function: proxy_" in line and "failed" in line))


def raw_request(port, method, path, headers, body=b"", timeout=10):
    """Send one HTTP/1.1 request byte for byte (repeated and non-ASCII headers allowed; bytes
    names or values go out unchanged).

    Returns (status, headers dict with lower-case names, body); status is None when
    Envoy closed the connection without an answer.
    """
    lines = [f"{method} {path} HTTP/1.1", f"host: 127.0.0.1:{port}", "connection: close",
             f"content-length: {len(body)}"]
    raw = [line.encode("utf-8") for line in lines]
    # A name or value given as bytes is sent as it is (obs-text, bytes that are not UTF-8).
    raw += [_raw(name) + b": " + _raw(value) for name, value in headers]
    request = b"\r\n".join(raw) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Envoy may answer and close before reading it all (431)
        data = b""
        try:
            # Read to the end of the body, not to EOF: Envoy delays closing after a local
            # reply (delayed_close_timeout, 1 s), which would cost a second per request.
            while (chunk := sock.recv(65536)):
                data += chunk
                head, sep, rest = data.partition(b"\r\n\r\n")
                length = _content_length(head) if sep else None
                if length is not None and len(rest) >= length:
                    break
        except ConnectionResetError:
            pass
    if not data:
        return None, {}, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, rest


def _raw(text):
    return text if isinstance(text, bytes) else text.encode("utf-8")


def _content_length(head):
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value.strip())
    return None
