"""Process, port and Envoy plumbing for the end-to-end tests.

Rules every helper here follows: bind 127.0.0.1 only, pick ports by binding
port 0 (some fixed ports are taken on the test machines), bound every wait by a
timeout, and stop every started process by its process group, even when a
test fails, so nothing outlives the suite.
"""

import glob
import http.client
import json
import os
import re
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import envoy as envoy_package
from jwks_server import JwksServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WASM_PATH = os.path.join(ROOT, "dist", "mcp_authn.wasm")
HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    """A port that was free a moment ago (the OS picks it; we release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll `predicate` until it returns a truthy value; raise after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_request(port, method, path, headers=None, body=None, timeout=10):
    """One request on a fresh connection; returns (status, headers dict, body bytes).

    Header names are lower-cased. A fresh connection per request lets Envoy's
    listener spread requests across its worker threads.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


class Process:
    """A child process in its own session/process group, logging to a file."""

    def __init__(self, name, argv, log_dir, env=None):
        self.name = name
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=5):
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        if self.alive():
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()

    def log_tail(self, lines=60):
        with open(self.log_path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")


def start_server(name, argv, port, log_dir, timeout=30, env=None):
    """Start a fixture server and wait until it listens on `port`; returns the Process."""
    server = Process(name, argv, log_dir, env=env)
    try:
        wait_until(lambda: port_open(port) or not server.alive(), timeout, what=f"{name} port")
        if not server.alive():
            raise RuntimeError(f"{name} exited:\n{server.log_tail()}")
    except BaseException:
        server.stop()
        raise
    return server


def start_mcp_server(log_dir, timeout=20):
    """Start the FastMCP upstream on a free port; returns (Process, port)."""
    port = free_port()
    argv = [sys.executable, os.path.join(HERE, "mcp_server.py"), str(port)]
    return start_server("mcp_server", argv, port, log_dir, timeout), port


def start_gateway(cls, jwks_document, upstream_port, plugin_extra, customize=None):
    """A JWKS server and an Envoy running the filter in front of `upstream_port`, for a
    KeepsLogsOnFailure class's setUpClass: sets cls.jwks, cls.issuer, cls.resource and
    cls.envoy, each stopped by a class cleanup. `plugin_extra` is merged into the plugin
    config; `customize(config)` may add clusters and routes before Envoy starts."""
    cls.jwks = JwksServer(jwks_document, free_port())
    cls.jwks.start()
    cls.addClassCleanup(cls.jwks.stop)
    listener_port, admin_port = free_port(), free_port()
    cls.issuer = f"http://127.0.0.1:{cls.jwks.port}"
    cls.resource = f"http://127.0.0.1:{listener_port}/mcp"
    plugin = {
        "issuer": cls.issuer,
        "jwks": {"url": cls.jwks.url, "cluster": "jwks", "timeoutMs": 1000},
        "resourceMetadata": {"resource": cls.resource},
        **plugin_extra,
    }
    config = bootstrap(
        listener_port=listener_port,
        admin_port=admin_port,
        upstream_port=upstream_port,
        jwks_port=cls.jwks.port,
        http_filters=[wasm_filter(plugin)],
    )
    if customize:
        customize(config)
    cls.envoy = Envoy(config, listener_port=listener_port, admin_port=admin_port, log_dir=cls.log_dir)
    cls.addClassCleanup(cls.envoy.stop)
    cls.envoy.wait_ready()


def envoy_binary():
    hits = glob.glob(os.path.join(os.path.dirname(envoy_package.__file__), "_bin", "envoy"))
    if not hits:
        raise RuntimeError("envoy binary not found; run scripts/setup-envoy.sh")
    return hits[0]


def _static_cluster(name, port):
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(port)}}]}],
        },
    }


def add_cluster(config, name, port):
    """Add a STATIC cluster `name` at 127.0.0.1:`port` to a `bootstrap()` dict."""
    config["static_resources"]["clusters"].append(_static_cluster(name, port))
    return config


def _address(port):
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def wasm_filter(plugin_config):
    """The envoy.filters.http.wasm entry carrying `plugin_config` as a JSON string."""
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "mcp_authn",
                "root_id": "mcp_authn",
                "vm_config": {
                    "vm_id": "mcp_authn",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": WASM_PATH}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(plugin_config),
                },
            },
        },
    }


def buffer_filter(max_request_bytes=1048576):
    """Envoy's buffer filter, placed after this one when `mcpAuthorization` is set: the
    filter reads the body after letting the headers go on, and the buffer filter keeps the
    router from opening the upstream request of a call the filter then denies."""
    return {
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": max_request_bytes,
        },
    }


def bootstrap(*, listener_port, admin_port, upstream_port, jwks_port, http_filters):
    """An Envoy bootstrap (dict, written as JSON) for one test listener.

    The route sends everything to the MCP upstream with no route timeout
    because MCP responses may be long-lived SSE streams.
    """
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "mcp",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "mcp_server", "timeout": "0s"}}],
                }
            ]
        },
        "http_filters": list(http_filters) + [router],
    }
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": _address(listener_port),
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ],
            "clusters": [_static_cluster("mcp_server", upstream_port), _static_cluster("jwks", jwks_port)],
        },
    }


class Envoy:
    """A running Envoy with the rendered bootstrap; stop() kills its group."""

    def __init__(self, config, *, listener_port, admin_port, log_dir, concurrency=1, name="envoy"):
        self.listener_port = listener_port
        self.admin_port = admin_port
        # A dict is written as JSON; a str is YAML text (an example file, ports rewritten).
        self.config_path = os.path.join(log_dir, f"{name}.{'yaml' if isinstance(config, str) else 'json'}")
        with open(self.config_path, "w") as f:
            f.write(config) if isinstance(config, str) else json.dump(config, f, indent=2)
        argv = [
            envoy_binary(),
            "-c", self.config_path,
            "--concurrency", str(concurrency),
            "--disable-hot-restart",  # several Envoys may run at once
            "-l", "info",
            "--component-log-level", "wasm:debug",
        ]
        self.process = Process(name, argv, log_dir)

    def wait_ready(self, timeout=30):
        def ready():
            if not self.process.alive():
                raise RuntimeError(f"Envoy exited during start-up:\n{self.process.log_tail()}")
            try:
                status, _, body = http_request(self.admin_port, "GET", "/ready", timeout=1)
                return status == 200 and body.strip() == b"LIVE"
            except OSError:
                return False

        try:
            wait_until(ready, timeout, interval=0.1, what="Envoy /ready")
        except TimeoutError:
            raise TimeoutError(f"Envoy not ready in {timeout}s:\n{self.process.log_tail()}") from None
        return self

    def url(self, path="/mcp"):
        return f"http://127.0.0.1:{self.listener_port}{path}"

    def stats(self, pattern="mcp_authn"):
        """Stat name -> value for stats matching the RE2 `pattern` (admin /stats)."""
        _, _, body = http_request(self.admin_port, "GET", "/stats?filter=" + urllib.parse.quote(pattern, safe=""))
        result = {}
        for line in body.decode().splitlines():
            match = re.fullmatch(r"(\S+): (\d+)", line.strip())
            if match:
                result[match.group(1)] = int(match.group(2))
        return result

    def counter(self, metric):
        """Value of the filter's metric `metric` (e.g. "mcp_authn.allowed").

        Envoy 1.40 prints Wasm-defined metrics with a "wasmcustom." prefix; the
        filter defines all of them at start-up, so exactly one must exist (a
        renamed metric fails loudly instead of reading as 0). The filter hands its
        counts to Envoy on its 200 ms tick, so this reads them once they have settled.
        """
        name = "wasmcustom." + metric
        hits = self.settled_counters()
        if name not in hits:
            raise AssertionError(f"expected one stat for {metric}, got {sorted(hits)}")
        return hits[name]

    def settled_counters(self, timeout=20):
        """Every filter counter, once none has moved for three of the filter's ticks (the
        requests before this call have then been handed to Envoy)."""
        last = self.stats("^wasmcustom\\.mcp_authn\\.")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.65)
            now = self.stats("^wasmcustom\\.mcp_authn\\.")
            if now == last:
                return now
            last = now
        raise TimeoutError(f"filter counters still moving after {timeout}s")

    def stop(self):
        self.process.stop()


def new_log_dir(prefix):
    return tempfile.mkdtemp(prefix=f"mcp-authn-e2e-{prefix}-")


class ReportsFailures:
    """unittest.TestCase mixin: `on_test_failure()` runs after a test that failed or errored."""

    def on_test_failure(self):
        pass

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        outcome = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            self.on_test_failure()
        return outcome


class KeepsLogsOnFailure(ReportsFailures):
    """A class's log folder is deleted after a clean run, kept (and the `failure_report()`
    printed) when set-up or any test fails."""

    @classmethod
    def keep_logs_until_done(cls):
        """Call first in setUpClass; call `cls.setup_done()` once set-up succeeded."""
        cls.log_dir = new_log_dir(cls.__name__)
        cls.keep_logs = True
        cls.addClassCleanup(cls._remove_logs)

    @classmethod
    def setup_done(cls):
        cls.keep_logs = False

    @classmethod
    def _remove_logs(cls):
        if cls.keep_logs:
            print(f"\nlogs kept in {cls.log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.log_dir, ignore_errors=True)

    def failure_report(self):
        return f"Envoy log tail:\n{self.envoy.process.log_tail()}"

    def on_test_failure(self):
        type(self).keep_logs = True
        print(f"\n--- {self.id()} ---\n{self.failure_report()}\n--- end ---", file=sys.stderr)
