"""Benchmark driver (run by scripts/bench.sh): one Envoy with every setup, interleaved wrk rounds.

For each Envoy --concurrency in BENCH_CONCURRENCY, it starts one Envoy (V8 runtime, loopback only,
free ports) with one listener per setup (see render.py), checks every case answers what it should, then
runs `rounds` rounds; each round runs every case once for `duration` seconds, in a rotated order,
so slow drift of the machine spreads over all cases. It reports the median over rounds of rps,
p50 and p99, and the target ratios from issue 18, and writes a Markdown report.

Environment (all optional):
  BENCH_QUICK=1          smoke run: 1 round x 2 s per case (about a minute in all)
  BENCH_ROUNDS           rounds per case (default 3; quick 1)
  BENCH_DURATION         seconds per case per round (default 4; quick 2)
  BENCH_WARMUP           seconds of untimed load per case before round 1 (default 1)
  BENCH_CONCURRENCY      Envoy worker counts, space-separated (default "1 2")
  BENCH_CONNECTIONS      wrk connections (default 16; one wrk thread)
  BENCH_POOL             distinct tokens per uncached pool (default 10000)
  BENCH_OUT              Markdown report path (default bench/RESULTS.md; quick: target/bench/RESULTS.quick.md)
  BENCH_TOOL             wrk (default) or oha (no uncached cases: oha cannot rotate headers)
  ENVOY                  Envoy binary (bash wrapper sets it from scripts/setup-envoy.sh)
  BENCH_CASES            only these case ids, space-separated (default: every case)
  BENCH_NOOP_WASM        the do-nothing filter (bench/noop-filter; the bash wrapper builds it); without
                         it the "noop proxy-wasm filter" case is skipped
  BENCH_COUNTED_WASM     the filter built with `hostcall-stats` and rewritten by bench/hostcalls (the bash
                         wrapper builds it); with it, hostcalls per request are counted (case id
                         "hostcalls" in BENCH_CASES; always in a full run)
"""

import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import render  # noqa: E402
import tokens  # noqa: E402
import workload  # noqa: E402

ROOT = tokens.ROOT
WASM_PATH = os.path.join(ROOT, "dist", "mcp_authn.wasm")
CACHE_DIR = os.path.join(ROOT, "target", "bench")
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"


# --------------------------------------------------------------------------- settings


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = env_int("BENCH_ROUNDS", 1 if QUICK else 3)
DURATION = env_int("BENCH_DURATION", 2 if QUICK else 4)
WARMUP = env_int("BENCH_WARMUP", 1)
CONCURRENCIES = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1 2").split()]
CONNECTIONS = env_int("BENCH_CONNECTIONS", 16)
POOL = env_int("BENCH_POOL", 10000)
TOOL = os.environ.get("BENCH_TOOL", "wrk")
OUT = os.environ.get("BENCH_OUT") or (
    os.path.join(CACHE_DIR, "RESULTS.quick.md") if QUICK else os.path.join(HERE, "RESULTS.md")
)
ENVOY = os.environ.get("ENVOY")
NOOP_WASM = os.environ.get("BENCH_NOOP_WASM") or None
COUNTED_WASM = os.environ.get("BENCH_COUNTED_WASM") or None
ONLY = set(os.environ.get("BENCH_CASES", "").split())

# --------------------------------------------------------------------------- cases

# (case id, label, listener, path, token kind, expected status, native counterpart)
# token kind: None, "single" (one RS256 token), "RS256"/"ES256" (round-robin pool)
CASES = [
    ("nofilter", "No filter (direct_response)", "nofilter", "/mcp", None, 200, None),
    ("wasm_noop", "Do-nothing Rust proxy-wasm filter (runtime floor)", "wasm_noop", "/mcp", None, 200, None),
    ("wasm_hostcalls", "Do-nothing filter making the cached path's hostcalls", "wasm_hostcalls", "/mcp", "single",
     200, None),
    ("native_cached", "Native jwt_authn, cache on, one RS256 token", "native_cache", "/mcp", "single", 200, None),
    ("wasm_cached", "Wasm filter, one RS256 token (cached)", "wasm", "/mcp", "single", 200, "native_cached"),
    ("native_rs256", "Native jwt_authn, cache off, RS256 pool", "native_nocache", "/mcp", "RS256", 200, None),
    ("wasm_rs256", "Wasm filter, cache off, RS256 pool (uncached)", "wasm_nocache", "/mcp", "RS256", 200,
     "native_rs256"),
    ("native_es256", "Native jwt_authn, cache off, ES256 pool", "native_nocache", "/mcp", "ES256", 200, None),
    ("wasm_es256", "Wasm filter, cache off, ES256 pool (uncached)", "wasm_nocache", "/mcp", "ES256", 200,
     "native_es256"),
    ("wasm_rs256_defcache", "Wasm filter, default cache (1024), RS256 pool", "wasm", "/mcp", "RS256", 200,
     "native_rs256"),
    ("native_notoken", "Native jwt_authn, no token (401)", "native_cache", "/mcp", None, 401, None),
    ("wasm_notoken", "Wasm filter, no token (401)", "wasm", "/mcp", None, 401, "native_notoken"),
    ("wasm_metadata", "Wasm filter, metadata GET", "wasm", METADATA_PATH, None, 200, None),
    ("mcp_nofilter", "MCP 2026-07-28 tools/call POST, buffer filter only", "post_nofilter", "/mcp", None, 200,
     None),
    ("mcp_norules", "MCP 2026-07-28 tools/call POST, Wasm filter (cached token, no rules) + buffer",
     "post_wasm", "/mcp", "single", 200, None),
    ("mcp_scopes", "MCP 2026-07-28 tools/call POST, Wasm filter (cached token, body check, no rules) + buffer",
     "post_wasm_scopes", "/mcp", "single", 200, None),
    ("mcp_rules", "MCP 2026-07-28 tools/call POST, Wasm filter (cached token, mcpAuthorization allows) + buffer",
     "post_wasm_rules", "/mcp", "single", 200, None),
    ("mcp_trusted", "MCP 2026-07-28 tools/call POST, Wasm filter (cached token, rules, decided from the headers) "
     "+ buffer", "post_wasm_trusted", "/mcp", "single", 200, None),
    ("mcp_rules_32k", "MCP 2026-07-28 tools/call POST, 32 KiB argument, rules with the body check + buffer",
     "post_wasm_rules", "/mcp", "single", 200, None),
    ("mcp_trusted_32k", "MCP 2026-07-28 tools/call POST, 32 KiB argument, rules from the headers + buffer",
     "post_wasm_trusted", "/mcp", "single", 200, None),
    ("mcp_legacy_nofilter", "MCP 2025-11-25 tools/call POST (no mirrored headers), buffer filter only",
     "post_nofilter", "/mcp", None, 200, None),
    ("mcp_legacy", "MCP 2025-11-25 tools/call POST, Wasm filter (cached token, the rules of mcp_trusted, decided "
     "from the body) + buffer", "post_wasm_trusted", "/mcp", "single", 200, None),
    ("mcp_notoken", "MCP 2026-07-28 tools/call POST without a token (401), Wasm filter (rules) + buffer",
     "post_wasm_rules", "/mcp", None, 401, "native_notoken_post"),
    ("native_notoken_post", "Native jwt_authn, the same POST without a token (401)", "native_cache", "/mcp", None,
     401, None),
    ("list_json_nofilter", "tools/list, 50 tools in JSON, buffer filter only", "list_nofilter", "/mcp", None, 200,
     None),
    ("list_json", "tools/list, 50 tools in JSON, Wasm filter (cached token, list rules keep all 50) + buffer",
     "list_wasm", "/mcp", "single", 200, None),
    ("list_json_half", "tools/list, 50 tools in JSON, Wasm filter (cached token, list rules hide 25) + buffer",
     "list_wasm_half", "/mcp", "single", 200, None),
    ("list_json_scopes", "tools/list, 50 tools in JSON, Wasm filter (cached token, requiredScopes only: no rule, "
     "hides delete_file) + buffer", "list_wasm_scopes", "/mcp", "single", 200, None),
    ("list_sse_nofilter", "tools/list, 50 tools in one SSE event, buffer filter only", "list_nofilter",
     render.SSE_PATH, None, 200, None),
    ("list_sse", "tools/list, 50 tools in one SSE event, Wasm filter (list rules keep all 50) + buffer",
     "list_wasm", render.SSE_PATH, "single", 200, None),
    ("list_sse_half", "tools/list, 50 tools in one SSE event, Wasm filter (list rules hide 25) + buffer",
     "list_wasm_half", render.SSE_PATH, "single", 200, None),
    ("servers_1", "Wasm filter, `servers` with 1 server, one RS256 token (cached)", "wasm_servers1", "/mcp",
     "single", 200, None),
    ("servers_10", "Wasm filter, `servers` with 10, the request selects the last (cached)", "wasm_servers10",
     "/mcp", "single", 200, None),
    ("servers_100", "Wasm filter, `servers` with 100, the request selects the last (cached)", "wasm_servers100",
     "/mcp", "single", 200, None),
    ("servers_routemeta", "Wasm filter, 100 servers selected by route metadata, the last (cached)",
     "wasm_routemeta100", "/mcp", "single", 200, None),
]
CASE = {c[0]: c for c in CASES}

# (method, extra headers, body) of the cases that are not a plain GET (bench/workload.py): a
# 2026-07-28 tools/call as the `mcp` 2.x client sends it (the SEP-2243 headers mirror the body),
# the same with a 32 KiB argument, a 2025-11-25 one (no mirrored headers), and a tools/list.
CALL = ("POST", workload.CALL_HEADERS, workload.CALL_BODY)
REQUESTS = {cid: CALL for cid in ("mcp_nofilter", "mcp_norules", "mcp_scopes", "mcp_rules", "mcp_trusted",
                                  "mcp_notoken", "native_notoken_post")}
REQUESTS.update({cid: ("POST", workload.CALL_HEADERS, workload.CALL_BODY_32K)
                 for cid in ("mcp_rules_32k", "mcp_trusted_32k")})
REQUESTS.update({cid: ("POST", workload.LEGACY_CALL_HEADERS, workload.LEGACY_CALL_BODY)
                 for cid in ("mcp_legacy_nofilter", "mcp_legacy")})
LIST_CASES = ("list_json_nofilter", "list_json", "list_json_half", "list_json_scopes", "list_sse_nofilter", "list_sse",
              "list_sse_half")
REQUESTS.update({cid: ("POST", workload.LIST_HEADERS, workload.LIST_BODY) for cid in LIST_CASES})
# The no-filter counterpart of each POST case (the same request to the buffer filter alone), for
# the "÷ no-filter" column; GET cases divide by "nofilter".
BASE = {cid: "mcp_nofilter" for cid in REQUESTS}
BASE.update({"mcp_legacy": "mcp_legacy_nofilter", "mcp_legacy_nofilter": "mcp_legacy_nofilter",
             "list_json_nofilter": "list_json_nofilter", "list_json": "list_json_nofilter",
             "list_json_half": "list_json_nofilter", "list_json_scopes": "list_json_nofilter",
             "list_sse_nofilter": "list_sse_nofilter",
             "list_sse": "list_sse_nofilter", "list_sse_half": "list_sse_nofilter"})


def request_of(cid):
    return REQUESTS.get(cid, ("GET", {}, ""))

# Where issue 18 started (its "Now" column: same-run figures at ac5bca3, quiet 2-core machine), for
# the target summary.
START = {
    "cached ÷ no-filter": "0.69",
    "cached ÷ native jwt_authn (JWT cache on)": "0.75",
    "uncached RS256 ÷ native RS256 (cache off)": "0.32–0.43",
    "uncached ES256 ÷ native ES256 (cache off)": "0.70–0.88",
    "no-token 401 ÷ no-filter": "0.59",
}

# Added worker time per request over no-filter, as (label, wasm case, native case).
COSTS = [
    ("cached token", "wasm_cached", "native_cached"),
    ("no token (401)", "wasm_notoken", "native_notoken"),
    ("RS256, every token verified", "wasm_rs256", "native_rs256"),
    ("ES256, every token verified", "wasm_es256", "native_es256"),
    ("metadata GET", "wasm_metadata", None),
    ("do-nothing proxy-wasm filter (floor)", "wasm_noop", None),
    ("do-nothing filter + the cached path's hostcalls", "wasm_hostcalls", None),
]

# (label, numerator, denominator, target or None)
RATIOS = [
    ("cached ÷ no-filter", "wasm_cached", "nofilter", 0.80),
    ("cached ÷ native jwt_authn (JWT cache on)", "wasm_cached", "native_cached", 0.90),
    ("uncached RS256 ÷ native RS256 (cache off)", "wasm_rs256", "native_rs256", 0.50),
    ("uncached ES256 ÷ native ES256 (cache off)", "wasm_es256", "native_es256", 1.0),
    ("no-token 401 ÷ no-filter", "wasm_notoken", "nofilter", 0.80),
    ("metadata ÷ no-filter", "wasm_metadata", "nofilter", None),
    ("(ref) native no-token 401 ÷ no-filter", "native_notoken", "nofilter", None),
    ("(ref) native cached ÷ no-filter", "native_cached", "nofilter", None),
    ("(ref) do-nothing proxy-wasm filter ÷ no-filter", "wasm_noop", "nofilter", None),
    ("(ref) do-nothing + cached path's hostcalls ÷ no-filter", "wasm_hostcalls", "nofilter", None),
    ("(ref) cached ÷ do-nothing + cached path's hostcalls", "wasm_cached", "wasm_hostcalls", None),
    ("(ref) RS256 pool, default cache ÷ cache off", "wasm_rs256_defcache", "wasm_rs256", None),
    ("MCP 2026-07-28 tools/call: rules ÷ no rules", "mcp_rules", "mcp_norules", None),
    ("MCP 2026-07-28 tools/call: body check, no rules ÷ no rules", "mcp_scopes", "mcp_norules", None),
    ("MCP 2026-07-28 tools/call: rules ÷ no filter (buffer only)", "mcp_rules", "mcp_nofilter", None),
    ("MCP 2026-07-28 tools/call: no rules ÷ no filter (buffer only)", "mcp_norules", "mcp_nofilter", None),
    ("MCP 2026-07-28 tools/call: rules from the headers ÷ rules with the body check", "mcp_trusted", "mcp_rules",
     None),
    ("MCP 2026-07-28 tools/call: rules from the headers ÷ no filter (buffer only)", "mcp_trusted", "mcp_nofilter",
     None),
    ("MCP 2026-07-28 tools/call, 32 KiB argument: rules from the headers ÷ rules with the body check",
     "mcp_trusted_32k", "mcp_rules_32k", None),
    ("MCP 2025-11-25 tools/call: rules from the body ÷ no filter (buffer only)", "mcp_legacy",
     "mcp_legacy_nofilter", None),
    ("MCP tools/call, same rules and listener: 2025-11-25 from the body ÷ 2026-07-28 from the headers",
     "mcp_legacy", "mcp_trusted", None),
    ("tools/list, 50 tools, JSON: all kept ÷ no filter (buffer only)", "list_json", "list_json_nofilter", None),
    ("tools/list, 50 tools, JSON: 25 hidden ÷ no filter (buffer only)", "list_json_half", "list_json_nofilter",
     None),
    ("tools/list, 50 tools, SSE: all kept ÷ no filter (buffer only)", "list_sse", "list_sse_nofilter", None),
    ("tools/list, 50 tools, SSE: 25 hidden ÷ no filter (buffer only)", "list_sse_half", "list_sse_nofilter", None),
    ("tools/list: 25 hidden ÷ all kept (JSON)", "list_json_half", "list_json", None),
    ("tools/list: 25 hidden ÷ all kept (SSE)", "list_sse_half", "list_sse", None),
    ("tools/list, JSON: two rules per item ÷ requiredScopes only (no rule)", "list_json", "list_json_scopes", None),
    ("POST 401 (no token, connection: close) ÷ GET 401", "mcp_notoken", "wasm_notoken", None),
    ("POST 401 (no token, connection: close) ÷ no filter POST (buffer only)", "mcp_notoken", "mcp_nofilter", None),
    ("(ref) native jwt_authn: POST 401 ÷ GET 401", "native_notoken_post", "native_notoken", None),
    ("servers: 1 server ÷ the single-server config", "servers_1", "wasm_cached", None),
    ("servers: 10 ÷ 1 (match)", "servers_10", "servers_1", None),
    ("servers: 100 ÷ 1 (match)", "servers_100", "servers_1", None),
    ("servers: 100 by route metadata ÷ 1 (match)", "servers_routemeta", "servers_1", None),
]


# --------------------------------------------------------------------------- processes


class Stop(Exception):
    pass


def _on_signal(signum, _frame):
    raise Stop(f"signal {signum}")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def distinct_free_ports(n):
    """`n` free ports, all different (the kernel may hand out a just-closed port again)."""
    ports = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def http_exchange(port, path, headers=None, timeout=5, method="GET", body=None):
    """(status, response headers with lower-case names, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def http_get(port, path, headers=None, timeout=5, method="GET", body=None):
    status, _, reply = http_exchange(port, path, headers, timeout, method, body)
    return status, reply


def kill_group(proc, timeout=5):
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


class Envoy:
    def __init__(self, concurrency, log_dir, wasm_path, noop_path, counted_path=None):
        # Only the listeners the chosen cases use (BENCH_CASES): a 100-server config is not free.
        used = {case[2] for case in active_cases()} | (set(render.COUNTED_LISTENERS) if counted_path else set())
        names = [name for name in render.LISTENERS
                 if name in used and (name not in render.NOOP_LISTENERS or noop_path)]
        ports = distinct_free_ports(len(names) + 1)
        self.ports = dict(zip(names, ports))
        self.admin_port = ports[-1]
        self.config_path = os.path.join(log_dir, f"envoy-c{concurrency}.json")
        with open(self.config_path, "w") as f:
            json.dump(render.bootstrap(self.ports, self.admin_port, wasm_path, noop_path, counted_path), f,
                      indent=2)
        self.log_path = os.path.join(log_dir, f"envoy-c{concurrency}.log")
        self._log = open(self.log_path, "wb")
        argv = [ENVOY, "-c", self.config_path, "--concurrency", str(concurrency), "--disable-hot-restart",
                "-l", "warning"]
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Envoy exited during start-up; see {self.log_path}:\n{self.log_tail()}")
            try:
                status, body = http_get(self.admin_port, "/ready", timeout=1)
                if status == 200 and body.strip() == b"LIVE":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"Envoy not ready in {timeout}s; see {self.log_path}:\n{self.log_tail()}")

    def stats(self, pattern):
        _, body = http_get(self.admin_port, "/stats?filter=" + pattern, timeout=5)
        out = {}
        for line in body.decode().splitlines():
            m = re.fullmatch(r"(\S+): (\d+)", line.strip())
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def log_tail(self, lines=40):
        with open(self.log_path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")

    def stop(self):
        kill_group(self.proc)
        self._log.close()


# --------------------------------------------------------------------------- load tool


def run_wrk(port, path, token, token_file, duration, request=("GET", {}, "")):
    method, headers, body = request
    env = dict(os.environ, BENCH_PATH=path, BENCH_TOKEN=token or "", BENCH_TOKEN_FILE=token_file or "",
               BENCH_METHOD=method, BENCH_BODY=body,
               BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in headers.items()))
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "5s", "--latency",
            "-s", os.path.join(HERE, "wrk.lua"), f"http://127.0.0.1:{port}{path}"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=duration + 60)
    except BaseException:
        kill_group(proc)
        raise
    m = re.search(r"^BENCH (.*)$", out, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{out}")
    fields = dict(kv.split("=", 1) for kv in m.group(1).split())
    r = {k: float(v) for k, v in fields.items()}
    r["other_errors"] = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    return r


def run_oha(port, path, token, token_file, duration, request=("GET", {}, "")):
    if token_file:
        return None  # oha sends one fixed header set; the uncached pool needs wrk's Lua
    method, headers, body = request
    argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{duration}s", "-c", str(CONNECTIONS),
            "-m", method]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    if body:
        argv += ["-d", body]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        argv[argv.index("--output-format"):argv.index("--output-format") + 2] = ["-j"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"oha failed:\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(proc.stdout)
    statuses = {int(k): v for k, v in data.get("statusCodeDistribution", {}).items()}
    requests = sum(statuses.values())
    lat = data["latencyPercentiles"]
    return {
        "requests": requests,
        "rps": data["summary"]["requestsPerSec"],
        "p50_us": (lat.get("p50") or 0) * 1e6,
        "p90_us": (lat.get("p90") or 0) * 1e6,
        "p99_us": (lat.get("p99") or 0) * 1e6,
        "status_errors": sum(v for k, v in statuses.items() if not 200 <= k < 400),
        "other_errors": sum(data.get("errorDistribution", {}).values()),
    }


def load(port, path, token, token_file, duration, request=("GET", {}, "")):
    runner = run_oha if TOOL == "oha" else run_wrk
    return runner(port, path, token, token_file, duration, request)


# --------------------------------------------------------------------------- bench


def case_inputs(case, single_token, pools):
    kind = case[4]
    if kind == "single":
        return single_token, None
    if kind in ("RS256", "ES256"):
        return None, pools[kind]
    return None, None


def first_token(case, single_token, pools):
    token, token_file = case_inputs(case, single_token, pools)
    if token_file:
        with open(token_file) as f:
            return f.readline().strip()
    return token


def active_cases():
    return [c for c in CASES if (c[2] not in render.NOOP_LISTENERS or NOOP_WASM) and (not ONLY or c[0] in ONLY)]


def tamper(token):
    head, body, sig = token.split(".")
    sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    return ".".join((head, body, sig))


def preflight(envoy, single_token, pools):
    """One request per case with the expected status; and a forged signature must get 401."""
    problems = []
    for case in active_cases():
        cid, _, lst, path, kind, expected, _ = case
        token = first_token(case, single_token, pools)
        method, extra, payload = request_of(cid)
        headers = dict(extra, **({"Authorization": f"Bearer {token}"} if token else {}))
        status, reply_headers, body = http_exchange(envoy.ports[lst], path, headers, method=method,
                                                    body=payload or None)
        if status != expected:
            problems.append(f"{cid}: got {status}, expected {expected}: {body[:200]!r}")
        if cid in REQUESTS and cid not in LIST_CASES and status == 200 and body:
            problems.append(f"{cid}: the POST did not reach the direct_response: {body[:200]!r}")
        if cid in LIST_CASES:
            problems += list_preflight(cid, lst, path, status, reply_headers, body)
        if cid in ("mcp_notoken", "native_notoken_post"):
            problems += post_401_preflight(cid, reply_headers, body)
        if cid == "wasm_metadata" and tokens.RESOURCE.encode() not in body:
            problems.append(f"{cid}: metadata body lacks the resource: {body[:200]!r}")
        if token and lst not in render.NOOP_LISTENERS:  # the floors check nothing
            forged = dict(extra, Authorization=f"Bearer {tamper(token)}")
            status, _ = http_get(envoy.ports[lst], path, forged, method=method, body=payload or None)
            if status != 401:
                problems.append(f"{cid}: forged signature got {status}, expected 401")
        if cid in ("mcp_scopes", "mcp_rules", "mcp_trusted", "mcp_legacy"):
            problems += mcp_preflight(cid, envoy.ports[lst], path, headers)
        if lst in render.SERVER_COUNTS:
            problems += servers_preflight(cid, lst, envoy.ports[lst], headers)
    if problems:
        raise RuntimeError("preflight failed:\n  " + "\n  ".join(problems))


def mcp_preflight(cid, port, path, headers):
    """The mcpAuthorization listeners really decide: a denied tool (refused by the rules, or by the
    scope requirement: the bench token has no scopes) must not reach the direct_response (200 with
    an empty body). Nor must headers that disagree with the body, except under
    trustServerHeaderValidation, where reaching it shows that the body was not read. A 2025-11-25
    call is decided from its body even there: mirrored headers naming an allowed tool over a body
    naming a denied one must not reach it."""
    problems = []
    legacy = cid == "mcp_legacy"
    denied = workload.tools_call("delete_file", protocol=workload.LEGACY_PROTOCOL if legacy else workload.PROTOCOL)
    trusted = cid == "mcp_trusted"
    mirrored = {"Mcp-Method": "tools/call"} if legacy else {}
    # What answers a refused call: the scope step-up, the rules' hide answer, or, for headers that
    # disagree with a 2026-07-28 body, the -32020 mismatch.
    denial = (403, b"insufficient_scope") if cid == "mcp_scopes" else (200, b"Unknown tool: delete_file")
    mismatch = denial if legacy else (400, b"-32020")
    for what, name, reaches, answer in (("denied tool", "delete_file", False, denial),
                                        ("header/body mismatch", "echo", trusted, mismatch)):
        extra = dict(headers, **mirrored, **{"Mcp-Name": name})
        status, reply_headers, reply = http_exchange(port, path, extra, method="POST", body=denied)
        if (status == 200 and not reply) != reaches:
            problems.append(f"{cid}: {what} {'did not reach' if reaches else 'reached'} the upstream")
        elif not reaches and (status != answer[0] or answer[1] not in reply + str(reply_headers).encode()):
            problems.append(f"{cid}: {what}: expected {answer[0]} with {answer[1]!r}, got {status} {reply[:200]!r}")
    return problems


def list_preflight(cid, lst, path, status, headers, body):
    """A tools/list answer holds what the case claims: 50 tools in order without the filter or with
    rules that keep all, the 25 read-only ones (no writing tool) with rules that hide half, all but
    `delete_file` (whose scope the token lacks) with requiredScopes only; in the
    content type asked for (SSE: one `event: message`); marked `cacheScope: private` exactly when
    the filter rewrote it; and the request's id."""
    if status != 200:
        return []  # reported by the caller
    problems = []
    sse = path == render.SSE_PATH
    content_type = headers.get("content-type", "")
    if not content_type.startswith("text/event-stream" if sse else "application/json"):
        problems.append(f"{cid}: content-type {content_type!r}")
    try:
        message = workload.sse_data(body) if sse else json.loads(body)
        result = message["result"]
        names = [tool["name"] for tool in result["tools"]]
    except (ValueError, KeyError, TypeError) as e:
        return problems + [f"{cid}: not a tools/list result ({e!r}): {body[:200]!r}"]
    if message.get("id") != workload.LIST_ID:
        problems.append(f"{cid}: id {message.get('id')!r}, expected {workload.LIST_ID}")
    want = {"list_wasm_half": workload.READ_TOOLS,
            "list_wasm_scopes": [n for n in workload.TOOL_NAMES if n != "delete_file"]}.get(lst, workload.TOOL_NAMES)
    if names != want:
        problems.append(f"{cid}: {len(names)} tools, expected {len(want)}; missing "
                        f"{sorted(set(want) - set(names))}, should be hidden {sorted(set(names) - set(want))}")
    filtered = lst != "list_nofilter"
    if (result.get("cacheScope") == "private") != filtered:
        problems.append(f"{cid}: cacheScope {result.get('cacheScope')!r}: the answer was "
                        f"{'not ' if filtered else ''}rewritten by a filter")
    return problems


def post_401_preflight(cid, headers, body):
    """The POST without a token is answered by the challenge, before its body is read, so Envoy
    closes the connection (checked per run by counting connections); jwt_authn's challenge is a
    plain `Bearer`, the filter's names its metadata."""
    problems = []
    challenge = "Bearer" if cid.startswith("native") else "resource_metadata="
    if challenge not in headers.get("www-authenticate", ""):
        problems.append(f"{cid}: no challenge: {headers.get('www-authenticate')!r}")
    if headers.get("connection", "").lower() != "close":
        problems.append(f"{cid}: connection {headers.get('connection')!r}, expected close")
    return problems


def servers_preflight(cid, lst, port, headers):
    """The many-servers listeners really select: the bench token (for the last server) is refused
    by the first server, and a path of no server is refused with 404; by route metadata, every
    path is the last server's."""
    problems = []
    count = render.SERVER_COUNTS[lst]
    expected = {"/nowhere": 200 if lst in render.ROUTE_METADATA else 404}
    if count > 1 and lst not in render.ROUTE_METADATA:
        expected["/s0/mcp"] = 401
    for path, status_expected in expected.items():
        status, body = http_get(port, path, headers)
        if status != status_expected:
            problems.append(f"{cid}: {path} got {status}, expected {status_expected}: {body[:200]!r}")
    return problems


def check(case, r):
    """Problems with a run: wrong statuses or socket errors."""
    expected = case[5]
    if r is None:
        return []
    issues = []
    if expected < 400 and r["status_errors"]:
        issues.append(f"{int(r['status_errors'])} non-2xx")
    if expected >= 400 and r["status_errors"] != r["requests"]:
        issues.append(f"{int(r['requests'] - r['status_errors'])} unexpected 2xx/3xx")
    if r["other_errors"]:
        issues.append(f"{int(r['other_errors'])} socket errors/timeouts")
    return issues


# Hostcalls per request, counted by the rewritten module: (label, listener, token kind, expected status).
HOSTCALL_CASES = [
    ("cached token", "counted", "single", 200),
    ("no token (401)", "counted", None, 401),
    ("uncached RS256", "counted_nocache", "RS256", 200),
    ("uncached ES256", "counted_nocache", "ES256", 200),
]
HOSTCALL_PREFIX = "wasmcustom.mcp_authn.hostcalls."


def counting():
    return COUNTED_WASM and TOOL == "wrk" and (not ONLY or "hostcalls" in ONLY)


def settled_stats(envoy, pattern, requests_key):
    """The stats once no request is in flight and the counted VMs' tick (200 ms) has published
    every count: the request count stays put for 0.5 s, then five more ticks pass. (Idle ticks
    make calls of their own, so the hostcall counters never stand still.)"""
    last = envoy.stats(pattern).get(requests_key)
    for _ in range(50):
        time.sleep(0.5)
        now = envoy.stats(pattern).get(requests_key)
        if now == last:
            time.sleep(1.0)
            return envoy.stats(pattern)
        last = now
    raise RuntimeError("requests still arriving 25 s after the load ended")


def count_hostcalls(envoy, single_token, pools):
    """Per case: (label, requests, {import: calls per request}), from counter deltas over one load run.

    The counters are every proxy_* call the module made on the listener's worker VMs (its publishing
    on the tick left out), so this includes per-tick work; the request count is Envoy's own.
    """
    out = []
    for label, lst, kind, expected in HOSTCALL_CASES:
        pattern = f"{HOSTCALL_PREFIX.replace('.', '[.]')}|http[.]{lst}[.]downstream_rq_(total|[245]xx)$"
        requests_key = f"http.{lst}.downstream_rq_total"
        before = settled_stats(envoy, pattern, requests_key)
        token, token_file = case_inputs(("", "", lst, "/mcp", kind, expected, None), single_token, pools)
        load(envoy.ports[lst], "/mcp", token, token_file, 2)
        after = settled_stats(envoy, pattern, requests_key)
        def delta(name):
            return after.get(name, 0) - before.get(name, 0)
        requests = delta(requests_key)
        answered = delta(f"http.{lst}.downstream_rq_{expected // 100}xx")
        if requests <= 0 or answered != requests:
            raise RuntimeError(f"hostcall count {label}: {answered} of {requests} requests answered {expected}")
        per = {k[len(HOSTCALL_PREFIX):]: delta(k) / requests for k in after if k.startswith(HOSTCALL_PREFIX)}
        out.append((label, requests, {k: v for k, v in per.items() if v > 0}))
        print(f"  hostcalls/request {label:<16} {sum(per.values()):6.3f}  ({requests} requests)", flush=True)
    return out


def hostcall_lines(counts):
    kinds = sorted({k for _, _, per in counts for k in per})
    lines = ["| Path | requests | hostcalls/request | " + " | ".join(f"`{k}`" for k in kinds) + " |",
             "|---|---:|---:|" + "---:|" * len(kinds)]
    for label, requests, per in counts:
        cells = [f"{per[k]:.3f}" if k in per else "–" for k in kinds]
        lines.append(f"| {label} | {requests:,} | **{sum(per.values()):.3f}** | " + " | ".join(cells) + " |")
    return lines


def connection_stats(envoy, listener_name):
    """The listener's connections and requests so far (its HTTP connection manager's counters)."""
    prefix = f"http.{listener_name}.downstream_"
    stats = envoy.stats(f"^{re.escape(prefix)}(cx|rq)_total$")
    return stats.get(prefix + "cx_total", 0), stats.get(prefix + "rq_total", 0)


def conns_per_request(before, after):
    """New downstream connections per request over a run: about wrk's connections ÷ requests when
    they are kept alive, 1 when every response closes its connection."""
    requests = after[1] - before[1]
    return (after[0] - before[0]) / requests if requests > 0 else 0.0


def run_concurrency(concurrency, log_dir, wasm_path, noop_path, single_token, pools, counted_path=None):
    print(f"\n=== Envoy --concurrency {concurrency} ===", flush=True)
    envoy = Envoy(concurrency, log_dir, wasm_path, noop_path, counted_path)
    try:
        envoy.wait_ready()
        preflight(envoy, single_token, pools)
        cases = [c for c in active_cases() if not (TOOL == "oha" and c[4] in ("RS256", "ES256"))]
        if WARMUP > 0:
            print(f"warmup: {WARMUP}s per case", flush=True)
            for case in cases:
                token, token_file = case_inputs(case, single_token, pools)
                load(envoy.ports[case[2]], case[3], token, token_file, WARMUP, request_of(case[0]))
        runs = {c[0]: [] for c in cases}
        problems = []
        for rnd in range(ROUNDS):
            k = rnd % len(cases) if cases else 0
            order = cases[k:] + cases[:k]
            for case in order:
                token, token_file = case_inputs(case, single_token, pools)
                before = connection_stats(envoy, case[2])
                r = load(envoy.ports[case[2]], case[3], token, token_file, DURATION, request_of(case[0]))
                r["conns_per_request"] = conns_per_request(before, connection_stats(envoy, case[2]))
                runs[case[0]].append(r)
                issues = check(case, r)
                if issues:
                    problems.append(f"c{concurrency} round {rnd + 1} {case[0]}: {', '.join(issues)}")
                print(f"  c{concurrency} r{rnd + 1} {case[0]:<20} {r['rps']:>9.0f} rps  p50 {r['p50_us'] / 1000:6.2f} ms"
                      f"  p99 {r['p99_us'] / 1000:6.2f} ms  {r['conns_per_request']:.3f} conn/req"
                      f"{'  !! ' + ', '.join(issues) if issues else ''}", flush=True)
        hostcalls = count_hostcalls(envoy, single_token, pools) if counted_path and counting() else None
        stats = {k: v for k, v in envoy.stats("wasmcustom|jwt_authn|worker_[0-9]+.downstream_cx_total").items()
                 if not k.startswith(HOSTCALL_PREFIX)}
        if envoy.proc.poll() is not None:
            problems.append(f"c{concurrency}: Envoy died during the run; see {envoy.log_path}")
    finally:
        envoy.stop()
    return {"runs": runs, "problems": problems, "stats": stats, "ports": envoy.ports, "hostcalls": hostcalls}


def summarize(runs):
    out = {}
    for cid, rs in runs.items():
        if not rs:
            continue
        out[cid] = {
            "rps": statistics.median(r["rps"] for r in rs),
            "rps_min": min(r["rps"] for r in rs),
            "rps_max": max(r["rps"] for r in rs),
            "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
            "conns_per_request": statistics.median(r.get("conns_per_request", 0.0) for r in rs),
            "rounds": len(rs),
        }
    return out


def ratio(summary, num, den):
    if num in summary and den in summary and summary[den]["rps"] > 0:
        return summary[num]["rps"] / summary[den]["rps"]
    return None


# --------------------------------------------------------------------------- report


def sh(argv, cwd=ROOT):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60)
        return (p.stdout or p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def machine_info(wasm_path):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    envoy_version = sh([ENVOY, "--version"])
    m = re.search(r"version: (\S+)", envoy_version)
    wrk_version = sh(["wrk", "-v"]).splitlines()[0] if TOOL == "wrk" else sh(["oha", "--version"])
    git = sh(["git", "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
    with open(wasm_path, "rb") as f:
        module = f.read()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "envoy": m.group(1) if m else envoy_version,
        "rustc": sh(["rustc", "--version"]),
        "load_tool": wrk_version,
        "module_bytes": len(module),
        "module_sha256": hashlib.sha256(module).hexdigest(),
        "git": git + (" + uncommitted changes in src/Cargo" if dirty else "")
        + ("; module taken from dist/ as found (BENCH_NO_BUILD=1), not rebuilt from this tree"
           if os.environ.get("BENCH_NO_BUILD", "0") != "0" else "; module rebuilt by scripts/build.sh for this run"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def busy_processes(n=5):
    out = sh(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"])
    return [" ".join(line.split()) for line in out.splitlines()[:n]]


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}"


def table_lines(summary):
    lines = ["| Case | rps (median) | rps min–max | p50 ms | p99 ms | ÷ no-filter | ÷ native | new conns/request |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for cid, label, _, _, _, expected, native in CASES:
        s = summary.get(cid)
        if not s:
            lines.append(f"| {label} | skipped | | | | | | |")
            continue
        base = BASE.get(cid, "nofilter")  # a POST against the same POST to the buffer filter alone
        vs_nofilter = ratio(summary, cid, base) if cid != base else None
        vs_native = ratio(summary, cid, native) if native else None
        lines.append(f"| {label} | {s['rps']:,.0f} | {s['rps_min']:,.0f}–{s['rps_max']:,.0f} | {s['p50_ms']:.2f} "
                     f"| {s['p99_ms']:.2f} | {fmt_ratio(vs_nofilter)} | {fmt_ratio(vs_native)} "
                     f"| {s.get('conns_per_request', 0.0):.4f} |")
    return lines


def ratio_lines(summary):
    lines = ["| Ratio | Value | Target | Met? |", "|---|---:|---:|---|"]
    for label, num, den, target in RATIOS:
        value = ratio(summary, num, den)
        if target is None:
            met = ""
        elif value is None:
            met = "not measured"
        else:
            met = "**met**" if value >= target else "**not met**"
        lines.append(f"| {label} | {fmt_ratio(value)} | {'≥ ' + format(target, '.2f') if target else '–'} | {met} |")
    return lines


def added_cost_us(summary, cid, base="nofilter"):
    """Worker time added per request over `base` (no-filter), in µs: 1/rps - 1/rps(base).

    Meaningful at --concurrency 1, where one worker serves every request (when Envoy, not wrk,
    is the bottleneck); under CPU contention it includes the time other processes took.
    """
    if cid not in summary or base not in summary:
        return None
    return (1 / summary[cid]["rps"] - 1 / summary[base]["rps"]) * 1e6


def mcp_cost_lines(summary):
    """The 2026-07-28 tools/call: what the filter and its rules add to a buffered POST."""
    rows = [
        ("the filter, cached token, no rules (over buffer only)", "mcp_norules", "mcp_nofilter"),
        ("mcpAuthorization without rules: header check, body read and agreement (over no rules)",
         "mcp_scopes", "mcp_norules"),
        ("the five demo rules (over the body check without rules)", "mcp_rules", "mcp_scopes"),
        ("mcpAuthorization with the rules: header check, body read and agreement, rules (over no rules)",
         "mcp_rules", "mcp_norules"),
        ("both (over buffer only)", "mcp_rules", "mcp_nofilter"),
        ("trustServerHeaderValidation: the rules from the headers, no body read (over no rules)",
         "mcp_trusted", "mcp_norules"),
        ("the body check the opt-in saves (rules with the body check over rules from the headers)",
         "mcp_rules", "mcp_trusted"),
        ("the same with a 32 KiB argument", "mcp_rules_32k", "mcp_trusted_32k"),
        ("a 2025-11-25 call with the same rules, decided from the body (over buffer only)", "mcp_legacy",
         "mcp_legacy_nofilter"),
        ("the same, over the 2026-07-28 call decided from the headers", "mcp_legacy", "mcp_trusted"),
        ("POST without a token, 401 and a new connection (over the GET 401)", "mcp_notoken", "wasm_notoken"),
        ("the same for native jwt_authn (POST 401 over GET 401)", "native_notoken_post", "native_notoken"),
        ("tools/list, 50 tools, JSON, two rules keep all (over buffer only)", "list_json", "list_json_nofilter"),
        ("tools/list, 50 tools, JSON, two rules hide 25 (over buffer only)", "list_json_half", "list_json_nofilter"),
        ("tools/list, 50 tools, JSON, requiredScopes only (over buffer only)", "list_json_scopes",
         "list_json_nofilter"),
        ("tools/list, 50 tools, SSE, two rules keep all (over buffer only)", "list_sse", "list_sse_nofilter"),
        ("tools/list, 50 tools, SSE, two rules hide 25 (over buffer only)", "list_sse_half", "list_sse_nofilter"),
    ]
    lines = ["| MCP POST path | µs/request |", "|---|---:|"]
    for label, cid, base in rows:
        cost = added_cost_us(summary, cid, base)
        if cost is not None:
            lines.append(f"| {label} | {cost:,.1f} |")
    return lines


def cost_lines(summary):
    lines = ["| Path | Wasm filter µs/request | Native jwt_authn µs/request | Wasm ÷ native |", "|---|---:|---:|---:|"]
    for label, wasm, native in COSTS:
        w = added_cost_us(summary, wasm)
        n = added_cost_us(summary, native) if native else None
        rel = f"{w / n:.1f}×" if w is not None and n and n > 0 else "–"
        def us(x):
            return "–" if x is None else ("≈0" if x < 0.5 else f"{x:,.0f}")

        lines.append(f"| {label} | {us(w)} | {us(n)} "
                     f"| {rel} |")
    return lines


def target_summary_lines(results, concurrencies):
    head = "| Ratio | Target | " + " | ".join(f"c{c}" for c in concurrencies) + " | Issue 18 start (c1) |"
    lines = [head, "|---|---:|" + "---|" * len(concurrencies) + "---:|"]
    for label, num, den, target in RATIOS:
        if target is None:
            continue
        cells = []
        for c in concurrencies:
            value = ratio(results[c]["summary"], num, den)
            if value is None:
                cells.append("not measured")
            else:
                cells.append(f"{value:.2f} {'met' if value >= target else '**not met**'}")
        lines.append(f"| {label} | ≥ {target:.2f} | " + " | ".join(cells) + f" | {START.get(label, '–')} |")
    return lines


def markdown(info, results, settings, load_before, load_after, busy):
    lines = ["# Benchmark results", ""]
    lines += [
        "Produced by `scripts/bench.sh`" + (" (BENCH_QUICK=1 smoke run)" if QUICK else "") + ". One Envoy per worker "
        "count holds every setup (one listener each, all ending in a `direct_response` 200); the cases run "
        f"in {settings['rounds']} interleaved round(s) of {settings['duration']} s each (order rotated per round, "
        f"{settings['warmup']} s warmup per case first), with `wrk -t1 -c{CONNECTIONS}`. Figures are the median "
        "over rounds; ratios divide median rps from the same Envoy run.",
        "",
        "## Machine and versions",
        "",
        f"- Date: {info['date']}",
        f"- CPU: {info['cpu']}, nproc {info['nproc']}, kernel {info['kernel']}",
        f"- Envoy: {info['envoy']} (V8 runtime, `--disable-hot-restart`, loopback)",
        f"- rustc: {info['rustc']}",
        f"- Load tool: {info['load_tool']}",
        f"- Module: `dist/mcp_authn.wasm`, {info['module_bytes']:,} bytes, sha256 `{info['module_sha256'][:16]}…`",
        f"- Source: {info['git']}",
        f"- Load average (1/5/15 min) before: {load_before}; after: {load_after}",
        "- Busiest processes at start (%CPU, command): " + "; ".join(busy),
        "",
        "## Setups",
        "",
        "- **No filter**: only the router; the route is a `direct_response` 200.",
        "- **Native**: `envoy.filters.http.jwt_authn`, `local_jwks` inline (the same RS256 2048-bit and P-256 "
        "keys as the filter), `forward: false`; one listener with `jwt_cache_config: {jwt_cache_size: 100}`, one "
        "without (Envoy's default).",
        "- **Wasm filter**: `dist/mcp_authn.wasm`, `jwks.inline` with the same keys. Listener `wasm` has the "
        "default `verifiedTokenCache` (1024 per worker); listener `wasm_nocache` sets "
        "`verifiedTokenCache.capacity: 0`, so every request verifies its signature.",
        f"- **Uncached** cases send a pool of {POOL:,} distinct valid tokens round-robin (wrk Lua, one pre-formatted "
        "request per token). The headline uncached rows use `capacity: 0`, so no cache can help; the extra row "
        "\"default cache, RS256 pool\" sends the same pool to the default-cache listener (more distinct tokens "
        "than its capacity).",
        "- **No token**: no `Authorization` header (the 401 challenge path). **Metadata**: "
        f"`GET {METADATA_PATH}`, answered by the filter.",
        "- **MCP 2026-07-28 `tools/call`**: a `POST /mcp` with `MCP-Protocol-Version: 2026-07-28`, "
        "`Mcp-Method: tools/call`, `Mcp-Name: echo` and the matching JSON-RPC body "
        f"({len(workload.CALL_BODY)} bytes), one cached RS256 token. Every POST listener ends in "
        "`envoy.filters.http.buffer` (what the README asks for under `mcpAuthorization`), so each reads the "
        "whole body before the `direct_response`: buffer only; the filter with its default config; the "
        "filter with only a `requiredScopes` entry for another tool (the body is read and checked against "
        "the headers, no rule runs); the filter with the README's five demo rules in `mcpAuthorization` "
        "(the first allows `echo`); the same rules with `trustServerHeaderValidation` (decided from the "
        "headers, the body never read by the filter; the buffer filter still reads it); the last two again "
        "with a 32 KiB `message` argument. The "
        "÷ no-filter column of these rows divides by the buffer-only POST of the same request.",
        "- **MCP 2025-11-25 `tools/call`**: the same call as a 2025-11-25 client sends it "
        f"(`MCP-Protocol-Version: 2025-11-25`, no `Mcp-Method`/`Mcp-Name`, {len(workload.LEGACY_CALL_BODY)} "
        "bytes), to the buffer alone and to the `trustServerHeaderValidation` listener, which must decide it "
        "from the body (the preflight checks that mirrored headers naming `echo` over a body naming a denied "
        "tool get the hide answer there).",
        "- **POST without a token**: the 2026-07-28 `tools/call` with no `Authorization`, to the rules "
        "listener. The filter answers 401 at the headers, before the body is read, so Envoy adds "
        "`connection: close` and wrk opens a new connection for the next request; the \"new conns/request\" "
        "column (the listener's `downstream_cx_total` delta ÷ its `downstream_rq_total` delta over each run) "
        "shows it. wrk's latency starts when the request is written, so p50/p99 leave the reconnect out; "
        "rps includes it. Native jwt_authn gets the same POST for comparison: Envoy closes for any filter "
        "that answers before the request's body has arrived.",
        f"- **`tools/list`**: a 2026-07-28 `tools/list` POST ({len(workload.LIST_BODY)} bytes) answered by a "
        f"`direct_response` with {len(workload.TOOLS)} tool definitions (name, title, description, input "
        f"schema, annotations; {len(workload.LIST_RESULT):,} bytes) as `application/json`, or as one "
        "`event: message` of `text/event-stream`; to the buffer alone, and to the filter with two list "
        "rules that keep all 50 tools, or that hide the 25 writing ones (the same shape: the first rule "
        "allows the read-only names, the second everything for a token with `iss`, or only for one with "
        "the scope `tools:write`, which the bench token lacks), or with a `requiredScopes` entry only (no "
        "rule; every item is looked up, and `delete_file` is hidden: it needs `files:delete`). The preflight checks the count, the order, that no hidden "
        "name is left, the id and that the filter marked the result `cacheScope: private`.",
        "",
    ]
    try:
        overloaded = float(load_before.split()[0]) > (info["nproc"] or 1) * 0.75
    except (ValueError, IndexError):
        overloaded = False
    lines += ["## Targets (issue 18)", ""]
    lines += target_summary_lines(results, settings["concurrencies"])
    lines += [""]
    if overloaded:
        lines += [
            f"**Load conditions:** the machine was busy with other work during this run (load average {load_before} "
            f"at the start, {load_after} at the end, on {info['nproc']} CPUs). Envoy and wrk got only part of a "
            "CPU, so absolute rps are far below an idle machine's and vary between rounds (see min–max). The "
            "ratios come from interleaved rounds in the same Envoy, which cancels slow drift, but not the "
            "fast, uneven contention: treat differences under ~15% as noise. Re-run on an idle machine for "
            "publishable figures.",
            "",
        ]
    for c in settings["concurrencies"]:
        res = results[c]
        lines += [f"## Envoy `--concurrency {c}`", ""]
        lines += table_lines(res["summary"])
        lines += ["", "Ratios (same run):", ""]
        lines += ratio_lines(res["summary"])
        if c == 1:
            lines += ["", "Worker time each filter adds per request over no-filter (1/rps − 1/rps(no-filter); one "
                      "worker serves everything at `--concurrency 1`, so this approximates the filter's cost "
                      "per request, inflated by CPU contention):", ""]
            lines += cost_lines(res["summary"])
            mcp_costs = mcp_cost_lines(res["summary"])
            if len(mcp_costs) > 2:
                lines += ["", "The MCP POSTs (worker time added per request, as above):", ""]
                lines += mcp_costs
        wasm_stats = {k.replace("wasmcustom.", ""): v for k, v in res["stats"].items()
                      if k.startswith("wasmcustom.") and v}
        if wasm_stats:
            lines += ["", "Filter counters at the end (both wasm listeners): "
                      + ", ".join(f"`{k}` {v:,}" for k, v in sorted(wasm_stats.items()))]
        native_stats = {k.replace("http.", "", 1): v for k, v in res["stats"].items() if ".jwt_authn." in k and v}
        if native_stats:
            lines += ["", "Native jwt_authn counters at the end: "
                      + ", ".join(f"`{k}` {v:,}" for k, v in sorted(native_stats.items()))]
        if c > 1:
            per_worker = []
            for name, port in res["ports"].items():
                counts = [res["stats"].get(f"listener.127.0.0.1_{port}.worker_{w}.downstream_cx_total", 0)
                          for w in range(c)]
                per_worker.append(f"{name} {'/'.join(str(n) for n in counts)}")
            lines += ["", "Connections accepted per worker (worker 0/1/…, whole run incl. warmup; the kernel "
                      "spreads connections by SO_REUSEPORT hash): " + ", ".join(per_worker)]
        if res.get("hostcalls"):
            lines += ["", "Hostcalls per request (the module built with `hostcall-stats` and rewritten by "
                      "`bench/hostcalls`, which counts every `proxy_*` import call in the VM; counter delta over "
                      "one 2 s load run ÷ Envoy's request count; per-tick work included):", ""]
            lines += hostcall_lines(res["hostcalls"])
        if res["problems"]:
            lines += ["", "**Problems:** " + "; ".join(res["problems"])]
        lines.append("")
    return "\n".join(lines) + "\n"


def main():
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if not ENVOY:
        sys.exit("set ENVOY to the Envoy binary (scripts/bench.sh does)")
    if not os.path.exists(WASM_PATH):
        sys.exit(f"{WASM_PATH} missing: run scripts/build.sh")
    if TOOL == "wrk" and not shutil.which("wrk") or TOOL == "oha" and not shutil.which("oha"):
        sys.exit(f"{TOOL} not found")
    started = time.monotonic()
    load_before, busy = loadavg(), busy_processes()
    print(f"mode: {'quick' if QUICK else 'full'}; rounds {ROUNDS} x {DURATION}s, warmup {WARMUP}s, "
          f"concurrency {CONCURRENCIES}, wrk -t1 -c{CONNECTIONS}, pool {POOL}; load avg {load_before}", flush=True)
    pools = {}
    if TOOL == "wrk":
        for alg in ("RS256", "ES256"):
            pools[alg] = tokens.pool_file(alg, POOL, CACHE_DIR)
    single_token = tokens.single("RS256")
    log_dir = tempfile.mkdtemp(prefix="mcp-authn-bench-")
    # A private copy, so every Envoy of this run loads the same bytes even if dist/ is rebuilt meanwhile.
    wasm_path = os.path.join(log_dir, "mcp_authn.wasm")
    shutil.copyfile(WASM_PATH, wasm_path)
    counted_path = None
    if counting():
        counted_path = os.path.join(log_dir, "counted.wasm")
        shutil.copyfile(COUNTED_WASM, counted_path)
    noop_path = None
    if NOOP_WASM:
        noop_path = os.path.join(log_dir, "noop.wasm")
        shutil.copyfile(NOOP_WASM, noop_path)
    results = {}
    try:
        for c in CONCURRENCIES:
            res = run_concurrency(c, log_dir, wasm_path, noop_path, single_token, pools, counted_path)
            res["summary"] = summarize(res["runs"])
            results[c] = res
            print()
            print("\n".join(table_lines(res["summary"])))
            print()
            print("\n".join(ratio_lines(res["summary"])))
            if res["hostcalls"]:
                print()
                print("\n".join(hostcall_lines(res["hostcalls"])))
            for p in res["problems"]:
                print("PROBLEM:", p)
    except Stop as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 130
    info = machine_info(wasm_path)
    settings = {"rounds": ROUNDS, "duration": DURATION, "warmup": WARMUP, "concurrencies": CONCURRENCIES}
    report = markdown(info, results, settings, load_before, loadavg(), busy)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(report)
    raw = os.path.join(CACHE_DIR, f"results-{'quick' if QUICK else 'full'}.json")
    with open(raw, "w") as f:
        json.dump({"info": info, "settings": settings, "load_before": load_before, "load_after": loadavg(),
                   "busy": busy, "results": {str(k): v for k, v in results.items()}}, f,
                  indent=1)
    print(f"\nwrote {os.path.relpath(OUT, ROOT)} and {os.path.relpath(raw, ROOT)} "
          f"({time.monotonic() - started:.0f}s; logs in {log_dir})")
    return 1 if any(r["problems"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
