"""Bounded soak: mixed valid / invalid / no-token traffic through Envoy with
2 workers for N seconds, with a key rotation half way. Every response is
checked against the decision the request must get.

The rotation follows real IdPs: the new key is published first, and clients
switch to it ROTATION_LEAD_SECONDS later. (The filter refetches for an unknown
kid at most once per minRefreshIntervalSeconds, so a key used the instant it
is published can be refused for up to that long if any unknown-kid token
made the filter refetch just before.)

Usage: python soak.py [seconds] [threads]      (scripts/soak.sh wraps it)
Exit status 1 on any wrong decision, any 5xx, an upstream count that does
not match the allowed requests, a VM problem, or RSS growth over the bound.
"""

import collections
import http.client
import os
import random
import sys
import threading
import time

import tokens
from stack import Stack

ROTATION_LEAD_SECONDS = 2  # > minRefreshIntervalSeconds (1 s in Stack)
RSS_GROWTH_LIMIT_KB = 100 * 1024  # generous: a leak per request would pass this quickly


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Soak:
    def __init__(self, seconds, threads):
        self.seconds = seconds
        self.threads = threads
        self.old_key, self.ec_key, self.new_key = tokens.SigningKey.rsa(), tokens.SigningKey.p256(), tokens.SigningKey.rsa()
        self.attacker = tokens.SigningKey.rsa()
        self.stack = Stack(tokens.jwks(self.old_key, self.ec_key), name="soak", concurrency=2)
        self.stack.upstream.keep_records = False  # counts only: a record per request would grow
        self.lock = threading.Lock()
        self.tally = collections.Counter()
        self.wrong = []
        self.rotated = threading.Event()
        self.five_xx_bodies = collections.Counter()

    def mint(self, key, **overrides):
        claims = {"iss": self.stack.issuer, "aud": self.stack.resource, "lifetime": self.seconds + 600}
        claims.update(overrides)
        return tokens.mint(key, **claims)

    def kinds(self):
        """name -> (weight, token or None, expected status); tokens minted once."""
        valid_key = self.new_key if self.rotated.is_set() else self.old_key
        return self._kinds[valid_key is self.new_key]

    def prepare(self):
        def table(valid_key):
            return {
                "valid": (40, self.mint(valid_key), 200),
                "valid_ec": (10, self.mint(self.ec_key), 200),
                "valid_old_key": (5, self.mint(self.old_key), 200),
                "no_token": (15, None, 401),
                "expired": (8, self.mint(valid_key, lifetime=-3600, nbf_offset=-7200), 401),
                "wrong_audience": (8, self.mint(valid_key, aud="http://127.0.0.1:1/other"), 401),
                "forged": (8, self.mint(self.attacker, kid=valid_key.kid), 401),
                "garbage": (5, "x.y.z", 401),
                "unknown_kid": (1, self.mint(self.attacker), 401),
            }
        self._kinds = {False: table(self.old_key), True: table(self.new_key)}

    def client(self, deadline, seed):
        rng = random.Random(seed)
        port = self.stack.listener_port
        while time.monotonic() < deadline:
            kinds = self.kinds()
            name = rng.choices(list(kinds), weights=[w for w, _, _ in kinds.values()])[0]
            _, token, expected = kinds[name]
            headers = {"content-type": "application/json"}
            if token:
                headers["authorization"] = f"Bearer {token}"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/mcp", body=b"{}", headers=headers)
                response = conn.getresponse()
                status, body = response.status, response.read()
                conn.close()
                if status >= 500:
                    self.five_xx_bodies[body[:120]] += 1
            except OSError as err:
                status = f"error {err.__class__.__name__}"
            with self.lock:
                self.tally[(name, status)] += 1
                if status != expected:
                    self.wrong.append((round(time.monotonic() - self.started, 2), name, status, expected))

    def run(self):
        self.stack.start()
        try:
            self.prepare()
            pid = self.stack.envoy.process.proc.pid
            rss_start = rss_kb(pid)
            self.started = time.monotonic()
            deadline = self.started + self.seconds
            workers = [threading.Thread(target=self.client, args=(deadline, i)) for i in range(self.threads)]
            for w in workers:
                w.start()
            time.sleep(self.seconds / 2)
            # Rotation: the IdP publishes the new key, then signs with it.
            self.stack.jwks.set_document(tokens.jwks(self.old_key, self.ec_key, self.new_key))
            time.sleep(ROTATION_LEAD_SECONDS)
            self.rotated.set()
            for w in workers:
                w.join(timeout=self.seconds + 30)
            rss_end = rss_kb(pid)
            return self.report(rss_start, rss_end)
        finally:
            self.stack.stop()

    def report(self, rss_start, rss_end):
        total = sum(self.tally.values())
        allowed = sum(n for (_, status), n in self.tally.items() if status == 200)
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
        print(f"soak: {self.seconds}s, {self.threads} client threads, Envoy --concurrency 2")
        for (name, status), n in sorted(self.tally.items(), key=str):
            print(f"  {name:15} {status!s:>8} {n:8}")
        print(f"requests: {total} ({total / elapsed:.0f}/s)  wrong decisions: {len(self.wrong)}  5xx: {five_xx}")
        print(f"connections per Envoy worker: {per_worker}")
        print(f"upstream saw {upstream}, allowed by the client's count {allowed}, filter stats {stats}")
        for body, n in self.five_xx_bodies.items():
            print(f"  5xx x{n}: {body!r}")
        print(f"Envoy RSS: start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB")
        print(f"VM problems: {vm or 'none'}")
        for item in self.wrong[:20]:
            print(f"  WRONG at t={item[0]}s: {item[1]} got {item[2]}, expected {item[3]}")
        failed = (self.wrong or five_xx or upstream != allowed or vm
                  or rss_end - rss_start > RSS_GROWTH_LIMIT_KB or total == 0 or 0 in per_worker)
        if failed:
            self.stack.keep_logs = True
            print(f"soak FAILED; logs in {self.stack.log_dir}")
        return 1 if failed else 0


if __name__ == "__main__":
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    sys.exit(Soak(seconds, threads).run())
