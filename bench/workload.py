"""The MCP workload of the bench: the JSON-RPC requests it sends and the tools/list answer its
direct_responses give, shared by render.py (the Envoy config) and bench.py (the load and the
preflight checks).

- tools/call: about 300 bytes of body, as an MCP client sends it, in two protocol eras: 2026-07-28
  (SEP-2243 headers mirroring the body, so a filter may decide from the headers) and 2025-11-25
  (no mirrored headers: the body decides).
- tools/list: 50 tool definitions of a realistic size (description, input schema, annotations),
  half of them read-only (`get_`, `list_`, `search_`, `count_`, `export_`), half writing; the list
  rules either allow all of them or hide the writing half.
"""

import json

PROTOCOL = "2026-07-28"
LEGACY_PROTOCOL = "2025-11-25"
LIST_ID = 42


def _compact(value):
    return json.dumps(value, separators=(",", ":"))


# The arguments make the call about 300 bytes, the size of a typical short tool call.
ARGUMENTS = {
    "message": "Summarise the open incidents of the payments service and name the on-call engineer.",
    "format": "markdown",
    "maxItems": 20,
    "includeResolved": False,
}


def tools_call(name="echo", arguments=None, protocol=PROTOCOL):
    """A tools/call body; a 2026-07-28 one carries its version in `_meta`, as the `mcp` 2.x client
    sends it, an older one a progress token instead (of about the same length)."""
    meta = ({"io.modelcontextprotocol/protocolVersion": protocol} if protocol >= PROTOCOL
            else {"progressToken": "bench-progress-token-00000000000000000"})
    return _compact({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": name, "arguments": arguments or ARGUMENTS, "_meta": meta}})


def headers(method, name=None, protocol=PROTOCOL):
    """The request headers of an MCP POST: the mirrored `Mcp-Method`/`Mcp-Name` only for 2026-07-28."""
    out = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": protocol}
    if protocol >= PROTOCOL:
        out["Mcp-Method"] = method
        if name:
            out["Mcp-Name"] = name
    return out


CALL_BODY = tools_call()
CALL_HEADERS = headers("tools/call", "echo")
LEGACY_CALL_BODY = tools_call(protocol=LEGACY_PROTOCOL)
LEGACY_CALL_HEADERS = headers("tools/call", protocol=LEGACY_PROTOCOL)
# The same call with a 32 KiB argument: what the filter copies and parses unless the headers decide.
CALL_BODY_32K = tools_call(arguments=dict(ARGUMENTS, message="x" * 32 * 1024))

LIST_BODY = _compact({"jsonrpc": "2.0", "id": LIST_ID, "method": "tools/list",
                      "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": PROTOCOL}}})
LIST_HEADERS = headers("tools/list")

# --------------------------------------------------------------------------- the 50 tools

_DOMAINS = [
    ("issue", "issue of the tracker", {"project": "Project key, e.g. PAY"}),
    ("file", "file in the team drive", {"folder": "Folder path, e.g. /reports/2026"}),
    ("calendar_event", "calendar event", {"calendar": "Calendar id or the owner's e-mail address"}),
    ("customer", "customer record of the CRM", {"segment": "Customer segment: smb, mid or enterprise"}),
    ("invoice", "invoice of the billing system", {"currency": "ISO 4217 currency code, e.g. EUR"}),
]
READ_VERBS = [
    ("get", "Get one {what} by its id, with every field."),
    ("list", "List the {what}s, newest first, a page at a time."),
    ("search", "Search the {what}s by free text and filters; returns the best matches first."),
    ("count", "Count the {what}s that match the filters, without returning them."),
    ("export", "Export the matching {what}s as CSV or JSON for a report."),
]
WRITE_VERBS = [
    ("create", "Create a new {what} from the given fields; returns its id."),
    ("update", "Update fields of one {what}; fields not given are kept."),
    ("delete", "Delete one {what} permanently. This cannot be undone."),
    ("archive", "Archive one {what}: hidden from lists, kept for audit."),
    ("restore", "Restore an archived {what} to its previous state."),
]


def _tool(verb, text, domain, what, scope_prop, read_only):
    props = {"id": {"type": "string", "description": f"Id of the {what}"}} if verb not in (
        "list", "search", "count", "export", "create") else {}
    key, description = next(iter(scope_prop.items()))
    props[key] = {"type": "string", "description": description}
    if verb in ("list", "search", "export"):
        props["limit"] = {"type": "integer", "minimum": 1, "maximum": 500, "default": 50,
                          "description": "Largest number of results"}
    if verb == "search":
        props["query"] = {"type": "string", "description": "Free text to match"}
    if verb in ("create", "update"):
        props["fields"] = {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "Field values by name"}
    required = [p for p in ("id", "query", "fields") if p in props]
    return {
        "name": f"{verb}_{domain}",
        "title": f"{verb.capitalize()} {what.split(' of ')[0].split(' in ')[0]}",
        "description": text.format(what=what),
        "inputSchema": {"type": "object", "properties": props, "required": required},
        "annotations": {"readOnlyHint": read_only, "destructiveHint": verb == "delete",
                        "idempotentHint": read_only or verb in ("update", "archive", "restore")},
    }


def _tools():
    out = []
    for domain, what, scope_prop in _DOMAINS:
        for (verb, text), (wverb, wtext) in zip(READ_VERBS, WRITE_VERBS):
            out.append(_tool(verb, text, domain, what, scope_prop, True))
            out.append(_tool(wverb, wtext, domain, what, scope_prop, False))
    return out


TOOLS = _tools()
TOOL_NAMES = [t["name"] for t in TOOLS]
READ_TOOLS = [t["name"] for t in TOOLS if t["annotations"]["readOnlyHint"]]
WRITE_TOOLS = [t["name"] for t in TOOLS if not t["annotations"]["readOnlyHint"]]

# The upstream's answer to LIST_BODY, as JSON and as one SSE event.
LIST_RESULT = _compact({"jsonrpc": "2.0", "id": LIST_ID, "result": {"tools": TOOLS}})
LIST_SSE = f"event: message\ndata: {LIST_RESULT}\n\n"

# Rules of the list listeners, the same shape both ways: the first allows the read-only tools; the
# second allows the rest for every bench token (it has `iss`) or for none (it has no `scope` claim,
# so the expression fails and counts as false: fail closed).
READ_RULE = " || ".join(f'mcp.tool.name.startsWith("{verb}_")' for verb, _ in READ_VERBS)


def list_rules(issuer, hide_writes):
    second = 'jwt.scope.contains("tools:write")' if hide_writes else f'jwt.iss == "{issuer}"'
    return {"rules": [READ_RULE, second]}


def sse_data(body):
    """The JSON of the `data:` lines of the single event in `body` (bytes), or None."""
    events = [e for e in body.decode().split("\n\n") if e.strip()]
    if len(events) != 1:
        return None
    lines = events[0].split("\n")
    if "event: message" not in lines:
        return None
    data = "\n".join(line[len("data:"):].lstrip(" ") for line in lines if line.startswith("data:"))
    return json.loads(data)


if __name__ == "__main__":
    print(f"tools/call {len(CALL_BODY)} bytes, legacy {len(LEGACY_CALL_BODY)}, 32K {len(CALL_BODY_32K)}")
    print(f"tools/list request {len(LIST_BODY)} bytes; answer {len(TOOLS)} tools, {len(LIST_RESULT):,} bytes "
          f"({len(READ_TOOLS)} read-only)")
    print(json.dumps(TOOLS[:2], indent=1))
