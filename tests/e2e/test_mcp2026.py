"""End-to-end tests of MCP 2026-07-28 behind the gateway, in both protocol eras.

Upstream: mcp2_server.py on mcp==2.3.0, which speaks the stateless 2026-07-28 protocol and the
handshake revisions on one endpoint, and refuses bodies that disagree with the mirrored headers.
npm server-everything@2026.8.31 (the TS SDK's handshake-era reference server) is behind
`/everything/`. A counting upstream behind `/count/` shows that answers decided from the headers
open nothing.

A second listener of the same Envoy runs the filter with `trustServerHeaderValidation` and no
buffer filter (the first one has Envoy's buffer filter behind it, as the docs ask): a
2026-07-28 call its headers allow is forwarded unread, so the server's own header validation is
what refuses a disagreeing body. `/stream/` there reaches a witness of body chunks.

Clients: mcp==2.3.0 in 2026-07-28 and legacy mode (.venv-mcp2), mcp==1.30.0 (this venv), and the
TypeScript SDK 1.32.2. Raw requests check what SDKs never send: headers and bodies that disagree.

Users: alice (no file scopes); root (`files:admin`, which impliedScopes expands to
`files:delete files:write`, and the admin role); mallory (`files:admin` without the role);
bob (`files:delete` only).
"""

import copy
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

import harness
import tokens
from counting_upstream import CountingUpstream

KEY = tokens.SigningKey.rsa()
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MCP2_PYTHON = os.path.join(ROOT, ".venv-mcp2", "bin", "python")
NODE_PEERS = os.path.join(ROOT, ".deps", "node-peers")
EVERYTHING = os.path.join(
    NODE_PEERS, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"
)
V = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": {}}

RULES = [
    'mcp.tool.name == "echo" || mcp.tool.name == "calls"',
    'mcp.tool.name == "delete_file" && jwt.roles.contains("admin")',
    'mcp.tool.name == "sql"',
    {"deny": 'mcp.tool.name == "sql" && mcp.params.region == "eu"'},
    "has(mcp.prompt)",
]
USERS = {
    "alice": {"scope": "openid"},
    "root": {"scope": "files:admin", "roles": ["admin"]},
    "mallory": {"scope": "files:admin", "roles": []},
    "bob": {"scope": "files:delete", "roles": ["admin"]},
}


def node_binary():
    out = subprocess.run(
        [os.path.join(ROOT, "scripts", "setup-idp.sh"), "--print-path"], capture_output=True, text=True
    )
    return out.stdout.strip()


def run_json(argv, timeout=90):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    if done.returncode != 0:
        raise AssertionError(f"{argv[1]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class ChunkWitness:
    """An upstream that notes each request body chunk as it arrives, so a test can tell
    whether a streamed body was held before the upstream got any of it."""

    def __init__(self):
        self.first_chunk = threading.Event()
        witness = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                received = 0
                if self.headers.get("content-length"):
                    received = len(self.rfile.read(int(self.headers["content-length"])))
                    witness.first_chunk.set()
                else:
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        received += len(self.rfile.read(size))
                        self.rfile.readline()
                        witness.first_chunk.set()
                    self.rfile.readline()
                body = json.dumps({"received": received}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def add_trusted_listener(config, port):
    """A copy of the first listener on `port` whose filter trusts the server's header
    validation (and keeps request bodies to 4 KiB), with no buffer filter."""
    listener = copy.deepcopy(config["static_resources"]["listeners"][0])
    listener["name"] = "trusted"
    listener["address"]["socket_address"]["port_value"] = port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != "envoy.filters.http.buffer"]
    wasm = hcm["http_filters"][0]["typed_config"]["config"]
    wasm["vm_config"]["vm_id"] = "mcp_authn_trusted"
    plugin = json.loads(wasm["configuration"]["value"])
    plugin["mcpAuthorization"].update(trustServerHeaderValidation=True, maxRequestBodyBytes=4096)
    wasm["configuration"]["value"] = json.dumps(plugin)
    config["static_resources"]["listeners"].append(listener)


class Mcp2026Test(harness.KeepsLogsOnFailure, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(harness.WASM_PATH):
            raise RuntimeError(f"{harness.WASM_PATH} is missing: build it with scripts/build.sh")
        cls.keep_logs_until_done()
        port = harness.free_port()
        argv = [MCP2_PYTHON, os.path.join(HERE, "mcp2_server.py"), str(port)]
        cls.server = harness.start_server("mcp2_server", argv, port, cls.log_dir)
        cls.addClassCleanup(cls.server.stop)
        cls.everything_port = harness.free_port()
        cls.everything = harness.start_server(
            "server_everything",
            [node_binary(), "--require", os.path.join(HERE, "loopback_listen.cjs"), EVERYTHING, "streamableHttp"],
            cls.everything_port,
            cls.log_dir,
            env={**os.environ, "PORT": str(cls.everything_port)},
        )
        cls.addClassCleanup(cls.everything.stop)
        cls.counting = CountingUpstream()
        cls.counting.start()
        cls.addClassCleanup(cls.counting.stop)
        cls.chunks = ChunkWitness()
        cls.addClassCleanup(cls.chunks.stop)
        cls.trusted_port = harness.free_port()

        def add_routes(config):
            harness.add_cluster(config, "counting", cls.counting.port)
            harness.add_cluster(config, "everything", cls.everything_port)
            harness.add_cluster(config, "chunks", cls.chunks.port)
            hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            hcm["http_filters"].insert(1, harness.buffer_filter())
            routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
            routes.insert(0, {"match": {"prefix": "/count/"}, "route": {"cluster": "counting", "timeout": "0s"}})
            routes.insert(0, {"match": {"prefix": "/everything/"},
                              "route": {"cluster": "everything", "timeout": "0s", "prefix_rewrite": "/"}})
            routes.insert(0, {"match": {"prefix": "/stream/"}, "route": {"cluster": "chunks", "timeout": "0s"}})
            add_trusted_listener(config, cls.trusted_port)

        authorization = {
            "rules": RULES,
            "requiredScopes": {"tools/call:delete_file": ["files:delete", "files:write"]},
            "impliedScopes": {"files:admin": ["files:delete", "files:write"]},
        }
        harness.start_gateway(cls, tokens.jwks(KEY), port, {"mcpAuthorization": authorization}, add_routes)
        cls.setup_done()

    # --- helpers ---------------------------------------------------------------------------

    def token(self, user, aud=None):
        return tokens.mint(KEY, iss=self.issuer, aud=aud or self.resource, extra={"sub": user, **USERS[user]})

    def post(self, user, headers, body, path="/mcp", port=None):
        all_headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            **headers,
        }
        if user:
            all_headers["authorization"] = f"Bearer {self.token(user)}"
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        return harness.http_request(port or self.envoy.listener_port, "POST", path, all_headers, body)

    def modern(self, method, name=None, **extra):
        headers = {"mcp-protocol-version": V, "mcp-method": method}
        if name is not None:
            headers["mcp-name"] = name
        headers.update(extra)
        return headers

    @staticmethod
    def call(request_id, tool, arguments=None, meta=True):
        params = {"name": tool, "arguments": arguments or {}}
        if meta:
            params["_meta"] = META
        return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}

    def ran(self):
        """The server's own count of guarded tool runs, asked as root in 2026-07-28 form."""
        status, _, body = self.post("root", self.modern("tools/call", "calls"), self.call(99, "calls"))
        self.assertEqual(status, 200, body)
        return json.loads(body)["result"]["content"][0]["text"]

    def mcp2_client(self, user, mode, *calls, port=None):
        url = f"http://127.0.0.1:{port}/mcp" if port else self.envoy.url("/mcp")
        return run_json([MCP2_PYTHON, "mcp2_client.py", url, self.token(user), mode, *calls])

    def listeners(self):
        """(name, port): the default listener, then the one trusting the server's validation."""
        return (("default", self.envoy.listener_port), ("trusted", self.trusted_port))

    # --- SDK clients, both eras -----------------------------------------------------------

    def test_mcp2_clients_in_both_eras_see_and_call_only_what_the_rules_allow(self):
        calls = ["echo:message=hi", "delete_file:name=a", "sql:region=us,query=q", "sql:region=eu,query=q"]
        before = self.ran()
        for (listener, port), mode in ((lp, m) for lp in self.listeners() for m in (V, "legacy")):
            with self.subTest(listener=listener, mode=mode):
                # mallory holds the scopes (by implication) but not the role: delete_file is
                # hidden from her list and her calls. With the opt-in, her allowed 2026-07-28
                # calls are decided at the headers; legacy ones still from the body.
                mallory = self.mcp2_client("mallory", mode, *calls, port=port)
                self.assertEqual(mallory["tools"], ["calls", "echo", "sql"])
                self.assertEqual(mallory["cacheScope"], "private")
                got = mallory["calls"]
                self.assertEqual(got["echo:message=hi"], {"ok": True, "text": "hi"})
                self.assertEqual(got["delete_file:name=a"]["message"], "Unknown tool: delete_file")
                # Argument rules: decided from Mcp-Param-Region in 2026-07-28; closed before.
                if mode == V:
                    self.assertEqual(got["sql:region=us,query=q"], {"ok": True, "text": "us: q"})
                else:
                    self.assertEqual(got["sql:region=us,query=q"]["message"], "Unknown tool: sql")
                self.assertEqual(got["sql:region=eu,query=q"]["message"], "Unknown tool: sql")
                # root holds files:admin, which implies both scopes delete_file needs.
                root = self.mcp2_client("root", mode, "delete_file:name=a", port=port)
                self.assertEqual(root["tools"], ["calls", "delete_file", "echo", "sql"])
                self.assertEqual(root["calls"]["delete_file:name=a"], {"ok": True, "text": "deleted a"})
        # Per listener, sql ran once (modern, region us); delete_file twice (root). The denials
        # never ran.
        delete_before, sql_before = (int(part.split("=")[1]) for part in before.split())
        self.assertEqual(self.ran(), f"delete_file={delete_before + 4} sql={sql_before + 2}")

    def test_legacy_clients_cannot_pass_argument_rules(self):
        # Before 2026-07-28 nothing makes the server check Mcp-Param headers: rules on params
        # fail closed, whatever the client claims.
        legacy = self.mcp2_client("alice", "legacy", "sql:region=us,query=q")
        self.assertEqual(legacy["calls"]["sql:region=us,query=q"]["message"], "Unknown tool: sql")

    def test_mcp1_client(self):
        async def session():
            headers = {"Authorization": f"Bearer {self.token('mallory')}"}
            async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(10, read=30)) as http:
                async with streamable_http_client(self.envoy.url("/mcp"), http_client=http) as (r, w, _):
                    async with ClientSession(r, w) as s:
                        await s.initialize()
                        tools = sorted(t.name for t in (await s.list_tools()).tools)
                        echoed = (await s.call_tool("echo", {"message": "one"})).content[0].text
                        with self.assertRaises(McpError) as denied:
                            await s.call_tool("delete_file", {"name": "x"})
                        return tools, echoed, denied.exception.error.message

        async def bounded():
            with anyio.fail_after(60):
                return await session()

        tools, echoed, denied = anyio.run(bounded)
        self.assertEqual(tools, ["calls", "echo", "sql"])
        self.assertEqual(echoed, "one")
        self.assertEqual(denied, "Unknown tool: delete_file")

    def test_typescript_sdk_client(self):
        node = node_binary()
        if not node:
            self.fail("node runtime missing: run scripts/setup-idp.sh")
        argv = [node, "ts_client.mjs", NODE_PEERS, self.envoy.url("/mcp"), self.token("mallory"),
                "echo:message=ts", "delete_file:name=x"]
        out = run_json(argv)
        self.assertEqual(out["tools"], ["calls", "echo", "sql"])
        self.assertEqual(out["calls"]["echo:message=ts"], {"ok": True, "text": "ts"})
        self.assertIn("Unknown tool: delete_file", out["calls"]["delete_file:name=x"]["message"])

    def test_server_everything_upstream_with_every_client(self):
        # The TS SDK's reference server (2026.8.31, a handshake-era server): its echo passes, its
        # other tools are hidden by the same rules, for the TS, mcp 1.30 (via mcp2 legacy) and
        # mcp 2.3.0 clients; mcp 2.3.0 in auto mode falls back to the handshake through the gateway.
        url = self.envoy.url("/everything/mcp")
        node = node_binary()
        ts = run_json([node, "ts_client.mjs", NODE_PEERS, url, self.token("mallory"), "echo:message=e", "get-sum:a=1,b=2"])
        self.assertEqual(ts["tools"], ["echo"])
        self.assertEqual(ts["calls"]["echo:message=e"], {"ok": True, "text": "Echo: e"})
        self.assertIn("Unknown tool: get-sum", ts["calls"]["get-sum:a=1,b=2"]["message"])
        for mode in ("legacy", "auto"):
            with self.subTest(mode=mode):
                out = run_json([MCP2_PYTHON, "mcp2_client.py", url, self.token("mallory"), mode, "echo:message=p", "get-sum:a=1,b=2"])
                self.assertEqual(out["tools"], ["echo"])
                self.assertEqual(out["calls"]["echo:message=p"], {"ok": True, "text": "Echo: p"})
                self.assertEqual(out["calls"]["get-sum:a=1,b=2"]["message"], "Unknown tool: get-sum")

    # --- no bypass: headers and body that disagree ----------------------------------------

    def assert_mismatch(self, response, request_id):
        status, headers, body = response
        self.assertEqual(status, 400, body)
        answer = json.loads(body)
        self.assertEqual(answer["error"]["code"], -32020, answer)
        self.assertEqual(answer["id"], request_id)

    def test_no_bypass_modern_headers_allowed_body_denied(self):
        before = self.ran()
        for user in ("alice", "mallory"):  # denied by scope, hidden by the rules
            self.assert_mismatch(self.post(user, self.modern("tools/call", "echo"), self.call(1, "delete_file")), 1)
            batch = [self.call(2, "echo"), self.call(3, "delete_file")]
            self.assert_mismatch(self.post(user, self.modern("tools/call", "echo"), batch), None)
        # The argument too: region header us, body eu -> the server refuses it (the filter
        # does not know the tool's x-mcp-header schema; the 2026-07-28 server must).
        status, _, body = self.post(
            "alice",
            self.modern("tools/call", "sql", **{"mcp-param-region": "us"}),
            self.call(4, "sql", {"region": "eu", "query": "q"}),
        )
        self.assertEqual(status, 400, body)
        self.assertEqual(json.loads(body)["error"]["code"], -32020)
        self.assertEqual(self.ran(), before)

    def test_no_bypass_modern_headers_denied_body_allowed(self):
        # mallory's headers name delete_file (hidden from her): a body naming echo is refused.
        self.assert_mismatch(
            self.post("mallory", self.modern("tools/call", "delete_file"), self.call(5, "echo")), 5
        )
        status, _, body = self.post("mallory", self.modern("tools/call", "delete_file"), self.call(6, "delete_file"))
        self.assertEqual((status, json.loads(body)["error"]["message"]), (200, "Unknown tool: delete_file"))
        batch = [self.call(7, "delete_file"), self.call(8, "echo")]
        self.assert_mismatch(self.post("mallory", self.modern("tools/call", "delete_file"), batch), None)

    def test_no_bypass_legacy_headers_are_ignored(self):
        # With the opt-in too: before 2026-07-28 (or with a version that is not a date) nothing
        # makes the server check the headers.
        before = self.ran()
        for (listener, port), version in (
            (lp, v) for lp in self.listeners() for v in (None, "2025-11-25", "2026-07-27", "next")
        ):
            headers = {"mcp-method": "tools/call", "mcp-name": "echo"}
            if version:
                headers["mcp-protocol-version"] = version
            with self.subTest(listener=listener, version=version):
                status, _, body = self.post("mallory", headers, self.call(9, "delete_file", meta=False), port=port)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["error"]["message"], "Unknown tool: delete_file")
                batch = [self.call(10, "echo", meta=False), self.call(11, "delete_file", meta=False)]
                status, _, body = self.post("mallory", headers, batch, port=port)
                answers = {a["id"]: a["error"]["code"] for a in json.loads(body)}
                self.assertEqual(answers, {10: -32000, 11: -32602})
        self.assertEqual(self.ran(), before)

    # --- trustServerHeaderValidation: the server's validation is what refuses --------------

    def test_trusted_headers_hand_a_disagreeing_body_to_the_server_which_refuses_it(self):
        before = self.ran()
        for user in ("alice", "mallory"):  # denied by scope, hidden by the rules
            with self.subTest(user=user):
                headers, denied = self.modern("tools/call", "echo"), self.call(1, "delete_file")
                # The default listener refuses it itself, and its upstream sees nothing.
                counted = self.counting.count
                self.assert_mismatch(self.post(user, headers, denied, "/count/mcp"), 1)
                self.assertEqual(self.counting.count, counted)
                # With the opt-in the filter does not read the body: the request goes on...
                status, _, body = self.post(user, headers, denied, "/count/mcp", port=self.trusted_port)
                self.assertEqual((status, self.counting.count), (200, counted + 1), body)
                # ...and the 2026-07-28 server refuses it (HeaderMismatch); delete_file never runs.
                self.assert_mismatch(self.post(user, headers, denied, port=self.trusted_port), 1)
                batch = [self.call(2, "echo"), self.call(3, "delete_file")]
                status, _, body = self.post(user, headers, batch, port=self.trusted_port)
                self.assertEqual(status, 400, body)
        # An argument: Mcp-Param-Region says us, the body says eu.
        status, _, body = self.post(
            "alice",
            self.modern("tools/call", "sql", **{"mcp-param-region": "us"}),
            self.call(4, "sql", {"region": "eu", "query": "q"}),
            port=self.trusted_port,
        )
        self.assertEqual((status, json.loads(body)["error"]["code"]), (400, -32020), body)
        self.assertEqual(self.ran(), before)

    def test_trusted_headers_still_refuse_at_the_filter_what_they_deny(self):
        counted = self.counting.count
        # Denied by the headers: the body is read for the answer's id, and nothing runs.
        status, _, body = self.post("mallory", self.modern("tools/call", "delete_file"), self.call(5, "delete_file"),
                                    port=self.trusted_port)
        self.assertEqual((status, json.loads(body)), (200, {"jsonrpc": "2.0", "id": 5, "error": {
            "code": -32602, "message": "Unknown tool: delete_file"}}))
        # Malformed headers and step-ups are answered at the headers: the upstream sees nothing.
        self.assert_mismatch(self.post("alice", self.modern("tools/call"), self.call(1, "echo"), "/count/mcp",
                                       port=self.trusted_port), None)
        self.assert_mismatch(self.post("alice", {"mcp-protocol-version": V}, self.call(1, "echo"), "/count/mcp",
                                       port=self.trusted_port), None)
        status, _, _ = self.post("bob", self.modern("tools/call", "delete_file"), "{}", "/count/mcp",
                                 port=self.trusted_port)
        self.assertEqual((status, self.counting.count), (403, counted))

    def test_trusted_headers_never_buffer_the_body(self):
        # Larger than the trusted listener's maxRequestBodyBytes (4 KiB): an allowed 2026-07-28
        # call passes whole, since nothing reads it; the same body under older headers is read
        # and refused.
        big = self.call(6, "echo", {"message": "x" * 64 * 1024})
        counted = self.counting.count
        status, _, body = self.post("alice", self.modern("tools/call", "echo"), big, "/count/mcp",
                                    port=self.trusted_port)
        self.assertEqual((status, self.counting.count), (200, counted + 1), body)
        status, _, _ = self.post("alice", {"mcp-protocol-version": "2025-11-25"}, big, port=self.trusted_port)
        self.assertEqual(status, 413)
        # A chunked body streams: the upstream gets its first chunk before the client sends
        # the rest. Under 2025-11-25 headers the filter holds it until the end.
        for version, streams in ((V, True), ("2025-11-25", False)):
            with self.subTest(version=version):
                self.chunks.first_chunk.clear()
                conn = http.client.HTTPConnection("127.0.0.1", self.trusted_port, timeout=10)
                try:
                    conn.putrequest("POST", "/stream/mcp")
                    for name, value in {**self.modern("tools/call", "echo", **{"mcp-protocol-version": version}),
                                        "content-type": "application/json", "transfer-encoding": "chunked",
                                        "authorization": f"Bearer {self.token('alice')}"}.items():
                        conn.putheader(name, value)
                    conn.endheaders()
                    text = json.dumps(self.call(7, "echo", {"message": "streamed"}, meta=version == V)).encode()
                    half = len(text) // 2
                    conn.send(b"%x\r\n%s\r\n" % (half, text[:half]))
                    # Held: nothing within a second (a pass here under load proves nothing;
                    # a chunk arriving would be a real failure).
                    self.assertEqual(self.chunks.first_chunk.wait(10 if streams else 1), streams)
                    conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(text) - half, text[half:]))
                    response = conn.getresponse()
                    self.assertEqual(response.status, 200)
                    self.assertEqual(json.loads(response.read()), {"received": len(text)})
                finally:
                    conn.close()

    # --- answers from the headers alone reach nothing ------------------------------------

    def test_header_answers_never_reach_the_upstream(self):
        before = self.counting.count
        # Missing Mcp-Name, a repeated Mcp-Method cannot be sent by http.client; a bad base64.
        self.assert_mismatch(self.post("alice", self.modern("tools/call"), self.call(1, "echo"), "/count/mcp"), None)
        self.assert_mismatch(
            self.post("alice", self.modern("tools/call", "=?base64?***?="), self.call(1, "echo"), "/count/mcp"), None
        )
        # bob lacks files:write: one challenge with every scope delete_file needs.
        status, headers, _ = self.post("bob", self.modern("tools/call", "delete_file"), "{}", "/count/mcp")
        self.assertEqual(status, 403)
        challenge = headers["www-authenticate"]
        self.assertIn('error="insufficient_scope"', challenge)
        self.assertIn('scope="files:delete files:write"', challenge)
        self.assertEqual(self.counting.count, before)
        # The same allowed request does reach it.
        status, _, _ = self.post("alice", self.modern("tools/list"), {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}, "/count/mcp")
        self.assertEqual((status, self.counting.count), (200, before + 1))

    # --- stateless protocol ------------------------------------------------------------------

    def test_server_discover_needs_a_token_like_any_request(self):
        discover = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": META}}
        status, headers, _ = self.post(None, self.modern("server/discover"), discover)
        self.assertEqual(status, 401)
        self.assertIn("resource_metadata=", headers["www-authenticate"])
        status, _, body = self.post("alice", self.modern("server/discover"), discover)
        self.assertEqual(status, 200, body)
        self.assertIn(V, json.loads(body)["result"]["supportedVersions"])

    def test_subscriptions_listen_streams_without_a_filter_timeout(self):
        listen = {"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
                  "params": {"notifications": {"toolsListChanged": True}, "_meta": META}}
        status, _, _ = self.post(None, self.modern("subscriptions/listen"), listen)
        self.assertEqual(status, 401)
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                   "authorization": f"Bearer {self.token('alice')}", **self.modern("subscriptions/listen")}
        # A read timeout on our side, not an end of stream, is what "still open" looks like.
        with httpx.Client(timeout=httpx.Timeout(10, read=4)) as http:
            with http.stream("POST", self.envoy.url("/mcp"), headers=headers, json=listen) as stream:
                self.assertEqual(stream.status_code, 200)
                self.assertTrue(stream.headers["content-type"].startswith("text/event-stream"))
                lines = stream.iter_lines()
                ack = next(line for line in lines if line.startswith("data:"))
                self.assertIn("notifications/subscriptions/acknowledged", ack)
                opened = time.monotonic()
                with self.assertRaises(httpx.ReadTimeout):
                    for line in lines:
                        self.assertFalse(line.startswith("data:"), line)
                self.assertGreaterEqual(time.monotonic() - opened, 3.5)

    # --- scopes and resources ----------------------------------------------------------------

    def test_an_upper_case_scheme_and_host_in_aud_is_the_same_resource(self):
        shouted = self.resource.replace("http://127.0.0.1", "HTTP://127.0.0.1")
        headers = {"authorization": f"Bearer {self.token('alice', aud=shouted)}", "content-type": "application/json",
                   "accept": "application/json, text/event-stream", **self.modern("tools/call", "echo")}
        status, _, body = harness.http_request(
            self.envoy.listener_port, "POST", "/mcp", headers, json.dumps(self.call(1, "echo", {"message": "x"}))
        )
        self.assertEqual(status, 200, body)


if __name__ == "__main__":
    unittest.main()
