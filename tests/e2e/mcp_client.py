"""A real MCP client session (the `mcp` package's streamable-HTTP client).

`roundtrip` does what an MCP host does after getting a token: initialize,
tools/list, then a tool call, and reports what it saw. It is synchronous for
the unittest code and bounded by a timeout so a stuck stream fails the test.
"""

import json

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def _roundtrip(url, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(10, read=30)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                call = await session.call_tool("echo_headers", {})
    if call.isError:
        raise AssertionError(f"echo_headers failed: {call.content}")
    return {
        "server_name": init.serverInfo.name,
        "tools": sorted(tool.name for tool in tools.tools),
        "headers": json.loads(call.content[0].text),
    }


def roundtrip(url, token, timeout=30):
    """Return {"server_name", "tools", "headers"} for one full client session."""

    async def bounded():
        with anyio.fail_after(timeout):
            return await _roundtrip(url, token)

    return anyio.run(bounded)
