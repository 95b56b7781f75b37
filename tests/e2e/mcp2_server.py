"""An MCP server on the current Python SDK (mcp==2.3.0, run from .venv-mcp2): it speaks the
stateless 2026-07-28 protocol and the older handshake revisions on one endpoint, and validates
the mirrored headers against the body as the 2026-07-28 revision requires.

Tools: echo; delete_file (counted, so a test can tell whether a denied call ever ran);
sql, whose `region` argument is mirrored into `Mcp-Param-Region` (x-mcp-header); calls
(the count). Usage: mcp2_server.py PORT
"""

import sys
from typing import Annotated

import uvicorn
from pydantic import Field

from mcp.server.caching import CacheHint
from mcp.server.mcpserver import MCPServer

# The lists say "public" with a TTL, as a server that knows nothing of the gateway's filter
# would: the gateway must make a filtered one private.
PUBLIC = CacheHint(ttl_ms=60000, scope="public")
server = MCPServer(
    "gateway-e2e", cache_hints={"tools/list": PUBLIC, "prompts/list": PUBLIC}
)
RAN = {"delete_file": 0, "sql": 0}


@server.tool()
def echo(message: str) -> str:
    return message


@server.tool()
def delete_file(name: str) -> str:
    RAN["delete_file"] += 1
    return f"deleted {name}"


@server.tool()
def sql(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], query: str) -> str:
    RAN["sql"] += 1
    return f"{region}: {query}"


@server.tool()
def calls() -> str:
    """How often the guarded tools ran (never through a denial)."""
    return f"delete_file={RAN['delete_file']} sql={RAN['sql']}"


@server.prompt()
def greet(name: str) -> str:
    return f"Hello {name}"


if __name__ == "__main__":
    app = server.streamable_http_app(json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
