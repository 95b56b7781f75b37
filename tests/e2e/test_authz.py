"""End-to-end tests of `mcpAuthorization`: real Envoy + dist/mcp_authn.wasm + the user's demo
MCP server (tools echo, get_user_info, list_files, delete_file, system_status) with the
demo's CEL rules verbatim, and tokens for three users:

- alice: no file scopes;
- bob: `files:read`;
- carol: `files:read files:delete` and the `admin` role (Auth0-style namespaced claim).

Two upstreams run the same demo server: one answers with SSE streams (`/mcp`), one with
JSON bodies (`/json/mcp`), so list filtering is checked in both forms.
"""

import itertools
import json
import os
import sys
import unittest

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

import harness
import tokens
import witness
from jwks_server import JwksServer

KEY = tokens.SigningKey.rsa()
HERE = os.path.dirname(os.path.abspath(__file__))

# The demo's matchExpressions, character for character.
DEMO_RULES = [
    'mcp.tool.name == "echo"',
    'mcp.tool.name == "get_user_info"',
    'mcp.tool.name == "list_files" && jwt.scope.contains("files:read")',
    'mcp.tool.name == "delete_file" && jwt.scope.contains("files:delete") && jwt["https://mcp-demo/roles"].contains("admin")',
    'mcp.tool.name == "system_status" && jwt["https://mcp-demo/roles"].contains("admin")',
]
ALL_TOOLS = ["delete_file", "echo", "get_user_info", "list_files", "system_status"]

USERS = {
    "alice": ({"scope": "openid profile"}, ["echo", "get_user_info"]),
    "bob": ({"scope": "openid files:read"}, ["echo", "get_user_info", "list_files"]),
    "carol": (
        {"scope": "openid files:read files:delete", "https://mcp-demo/roles": ["admin"]},
        ALL_TOOLS,
    ),
}
MAX_BODY = 4096
PATHS = {"sse": "/mcp", "json": "/json/mcp"}
# The raw sessions speak both MCP revisions the filter documents.
VERSIONS = ("2025-06-18", "2025-11-25")


def start_demo_server(log_dir, path, mode):
    port = harness.free_port()
    argv = [sys.executable, os.path.join(HERE, "demo_mcp_server.py"), str(port), path, mode]
    server = harness.Process(f"demo_{mode}", argv, log_dir)
    try:
        harness.wait_until(
            lambda: harness.port_open(port) or not server.alive(), 20, what="demo MCP server"
        )
        if not server.alive():
            raise RuntimeError(f"demo server exited:\n{server.log_tail()}")
    except BaseException:
        server.stop()
        raise
    return server, port


def messages(headers, body):
    """The JSON-RPC messages of a response: a JSON body, or the data of each SSE event."""
    kind = headers.get("content-type", "")
    if kind.startswith("application/json"):
        parsed = json.loads(body)
        return parsed if isinstance(parsed, list) else [parsed]
    if kind.startswith("text/event-stream"):
        found = []
        for event in body.decode().replace("\r\n", "\n").split("\n\n"):
            data = [line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:")]
            if data:
                found.append(json.loads("\n".join(data)))
        return found
    raise AssertionError(f"unexpected content-type {kind!r}: {body[:200]!r}")


class RawSession:
    """An MCP session over plain HTTP requests, to see statuses and headers as sent."""

    def __init__(self, case, path, token, version=VERSIONS[0]):
        self.case, self.path, self.token, self.version = case, path, token, version
        self.session_id = None
        self.next_id = 1
        status, headers, body = self.post(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "e2e-authz", "version": "0"},
                },
            }
        )
        case.assertEqual(status, 200, body)
        negotiated = [m for m in messages(headers, body) if m.get("id") == 0][0]["result"]["protocolVersion"]
        case.assertEqual(negotiated, version)
        self.session_id = headers.get("mcp-session-id")
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, message, raw=None):
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": self.version,
            "authorization": f"Bearer {self.token}",
        }
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        body = raw if raw is not None else json.dumps(message)
        return harness.http_request(self.case.envoy.listener_port, "POST", self.path, headers, body)

    def call(self, method, params=None):
        """(status, headers, the response with our id or None, all messages)."""
        request_id = self.next_id
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        status, headers, body = self.post(message)
        if status != 200:
            return status, headers, None, []
        found = messages(headers, body)
        mine = [m for m in found if m.get("id") == request_id]
        self.case.assertEqual(len(mine), 1, found)
        return status, headers, mine[0], found


async def _sdk_session(url, token, denied_tool):
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(10, read=30)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                echoed = await session.call_tool("echo", {"message": "hi"})
                denied = None
                if denied_tool:
                    try:
                        await session.call_tool(denied_tool, {})
                    except McpError as error:
                        denied = (error.error.code, error.error.message)
    return sorted(t.name for t in tools.tools), echoed.content[0].text, denied


def sdk_session(url, token, denied_tool=None, timeout=30):
    async def bounded():
        with anyio.fail_after(timeout):
            return await _sdk_session(url, token, denied_tool)

    return anyio.run(bounded)


class AuthzTest(harness.KeepsLogsOnFailure, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(harness.WASM_PATH):
            raise RuntimeError(f"{harness.WASM_PATH} is missing: build it with scripts/build.sh")
        cls.keep_logs_until_done()
        cls.sse_server, sse_port = start_demo_server(cls.log_dir, PATHS["sse"], "sse")
        cls.addClassCleanup(cls.sse_server.stop)
        cls.json_server, json_port = start_demo_server(cls.log_dir, PATHS["json"], "json")
        cls.addClassCleanup(cls.json_server.stop)
        cls.jwks = JwksServer(tokens.jwks(KEY), harness.free_port())
        cls.jwks.start()
        cls.addClassCleanup(cls.jwks.stop)

        listener_port, admin_port = harness.free_port(), harness.free_port()
        cls.issuer = f"http://127.0.0.1:{cls.jwks.port}"
        cls.audience = "https://mcp-oauth-demo"
        plugin = {
            "issuer": cls.issuer,
            "audiences": [cls.audience],
            "jwks": {"url": cls.jwks.url, "cluster": "jwks", "timeoutMs": 1000},
            "resourceMetadata": {"resource": f"http://127.0.0.1:{listener_port}/mcp"},
            "mcpAuthorization": {
                "rules": DEMO_RULES,
                "requiredScopes": {"tools/call:delete_file": ["files:delete"]},
                "maxRequestBodyBytes": MAX_BODY,
            },
        }
        config = harness.bootstrap(
            listener_port=listener_port,
            admin_port=admin_port,
            upstream_port=sse_port,
            jwks_port=cls.jwks.port,
            http_filters=[harness.wasm_filter(plugin), harness.buffer_filter()],
        )
        harness.add_cluster(config, "mcp_json", json_port)
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
        routes.insert(0, {"match": {"prefix": "/json/"}, "route": {"cluster": "mcp_json", "timeout": "0s"}})
        # The JSON server's fences (witness.py) reach it on their own route.
        routes.insert(0, {"match": {"prefix": witness.FENCE_PREFIX + "json"},
                          "route": {"cluster": "mcp_json", "timeout": "0s"}})
        cls.witnesses = {"sse": witness.RemoteWitness(sse_port),
                         "json": witness.RemoteWitness(json_port, fence_tag="json")}
        cls.envoy = harness.Envoy(
            config, listener_port=listener_port, admin_port=admin_port, log_dir=cls.log_dir
        )
        cls.addClassCleanup(cls.envoy.stop)
        cls.envoy.wait_ready()
        cls.setup_done()

    def token(self, user):
        claims, _ = USERS[user]
        return tokens.mint(KEY, iss=self.issuer, aud=self.audience, extra={"sub": user, **claims})

    def session(self, user, form="sse", version=VERSIONS[0]):
        return RawSession(self, PATHS[form], self.token(user), version)

    def mark(self, form="sse"):
        return self.witnesses[form].count

    def assert_nothing_reached(self, mark, form="sse"):
        witness.assert_nothing_reached(self, self.witnesses[form], self.envoy.listener_port, mark)

    def assert_reached_clean(self, mark, token, form="sse"):
        """The upstream saw requests since `mark`, none with the credential, and no inspected
        POST with accept-encoding."""
        seen = witness.settled(self.witnesses[form], self.envoy.listener_port, mark)
        witness.assert_credential_gone(self, seen, token)
        for record in seen:
            if record["method"] == "POST":
                self.assertEqual(witness.header(record, "accept-encoding"), [], record)
        return seen

    def test_each_users_tool_list_shows_exactly_the_allowed_tools(self):
        for form, user, version in itertools.product(PATHS, USERS, VERSIONS):
            expected = USERS[user][1]
            with self.subTest(form=form, user=user, version=version):
                status, headers, response, _ = self.session(user, form, version).call("tools/list")
                self.assertEqual(status, 200)
                names = sorted(tool["name"] for tool in response["result"]["tools"])
                self.assertEqual(names, sorted(expected))
                # The rewritten body's length is not the upstream's.
                self.assertNotIn("content-length", headers)
                kind = "text/event-stream" if form == "sse" else "application/json"
                self.assertTrue(headers["content-type"].startswith(kind), headers)

    def test_the_demo_rules_hide_prompts_and_resources(self):
        # Only tool rules exist and they allow by name: other targets match no allow rule.
        session = self.session("carol")
        _, _, prompts, _ = session.call("prompts/list")
        self.assertEqual(prompts["result"]["prompts"], [])
        _, _, resources, _ = session.call("resources/list")
        self.assertEqual(resources["result"]["resources"], [])
        _, _, read, _ = session.call("resources/read", {"uri": "file:///admin/secrets.txt"})
        self.assertEqual(
            read["error"], {"code": -32602, "message": "Unknown resource: file:///admin/secrets.txt"}
        )

    def test_denied_calls_get_the_hide_answer(self):
        cases = [("alice", "list_files"), ("alice", "system_status"), ("bob", "system_status")]
        for (user, tool), version in itertools.product(cases, VERSIONS):
            with self.subTest(user=user, tool=tool, version=version):
                session = self.session(user, version=version)
                mark = self.mark()
                status, headers, response, _ = session.call("tools/call", {"name": tool, "arguments": {}})
                self.assert_nothing_reached(mark)
                self.assertEqual(status, 200)
                self.assertEqual(headers["content-type"], "application/json")
                self.assertEqual(response["error"], {"code": -32602, "message": f"Unknown tool: {tool}"})

    def test_allowed_calls_reach_the_server(self):
        session = self.session("carol")
        for tool, arguments in [("delete_file", {"name": "a.txt"}), ("system_status", {}), ("list_files", {})]:
            with self.subTest(tool=tool):
                mark = self.mark()
                status, _, response, _ = session.call("tools/call", {"name": tool, "arguments": arguments})
                self.assertEqual(status, 200)
                self.assertNotIn("error", response)
                self.assertFalse(response["result"].get("isError"), response)
                self.assertEqual(len(self.assert_reached_clean(mark, session.token)), 1)
        # Other SSE events of a call (here a log notification) pass unchanged, before the result.
        _, _, response, everything = session.call("tools/call", {"name": "get_user_info", "arguments": {}})
        self.assertEqual(response["result"]["content"][0]["text"], "user info")
        self.assertEqual([m.get("method") for m in everything], ["notifications/message", None])

    def test_missing_scope_gets_the_step_up_403(self):
        metadata = f"http://127.0.0.1:{self.envoy.listener_port}/.well-known/oauth-protected-resource/mcp"
        for user in ["alice", "bob"]:
            with self.subTest(user=user):
                session = self.session(user)
                mark = self.mark()
                status, headers, _, _ = session.call(
                    "tools/call", {"name": "delete_file", "arguments": {"name": "a.txt"}}
                )
                self.assert_nothing_reached(mark)
                self.assertEqual(status, 403)
                self.assertEqual(
                    headers["www-authenticate"],
                    'Bearer error="insufficient_scope", error_description="the token lacks a '
                    f'scope this call requires", resource_metadata="{metadata}", scope="files:delete"',
                )

    def test_bodies_are_bounded_and_must_be_json_rpc(self):
        session = self.session("carol")
        mark = self.mark()
        big = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"message": "x" * (MAX_BODY + 1)}}}
        status, _, body = session.post(big)
        self.assertEqual(status, 413, body)
        status, _, body = session.post(None, raw="{not json")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["error"]["code"], -32700)
        dup = '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","name":"delete_file"}}'
        status, _, body = session.post(None, raw=dup)
        self.assertEqual((status, json.loads(body)["error"]["code"]), (400, -32600))
        self.assert_nothing_reached(mark)

    def test_without_a_token_nothing_changes(self):
        mark = self.mark()
        status, headers, _ = harness.http_request(
            self.envoy.listener_port, "POST", "/mcp",
            {"content-type": "application/json"}, '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
        )
        self.assertEqual(status, 401)
        self.assertNotIn("error=", headers["www-authenticate"])

    def test_the_python_mcp_client_sees_the_filtered_list(self):
        for form, path in PATHS.items():
            for user, (_, expected) in USERS.items():
                with self.subTest(form=form, user=user):
                    denied = None if user == "carol" else "system_status"
                    token, mark = self.token(user), self.mark(form)
                    tools, echoed, refusal = sdk_session(self.envoy.url(path), token, denied)
                    self.assert_reached_clean(mark, token, form)
                    self.assertEqual(tools, sorted(expected))
                    self.assertEqual(echoed, "hi")
                    if denied:
                        self.assertEqual(refusal, (-32602, "Unknown tool: system_status"))


if __name__ == "__main__":
    unittest.main()
