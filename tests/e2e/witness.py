"""The upstream as witness: what reached the server behind Envoy, recorded when a request's
headers arrive (not when its body is complete), so a request the router opened and then
reset still counts.

- `Recorder` is ASGI middleware for the FastMCP upstreams (uvicorn calls the app as soon
  as it has parsed the headers). It answers `GET /__witness?since=N` itself, read by the
  tests directly on the upstream's port, never through Envoy.
- `CountingUpstream` (counting_upstream.py) records the same shape in-process.
- `fence()` makes "nothing arrived" a condition instead of a sleep: it sends a marker
  through Envoy on a path the filter passes without a token and waits until the upstream
  saw it. A request Envoy had opened before the marker has arrived by then too.
"""

import itertools
import json
import urllib.parse

import harness

PATH = "/__witness"
FENCE_PREFIX = "/.well-known/openid-configuration/__fence-"
_fences = itertools.count(1)


def record(method, raw_path, headers):
    """One observed request: method, path (with query) and lower-case header pairs."""
    return {"method": method, "path": raw_path, "headers": [(k.lower(), v) for k, v in headers]}


class Recorder:
    """ASGI middleware recording every HTTP request at the moment its headers arrive."""

    def __init__(self, app):
        self.app = app
        self.seen = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if scope["path"] == PATH:
                await self._report(scope, send)
                return
            raw_path = scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            self.seen.append(record(scope["method"], raw_path, headers))
        await self.app(scope, receive, send)

    async def _report(self, scope, send):
        query = urllib.parse.parse_qs(scope["query_string"].decode())
        since = int(query.get("since", ["0"])[0])
        body = json.dumps({"count": len(self.seen), "seen": self.seen[since:]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def serve(server, port):
    """Runs a FastMCP `server` over streamable HTTP with a `Recorder` in front of it."""
    import uvicorn

    uvicorn.run(Recorder(server.streamable_http_app()), host="127.0.0.1", port=port, log_level="warning")


class RemoteWitness:
    """The tests' view of a `Recorder` running in an upstream process on `port`."""

    def __init__(self, port, fence_tag=""):
        self.port = port
        self.fence_tag = fence_tag  # fences for this upstream start with FENCE_PREFIX + tag

    def _read(self, since=0):
        status, _, body = harness.http_request(self.port, "GET", f"{PATH}?since={since}")
        if status != 200:
            raise AssertionError(f"witness answered {status}: {body[:200]!r}")
        return json.loads(body)

    @property
    def count(self):
        return self._read()["count"]

    def since(self, mark):
        return [dict(r, headers=[tuple(h) for h in r["headers"]]) for r in self._read(mark)["seen"]]


def fence(witness, envoy_port, timeout=10):
    """Returns once a marker sent through Envoy after everything before it reached `witness`."""
    path = f"{FENCE_PREFIX}{getattr(witness, 'fence_tag', '')}-{next(_fences)}"
    mark = witness.count
    harness.http_request(envoy_port, "GET", path)
    harness.wait_until(lambda: any(r["path"] == path for r in witness.since(mark)), timeout,
                       what=f"the fence {path} at the upstream")


def settled(witness, envoy_port, mark):
    """What reached the upstream since `mark`, after a fence; fences left out."""
    fence(witness, envoy_port)
    return [r for r in witness.since(mark) if not r["path"].startswith(FENCE_PREFIX)]


def header(record_, name):
    """The values of header `name` in one record (lower-case name)."""
    return [v for k, v in record_["headers"] if k == name]


def assert_nothing_reached(case, witness, envoy_port, mark, what="the denied request"):
    seen = settled(witness, envoy_port, mark)
    case.assertEqual(seen, [], f"the upstream saw {what}")


def assert_credential_gone(case, records, token, claim_headers=None):
    """Every record carries no trace of `token` (header, query, cookie) and exactly the
    configured claim headers: `claim_headers` maps each configured header name to the value
    it must have, or None for "absent" (a claim the token lacks)."""
    case.assertTrue(records, "the upstream saw no request")
    for r in records:
        case.assertNotIn(token, r["path"], "the credential reached the upstream in the path")
        case.assertNotIn("access_token=", r["path"])
        case.assertEqual(header(r, "authorization"), [], "the credential reached the upstream")
        for name, value in r["headers"]:
            case.assertNotIn(token, value, f"the credential reached the upstream in {name}")
        for name, expected in (claim_headers or {}).items():
            case.assertEqual(header(r, name), [] if expected is None else [expected], name)
