"""A client on the current Python SDK (mcp==2.3.0, run from .venv-mcp2) against the gateway, in
2026-07-28 ("modern") or handshake ("legacy") mode. Prints one JSON object: the tool names it
sees, the cacheScope of the list, and the outcome of each call.

Usage: mcp2_client.py URL TOKEN MODE TOOL[:ARG=VALUE,...] ...
"""

import json
import sys

import anyio
import httpx2

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def parse_call(spec):
    name, _, rest = spec.partition(":")
    arguments = dict(pair.split("=", 1) for pair in rest.split(",") if pair)
    return name, arguments


async def main(url, token, mode, calls):
    with anyio.fail_after(60):
        await session(url, token, mode, calls)


async def session(url, token, mode, calls):
    headers = {"Authorization": f"Bearer {token}"}
    out = {"calls": {}}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10, read=30)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            listed = await client.list_tools()
            out["tools"] = sorted(tool.name for tool in listed.tools)
            out["cacheScope"] = getattr(listed, "cache_scope", None)
            for spec in calls:
                name, arguments = parse_call(spec)
                try:
                    result = await client.call_tool(name, arguments)
                    text = result.content[0].text if result.content else ""
                    out["calls"][spec] = {"ok": not result.is_error, "text": text}
                except MCPError as error:
                    out["calls"][spec] = {"code": error.error.code, "message": error.error.message}
    print(json.dumps(out))


if __name__ == "__main__":
    url, token, mode, *calls = sys.argv[1:]
    anyio.run(main, url, token, mode, calls)
