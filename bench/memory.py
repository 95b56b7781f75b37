"""Memory of Envoy with the filter (run by scripts/bench-memory.sh): what grows, and where it stops.

Each scenario runs its own Envoy (V8, loopback, free ports) so one scenario's memory never shows up in
another's. It reads the Envoy process's resident set (VmRSS, /proc) and Envoy's own allocator stats
(`server.memory_allocated`: tcmalloc bytes in use, which V8 does not use for its heap or for the Wasm
linear memory; those are mapped by V8 itself and show only in the RSS).

Scenarios, for each --concurrency in MEMORY_CONCURRENCY (default "1 2"):
  nofilter   Envoy with the router only: the baseline.
  keys       the filter with a remote 64-key JWKS (32 RSA-2048, 32 P-256), then
               - one request (the keys fetched and parsed in every worker that sees traffic),
               - one token per key (every key used once: the ES256 per-key tables built),
               - `verifiedTokenCache.capacity` distinct tokens (the cache full),
               - four times as many again (the cache stays at its bound, so memory must not grow),
               - the cache refilled with tokens near `maxTokenBytes` (8 KiB): its worst case.
  paused     the filter whose JWKS server holds the fetch; 100 concurrent requests wait for keys
             (`jwks.timeoutMs` 20 s), measured while they wait, and after the keys arrive.

Environment: MEMORY_CONCURRENCY, MEMORY_CACHE (capacity, default 1024), ENVOY (set by the wrapper).
"""

import base64
import concurrent.futures
import http.client
import http.server
import json
import os
import re
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import jwt  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

import bench  # noqa: E402
import render  # noqa: E402
import tokens  # noqa: E402

ENVOY = os.environ.get("ENVOY", "envoy")
PAUSED = 100


def b64int(value, length=None):
    raw = value.to_bytes(length or (value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def generated_keys(rsa_count, ec_count):
    """(private key, alg, public JWK) for fresh keys: the JWKS is bigger than any test key file."""
    out = []
    for i in range(rsa_count):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = key.public_key().public_numbers()
        out.append((key, "RS256", {"kty": "RSA", "kid": f"mem-rsa-{i}", "alg": "RS256", "use": "sig",
                                   "n": b64int(numbers.n), "e": b64int(numbers.e)}))
    for i in range(ec_count):
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        out.append((key, "ES256", {"kty": "EC", "kid": f"mem-ec-{i}", "alg": "ES256", "use": "sig",
                                   "crv": "P-256", "x": b64int(numbers.x, 32),
                                   "y": b64int(numbers.y, 32)}))
    return out


def mint(key, alg, kid, index, now, pad=0):
    claims = {"pad": "x" * pad} if pad else {}
    claims |= {"iss": tokens.ISSUER, "aud": tokens.RESOURCE, "sub": f"mem-{index}", "jti": f"mem-{now}-{index}",
              "iat": now, "nbf": now - 60, "exp": now + 3600}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


class JwksServer:
    """Serves one JWKS on loopback; with `hold` set, a fetch waits until `release()`."""

    def __init__(self, jwks, hold=False):
        body = json.dumps(jwks).encode()
        released = threading.Event()
        if not hold:
            released.set()
        self.released = released
        self.fetches = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.fetches += 1
                released.wait(timeout=60)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def release(self):
        self.released.set()

    def stop(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def bootstrap(port, admin_port, wasm_path, jwks_port, cache):
    filters = []
    clusters = []
    if jwks_port is not None:
        config = {
            "issuer": tokens.ISSUER,
            "audiences": [tokens.RESOURCE],
            "jwks": {"url": f"http://127.0.0.1:{jwks_port}/jwks.json", "cluster": "jwks", "timeoutMs": 20000},
            "resourceMetadata": {"resource": tokens.RESOURCE},
            "verifiedTokenCache": {"capacity": cache},
        }
        filters.append(render.wasm_filter(wasm_path, "memory", config))
        clusters.append({
            "name": "jwks", "type": "STATIC", "connect_timeout": "2s",
            "load_assignment": {"cluster_name": "jwks", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": jwks_port}}}}]}]},
        })
    filters.append({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "memory",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
        "http_filters": filters,
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{"name": "memory", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                           "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                            "typed_config": hcm}]}]}],
            "clusters": clusters,
        },
    }


class Envoy:
    def __init__(self, log_dir, name, concurrency, wasm_path, jwks_port, cache):
        self.port = bench.free_port()
        self.admin_port = bench.free_port()
        path = os.path.join(log_dir, f"{name}-c{concurrency}.json")
        with open(path, "w") as f:
            json.dump(bootstrap(self.port, self.admin_port, wasm_path, jwks_port, cache), f)
        self.log_path = os.path.join(log_dir, f"{name}-c{concurrency}.log")
        self._log = open(self.log_path, "wb")
        argv = [ENVOY, "-c", path, "--concurrency", str(concurrency), "--disable-hot-restart", "-l", "warning"]
        self.proc = bench.subprocess.Popen(argv, stdout=self._log, stderr=bench.subprocess.STDOUT,
                                           stdin=bench.subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Envoy exited; see {self.log_path}")
            try:
                status, body = bench.http_get(self.admin_port, "/ready", timeout=1)
                if status == 200 and body.strip() == b"LIVE":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"Envoy not ready; see {self.log_path}")

    def stat(self, name):
        _, body = bench.http_get(self.admin_port, "/stats?filter=^" + re.escape(name) + "$", timeout=5)
        m = re.search(r": (\d+)", body.decode())
        return int(m.group(1)) if m else 0

    def snapshot(self):
        """(RSS MiB, tcmalloc MiB) after a short settle."""
        time.sleep(0.5)
        with open(f"/proc/{self.proc.pid}/status") as f:
            rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
        return rss_kb / 1024, self.stat("server.memory_allocated") / 2**20

    def get(self, token, timeout=30):
        return bench.http_get(self.port, "/mcp", {"authorization": f"Bearer {token}"}, timeout=timeout)[0]

    def stop(self):
        bench.kill_group(self.proc)
        self._log.close()


def send_all(envoy, token_list, workers=8):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        statuses = list(pool.map(envoy.get, token_list))
    bad = [s for s in statuses if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(statuses)} requests were not 200 (first: {bad[0]})")


def run(concurrency, log_dir, wasm_path, keys, cache):
    rows = []
    now = int(time.time())
    jwks = {"keys": [public for _, _, public in keys]}

    envoy = Envoy(log_dir, "nofilter", concurrency, None, None, cache)
    try:
        rows.append(("no filter, started", *envoy.snapshot()))
    finally:
        envoy.stop()

    server = JwksServer(jwks)
    envoy = Envoy(log_dir, "keys", concurrency, wasm_path, server.port, cache)
    try:
        rows.append(("filter, started (no request yet)", *envoy.snapshot()))
        key, alg, public = keys[0]
        send_all(envoy, [mint(key, alg, public["kid"], 0, now)], workers=1)
        rows.append(("64-key JWKS fetched and parsed", *envoy.snapshot()))
        send_all(envoy, [mint(k, a, p["kid"], i, now) for i, (k, a, p) in enumerate(keys)])
        rows.append(("every key used once (ES256 tables built)", *envoy.snapshot()))
        signer = keys[-1]
        fill = [mint(signer[0], signer[1], signer[2]["kid"], 1000 + i, now) for i in range(cache * concurrency)]
        send_all(envoy, fill)
        rows.append((f"verified-token cache full ({cache} per worker)", *envoy.snapshot()))
        more = [mint(signer[0], signer[1], signer[2]["kid"], 100000 + i, now) for i in range(4 * cache * concurrency)]
        send_all(envoy, more)
        rows.append((f"{4 * cache} more tokens per worker (cache at its bound)", *envoy.snapshot()))
        big = [mint(signer[0], signer[1], signer[2]["kid"], 300000 + i, now, pad=5800) for i in range(cache * concurrency)]
        send_all(envoy, big)
        size = len(big[0])
        rows.append((f"cache full of {size:,}-byte tokens (the 8 KiB limit's worst case)", *envoy.snapshot()))
    finally:
        envoy.stop()
        server.stop()

    server = JwksServer(jwks, hold=True)
    envoy = Envoy(log_dir, "paused", concurrency, wasm_path, server.port, cache)
    try:
        key, alg, public = keys[0]
        waiting = [mint(key, alg, public["kid"], 200000 + i, now) for i in range(PAUSED)]
        pool = concurrent.futures.ThreadPoolExecutor(PAUSED)
        futures = [pool.submit(envoy.get, t) for t in waiting]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and envoy.stat("http.memory.downstream_rq_active") < PAUSED:
            time.sleep(0.1)
        active = envoy.stat("http.memory.downstream_rq_active")
        rows.append((f"{active} requests paused for keys", *envoy.snapshot()))
        server.release()
        statuses = [f.result(timeout=40) for f in futures]
        pool.shutdown()
        if any(s != 200 for s in statuses):
            raise RuntimeError(f"paused requests: {sorted(set(statuses))}")
        rows.append(("the same requests, answered", *envoy.snapshot()))
    finally:
        envoy.stop()
        server.stop()
    return rows


def main():
    wasm_path = os.path.join(tokens.ROOT, "dist", "mcp_authn.wasm")
    cache = bench.env_int("MEMORY_CACHE", 1024)
    concurrencies = [int(c) for c in os.environ.get("MEMORY_CONCURRENCY", "1 2").split()]
    print("generating the 64-key JWKS ...", file=sys.stderr)
    keys = generated_keys(32, 32)
    log_dir = tempfile.mkdtemp(prefix="memory-", dir=os.path.join(tokens.ROOT, "target"))
    print(f"module: {wasm_path} ({os.path.getsize(wasm_path):,} bytes); logs: {log_dir}")
    for concurrency in concurrencies:
        rows = run(concurrency, log_dir, wasm_path, keys, cache)
        print(f"\n--concurrency {concurrency}\n")
        print("| state | Envoy RSS (MiB) | Envoy heap, tcmalloc (MiB) | RSS over no filter (MiB) |")
        print("|---|---:|---:|---:|")
        base = rows[0][1]
        for label, rss, heap in rows:
            print(f"| {label} | {rss:.1f} | {heap:.1f} | {rss - base:+.1f} |")


if __name__ == "__main__":
    main()
