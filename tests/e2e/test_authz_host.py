"""`mcpAuthorization`'s host-side paths in Envoy, with a scripted upstream as witness:
the request edits (`accept-encoding`, the credential, claim headers), encoded and oversized
list responses, an oversized SSE event, batches, denied notifications, `onInsufficientScope:
hide`, and the optional mode's 401 with `scope=`.

Each class runs the filter with Envoy's buffer filter behind it (docs/mcp-authorization.md,
"Envoy routing"), so a denied call never opens a request at the upstream; every denial
checks exactly that, after a fence (witness.py).
"""

import gzip
import json
import unittest

import harness
import tokens
import witness
from stack import Stack

KEY = tokens.SigningKey.rsa()
MAX_LIST = 2048
TOOLS = ["delete_file", "echo", "system_status"]
AUTHZ = {
    "rules": ['mcp.tool.name == "echo"', 'mcp.tool.name == "delete_file"'],
    "requiredScopes": {"tools/call:delete_file": ["files:delete"]},
    "maxListResponseBytes": MAX_LIST,
}
CLAIMS_TO_HEADERS = [{"claim": "sub", "header": "x-mcp-user"}]


def tool_list(request_id, padding=0):
    tools = [{"name": name, "inputSchema": {"type": "object"}} for name in TOOLS]
    if padding:
        tools[0]["description"] = "x" * padding
    return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}}


class Script:
    """The upstream's answers, by JSON-RPC method; `form` picks JSON, gzip'd JSON or SSE."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.form = "json"
        self.padding = 0
        self.sse_parts = None  # parts streamed before the answer event, one at a time

    def __call__(self, method, path, headers, body):
        if method != "POST" or not body:
            return None
        message = json.loads(body)
        if isinstance(message, list) or message.get("method") != "tools/list":
            return 200, [("content-type", "application/json")], json.dumps(
                {"jsonrpc": "2.0", "id": message.get("id") if isinstance(message, dict) else None,
                 "result": {"content": []}}).encode()
        answer = json.dumps(tool_list(message["id"], self.padding)).encode()
        if self.form == "gzip":
            return 200, [("content-type", "application/json"), ("content-encoding", "gzip")], gzip.compress(answer)
        if self.form == "sse":
            event = b"data: " + answer + b"\n\n"
            return 200, [("content-type", "text/event-stream")], self._stream(self.sse_parts or [], event)
        return 200, [("content-type", "application/json")], answer


    @staticmethod
    def _stream(parts, last):
        for part in parts:
            yield part() if callable(part) else part
        yield last


class HostPathsCase(harness.ReportsFailures, unittest.TestCase):
    MODE = "strict"
    AUTHZ = AUTHZ

    @classmethod
    def setUpClass(cls):
        extra = {"mcpAuthorization": cls.AUTHZ, "claimsToHeaders": CLAIMS_TO_HEADERS}
        cls.stack = Stack(tokens.jwks(KEY), name=cls.__name__, mode=cls.MODE, plugin_extra=extra, buffer=True)
        cls.script = cls.stack.upstream.respond = Script()
        cls.stack.start()
        cls.addClassCleanup(cls.stack.stop)

    def setUp(self):
        self.script.reset()

    def on_test_failure(self):
        self.stack.report_failure()

    def token(self, scope="openid", sub="alice"):
        return tokens.mint(KEY, iss=self.stack.issuer, aud=self.stack.resource, extra={"sub": sub, "scope": scope})

    def post(self, message, token=None, extra_headers=()):
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                   **dict(extra_headers)}
        if token:
            headers["authorization"] = f"Bearer {token}"
        return harness.http_request(self.stack.listener_port, "POST", "/mcp", headers, json.dumps(message))

    def call(self, name, request_id=1):
        return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, "arguments": {}}}

    def denied(self, message, token=None):
        """Sends `message`; asserts the upstream saw nothing; returns the answer."""
        mark = self.stack.upstream.count
        answer = self.post(message, token)
        witness.assert_nothing_reached(self, self.stack.upstream, self.stack.listener_port, mark)
        return answer

    def forwarded(self, message, token=None, extra_headers=()):
        """Sends `message`; returns (the answer, what the upstream saw: exactly one request)."""
        mark = self.stack.upstream.count
        answer = self.post(message, token, extra_headers)
        seen = witness.settled(self.stack.upstream, self.stack.listener_port, mark)
        self.assertEqual(len(seen), 1, seen)
        return answer, seen[0]


class StepUpTest(HostPathsCase):
    def test_an_inspected_call_reaches_the_upstream_without_credential_or_accept_encoding(self):
        token = self.token()
        (status, _, _), seen = self.forwarded(
            self.call("echo"), token, [("accept-encoding", "gzip, br"), ("x-mcp-user", "mallory")])
        self.assertEqual(status, 200)
        self.assertEqual(witness.header(seen, "accept-encoding"), [])
        witness.assert_credential_gone(self, [seen], token, {"x-mcp-user": "alice"})

    def test_a_denied_call_is_hidden_and_never_opens_an_upstream_request(self):
        status, headers, body = self.denied(self.call("system_status", 7), self.token())
        self.assertEqual((status, headers["content-type"]), (200, "application/json"))
        self.assertEqual(json.loads(body), {"jsonrpc": "2.0", "id": 7,
                                            "error": {"code": -32602, "message": "Unknown tool: system_status"}})

    def test_a_missing_scope_gets_the_step_up_403(self):
        status, headers, _ = self.denied(self.call("delete_file"), self.token())
        self.assertEqual(status, 403)
        challenge = headers["www-authenticate"]
        self.assertTrue(challenge.startswith('Bearer error="insufficient_scope"'), challenge)
        self.assertIn('scope="files:delete"', challenge)
        self.assertIn(f'resource_metadata="http://127.0.0.1:{self.stack.listener_port}/', challenge)

    def test_a_batch_with_one_denied_element_is_answered_whole_and_not_forwarded(self):
        batch = [self.call("echo", 1), self.call("system_status", 2)]
        status, _, body = self.denied(batch, self.token())
        self.assertEqual(status, 200)
        answers = {a["id"]: a["error"] for a in json.loads(body)}
        self.assertEqual(answers[1]["code"], -32000)
        self.assertTrue(answers[1]["message"].startswith("Not executed"), answers)
        self.assertEqual(answers[2], {"code": -32602, "message": "Unknown tool: system_status"})

    def test_an_allowed_batch_is_forwarded(self):
        token = self.token(scope="files:delete")
        (status, _, _), seen = self.forwarded([self.call("echo", 1), self.call("delete_file", 2)], token)
        self.assertEqual(status, 200)
        witness.assert_credential_gone(self, [seen], token, {"x-mcp-user": "alice"})

    def test_a_denied_notification_gets_202_and_no_body(self):
        notification = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "system_status"}}
        status, _, body = self.denied(notification, self.token())
        self.assertEqual((status, body), (202, b""))

    def test_list_filtering_json_and_sse(self):
        for form in ("json", "sse"):
            with self.subTest(form):
                self.script.form = form
                (status, headers, body), _ = self.forwarded({"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                                                            self.token())
                self.assertEqual(status, 200)
                self.assertNotIn("content-length", headers)
                data = body if form == "json" else body.split(b"data: ", 1)[1]
                names = [t["name"] for t in json.loads(data)["result"]["tools"]]
                self.assertEqual(names, ["echo"])  # delete_file needs files:delete; no rule for the third

    def test_an_encoded_list_response_becomes_a_32603_error(self):
        self.script.form = "gzip"
        (status, headers, body), _ = self.forwarded({"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
                                                    self.token())
        self.assertEqual(status, 200)
        self.assertNotIn("content-encoding", headers)
        self.assertEqual(headers["content-type"], "application/json")
        answer = json.loads(body)
        self.assertEqual((answer["id"], answer["error"]["code"]), (4, -32603))

    def test_a_json_list_over_max_list_response_bytes_becomes_a_32603_error(self):
        self.script.padding = MAX_LIST
        (status, _, body), _ = self.forwarded({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}, self.token())
        self.assertEqual(status, 200)
        answer = json.loads(body)
        self.assertEqual((answer["id"], answer["error"]["code"]), (5, -32603))
        self.assertNotIn("result", answer)

    def test_an_sse_event_over_the_bound_is_dropped_and_the_rest_passes(self):
        # The filter holds an incomplete event; one that outgrows the bound while held is
        # dropped. So the big event's first part goes alone, and the rest only once the
        # filter logged the drop (a condition, not a pause).
        big = json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                          "params": {"data": "y" * (2 * MAX_LIST)}}).encode()
        small = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "small"}}
        dropped = "SSE event over maxListResponseBytes dropped"
        warned_before = self.stack.envoy_log().count(dropped)

        def rest_after_the_drop():
            harness.wait_until(lambda: dropped in self.stack.envoy_log(), 10, what="the warn line")
            return big[MAX_LIST + 100:] + b"\n\ndata: " + json.dumps(small).encode() + b"\n\n"

        self.script.form = "sse"
        self.script.sse_parts = [b"data: " + big[:MAX_LIST + 100], rest_after_the_drop]
        (status, _, body), _ = self.forwarded({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, self.token())
        self.assertEqual(status, 200)
        events = [json.loads(e[len(b"data: "):]) for e in body.split(b"\n\n") if e]
        self.assertEqual(len(events), 2, events)
        self.assertEqual(events[0], small)
        self.assertEqual([t["name"] for t in events[1]["result"]["tools"]], ["echo"])
        # Warned once, by the chunk that dropped it: not again for every chunk after it.
        self.assertEqual(self.stack.envoy_log().count(dropped), warned_before + 1)


class HideTest(HostPathsCase):
    AUTHZ = dict(AUTHZ, onInsufficientScope="hide")

    def test_a_missing_scope_gets_the_same_answer_as_a_rule_denial(self):
        status, headers, body = self.denied(self.call("delete_file", 8), self.token())
        self.assertEqual(status, 200)
        self.assertNotIn("www-authenticate", headers)
        self.assertEqual(json.loads(body)["error"], {"code": -32602, "message": "Unknown tool: delete_file"})


class OptionalModeTest(HostPathsCase):
    MODE = "optional"
    AUTHZ = dict(AUTHZ, rules=AUTHZ["rules"] + ['mcp.tool.name == "system_status" && has(jwt.sub)'])

    def test_a_missing_scope_without_a_token_gets_the_401_challenge_with_scope(self):
        status, headers, _ = self.denied(self.call("delete_file"))
        self.assertEqual(status, 401)
        challenge = headers["www-authenticate"]
        self.assertNotIn("error=", challenge)
        self.assertIn('scope="files:delete"', challenge)

    def test_without_a_token_the_rules_see_no_claims(self):
        status, _, body = self.denied(self.call("system_status", 9))
        self.assertEqual((status, json.loads(body)["error"]["code"]), (200, -32602))
        (status, _, _), seen = self.forwarded(self.call("system_status", 10), self.token())
        self.assertEqual(status, 200)
        (status, _, _), seen = self.forwarded(self.call("echo", 11))
        self.assertEqual(status, 200)
        self.assertEqual(witness.header(seen, "x-mcp-user"), [])


if __name__ == "__main__":
    unittest.main()
