"""Bounded soak: mixed traffic through Envoy with 2 workers for N seconds, with
`mcpAuthorization` rules, list filtering (JSON and SSE), `claimsToHeaders`, a key rotation
and an IdP outage. Every answer is checked against a model (status, challenge, JSON-RPC
result or error, the filtered list), and so is what the upstream saw (request by request:
no credential, no `accept-encoding` on inspected POSTs, the claim header exactly the
token's `sub`, nothing for a denial). Envoy's RSS is sampled every second.

The rotation follows real IdPs: the new key is published first, and clients switch to it
ROTATION_LEAD_SECONDS later. During the outage (the JWKS answers 500) the cached keys keep
serving, so no expected answer changes.

Usage: python soak.py [seconds] [threads]      (scripts/soak.sh wraps it)
Exit status 1 on any wrong answer, any 5xx, anything wrong at the upstream, an upstream
count that does not match the forwarded requests, a VM problem, or RSS growth over the bound.
"""

import collections
import http.client
import json
import random
import statistics
import sys
import threading
import time

import tokens
from stack import Stack

ROTATION_LEAD_SECONDS = 2  # > minRefreshIntervalSeconds (1 s in Stack)
# Growth of the median RSS from the first third of the run to the last third. A leak of a
# kilobyte per request shows in a 10-minute run at the soak's rate; 15 s only checks it runs.
RSS_GROWTH_LIMIT_KB = 32 * 1024
TOOLS = ["delete_file", "echo", "system_status"]
AUTHZ = {
    "rules": ['mcp.tool.name == "echo"', 'mcp.tool.name == "delete_file"'],
    "requiredScopes": {"tools/call:delete_file": ["files:delete"]},
}
USERS = {"alice": "openid", "carol": "openid files:delete"}
LISTED = {"alice": ["echo"], "carol": ["delete_file", "echo"]}


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Upstream:
    """The scripted MCP upstream's answers, and its own checks of every request it sees."""

    def __init__(self):
        self.lock = threading.Lock()
        self.problems = []

    def __call__(self, method, path, headers, body):
        problems = []
        if "authorization" in headers:
            problems.append("authorization header reached the upstream")
        expected_user = headers.get("x-soak-user")
        if headers.get("x-mcp-user") != expected_user:
            problems.append(f"x-mcp-user {headers.get('x-mcp-user')!r}, token sub {expected_user!r}")
        if method == "POST" and "accept-encoding" in headers:
            problems.append("accept-encoding on an inspected POST")
        if headers.get("x-soak-denied"):
            problems.append(f"a denied request reached the upstream: {headers['x-soak-denied']}")
        if problems:
            with self.lock:
                self.problems.extend(problems)
        message = json.loads(body) if body else {}
        if message.get("method") == "tools/list":
            answer = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {
                "tools": [{"name": t, "inputSchema": {"type": "object"}} for t in TOOLS]}}).encode()
            if headers.get("x-soak-form") == "sse":
                note = b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"x"}}\n\n'
                return 200, [("content-type", "text/event-stream")], iter([note, b"data: " + answer + b"\n\n"])
            return 200, [("content-type", "application/json")], answer
        answer = {"jsonrpc": "2.0", "id": message.get("id"), "result": {"content": [{"type": "text", "text": "ok"}]}}
        return 200, [("content-type", "application/json")], json.dumps(answer).encode()


def sse_messages(body):
    found = []
    for event in body.decode().split("\n\n"):
        data = [line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:")]
        if data:
            found.append(json.loads("\n".join(data)))
    return found


class Soak:
    def __init__(self, seconds, threads):
        self.seconds = seconds
        self.threads = threads
        self.old_key, self.ec_key, self.new_key = tokens.SigningKey.rsa(), tokens.SigningKey.p256(), tokens.SigningKey.rsa()
        self.attacker = tokens.SigningKey.rsa()
        extra = {"mcpAuthorization": AUTHZ, "claimsToHeaders": [{"claim": "sub", "header": "x-mcp-user"}]}
        self.stack = Stack(tokens.jwks(self.old_key, self.ec_key), name="soak", concurrency=2,
                           plugin_extra=extra, buffer=True)
        self.stack.upstream.keep_records = False  # counts only: a record per request would grow
        self.upstream = self.stack.upstream.respond = Upstream()
        self.lock = threading.Lock()
        self.tally = collections.Counter()
        self.forwarded = 0
        self.wrong = []
        self.rotated = threading.Event()
        self.five_xx_bodies = collections.Counter()
        self.rss = []

    def mint(self, key, user="alice", **overrides):
        claims = {"iss": self.stack.issuer, "aud": self.stack.resource, "lifetime": self.seconds + 600,
                  "extra": {"sub": user, "scope": USERS[user]}}
        claims.update(overrides)
        return tokens.mint(key, **claims)

    def kinds(self):
        return self._kinds[self.rotated.is_set()]

    def prepare(self):
        def call(name):
            return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {}}}

        listing = {"jsonrpc": "2.0", "id": 8, "method": "tools/list"}

        def table(valid_key):
            alice, carol = self.mint(valid_key), self.mint(valid_key, "carol")
            bad = ("invalid_token", None)
            # name -> (weight, user, token, message, form, expected (status, error=, body), forwarded)
            return {
                "echo": (20, "alice", alice, call("echo"), "json", (200, None, "ok"), True),
                "echo_ec": (5, "alice", self.mint(self.ec_key), call("echo"), "json", (200, None, "ok"), True),
                "echo_old_key": (3, "alice", self.mint(self.old_key), call("echo"), "json", (200, None, "ok"), True),
                "list_json": (10, "alice", alice, listing, "json", (200, None, LISTED["alice"]), True),
                "list_sse": (10, "carol", carol, listing, "sse", (200, None, LISTED["carol"]), True),
                "delete_allowed": (5, "carol", carol, call("delete_file"), "json", (200, None, "ok"), True),
                "hidden_tool": (8, "alice", alice, call("system_status"), "json", (200, None, -32602), False),
                "step_up": (5, "alice", alice, call("delete_file"), "json", (403, "insufficient_scope", None), False),
                "no_token": (10, "alice", None, call("echo"), "json", (401, None, None), False),
                "expired": (5, "alice", self.mint(valid_key, lifetime=-3600, nbf_offset=-7200), call("echo"), "json",
                            (401,) + bad, False),
                "wrong_audience": (5, "alice", self.mint(valid_key, aud="http://127.0.0.1:1/other"), call("echo"), "json",
                                   (401,) + bad, False),
                "forged": (5, "alice", self.mint(self.attacker, kid=valid_key.kid), call("echo"), "json", (401,) + bad, False),
                "garbage": (3, "alice", "x.y.z", call("echo"), "json", (401,) + bad, False),
                "unknown_kid": (1, "alice", self.mint(self.attacker), call("echo"), "json", (401,) + bad, False),
            }

        self._kinds = {False: table(self.old_key), True: table(self.new_key)}

    def check(self, name, expected, status, headers, body):
        """None when the answer is what the model says, else what is wrong."""
        want_status, want_error, want_body = expected
        if status != want_status:
            return f"status {status}"
        challenge = headers.get("www-authenticate", "")
        if want_status in (401, 403):
            if not challenge.startswith("Bearer ") or "resource_metadata=" not in challenge:
                return f"challenge {challenge!r}"
            if (want_error is None) != ("error=" not in challenge):
                return f"challenge {challenge!r}"
            if want_error and f'error="{want_error}"' not in challenge:
                return f"challenge {challenge!r}"
            return None
        messages = sse_messages(body) if headers.get("content-type", "").startswith("text/event-stream") \
            else [json.loads(body)]
        mine = [m for m in messages if m.get("id") in (7, 8)]
        if len(mine) != 1:
            return f"answers {messages}"
        answer = mine[0]
        if isinstance(want_body, list):
            names = sorted(t["name"] for t in answer.get("result", {}).get("tools", []))
            return None if names == want_body else f"listed {names}"
        if isinstance(want_body, int):
            return None if answer.get("error", {}).get("code") == want_body else f"answer {answer}"
        return None if answer.get("result", {}).get("content") else f"answer {answer}"

    def client(self, deadline, seed):
        rng = random.Random(seed)
        port = self.stack.listener_port
        while time.monotonic() < deadline:
            kinds = self.kinds()
            name = rng.choices(list(kinds), weights=[k[0] for k in kinds.values()])[0]
            _, user, token, message, form, expected, forwarded = kinds[name]
            headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                       "accept-encoding": "gzip", "x-mcp-user": "mallory", "x-soak-form": form}
            if token:
                headers["authorization"] = f"Bearer {token}"
                headers["x-soak-user"] = user  # the token's sub, for the upstream's check
            if not forwarded:
                headers["x-soak-denied"] = name
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/mcp", body=json.dumps(message), headers=headers)
                response = conn.getresponse()
                status, body = response.status, response.read()
                answer_headers = {k.lower(): v for k, v in response.getheaders()}
                conn.close()
                if status >= 500:
                    self.five_xx_bodies[body[:120]] += 1
                problem = self.check(name, expected, status, answer_headers, body)
            except (OSError, ValueError) as err:
                status, problem = f"error {err.__class__.__name__}", str(err)
            with self.lock:
                self.tally[(name, status)] += 1
                self.forwarded += forwarded and problem is None
                if problem:
                    self.wrong.append((round(time.monotonic() - self.started, 2), name, problem))

    def sample_rss(self, pid, deadline):
        while time.monotonic() < deadline:
            self.rss.append(rss_kb(pid))
            time.sleep(1)

    def run(self):
        self.stack.start()
        try:
            self.prepare()
            pid = self.stack.envoy.process.proc.pid
            self.started = time.monotonic()
            deadline = self.started + self.seconds
            workers = [threading.Thread(target=self.client, args=(deadline, i)) for i in range(self.threads)]
            workers.append(threading.Thread(target=self.sample_rss, args=(pid, deadline)))
            for w in workers:
                w.start()
            # A third in: rotation (the IdP publishes the new key, then signs with it).
            time.sleep(self.seconds / 3)
            self.stack.jwks.set_document(tokens.jwks(self.old_key, self.ec_key, self.new_key))
            time.sleep(ROTATION_LEAD_SECONDS)
            self.rotated.set()
            # Half-way: the IdP fails for a sixth of the run; the cached keys keep serving.
            time.sleep(max(0.0, self.seconds / 2 - (time.monotonic() - self.started)))
            self.stack.jwks.set_status(500)
            time.sleep(self.seconds / 6)
            self.stack.jwks.set_status(200)
            for w in workers:
                w.join(timeout=self.seconds + 30)
            return self.report()
        finally:
            self.stack.stop()

    def report(self):
        total = sum(self.tally.values())
        five_xx = sum(n for (_, status), n in self.tally.items() if isinstance(status, int) and status >= 500)
        upstream = self.stack.upstream.count
        vm = self.stack.vm_health()
        stats = {m: self.stack.envoy.counter(f"mcp_authn.{m}")
                 for m in ("allowed", "denied.missing", "jwks_fetch.success", "jwks_fetch.failure",
                           "jwks_refetch.unknown_kid")}
        port = self.stack.listener_port
        per_worker = [sum(self.stack.envoy.stats(f"listener.127.0.0.1_{port}.worker_{w}.downstream_cx_total").values())
                      for w in (0, 1)]
        elapsed = time.monotonic() - self.started
        third = max(1, len(self.rss) // 3)
        rss_early, rss_late = statistics.median(self.rss[:third]), statistics.median(self.rss[-third:])
        growth = rss_late - rss_early
        print(f"soak: {self.seconds}s, {self.threads} client threads, Envoy --concurrency 2")
        for (name, status), n in sorted(self.tally.items(), key=str):
            print(f"  {name:15} {status!s:>8} {n:8}")
        print(f"requests: {total} ({total / elapsed:.0f}/s)  wrong answers: {len(self.wrong)}  5xx: {five_xx}")
        print(f"connections per Envoy worker: {per_worker}")
        print(f"upstream saw {upstream}, forwarded by the model {self.forwarded}, filter stats {stats}")
        print(f"upstream problems: {len(self.upstream.problems)} {self.upstream.problems[:5]}")
        for body, n in self.five_xx_bodies.items():
            print(f"  5xx x{n}: {body!r}")
        print(f"Envoy RSS (MiB): first third median {rss_early / 1024:.1f}, last third median "
              f"{rss_late / 1024:.1f}, growth {growth / 1024:.1f} (bound {RSS_GROWTH_LIMIT_KB / 1024:.0f}); "
              f"samples {[round(r / 1024, 1) for r in self.rss[::max(1, len(self.rss) // 12)]]}")
        print(f"VM problems: {vm or 'none'}")
        for item in self.wrong[:20]:
            print(f"  WRONG at t={item[0]}s: {item[1]}: {item[2]}")
        failed = (self.wrong or five_xx or upstream != self.forwarded or vm or self.upstream.problems
                  or growth > RSS_GROWTH_LIMIT_KB or total == 0 or 0 in per_worker)
        if failed:
            self.stack.keep_logs = True
            print(f"soak FAILED; logs in {self.stack.log_dir}")
        return 1 if failed else 0


if __name__ == "__main__":
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    sys.exit(Soak(seconds, threads).run())
