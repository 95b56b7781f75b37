"""The user's demo MCP server (mcp-oauth-demos): the tools `echo`, `get_user_info`,
`list_files`, `delete_file` and `system_status`, plus one prompt and two resources, for
the `mcpAuthorization` tests. FastMCP over streamable HTTP.

Run as `python demo_mcp_server.py PORT PATH [json]`: PATH is the endpoint (e.g. /mcp);
`json` makes the server answer with JSON bodies instead of SSE streams, so both response
forms of list filtering are exercised.
"""

import sys

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.transport_security import TransportSecuritySettings

import witness


def build(port, path, json_response):
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*"],
        allowed_origins=["http://127.0.0.1:*"],
    )
    server = FastMCP(
        "mcp-oauth-demo",
        host="127.0.0.1",
        port=port,
        streamable_http_path=path,
        transport_security=security,
        json_response=json_response,
        log_level="WARNING",
    )

    @server.tool()
    def echo(message: str) -> str:
        """Echo a message back."""
        return message

    @server.tool()
    async def get_user_info(ctx: Context) -> str:
        """Information about the caller (logs a message first, so SSE carries two events)."""
        await ctx.info("looking up the user")
        return "user info"

    @server.tool()
    def list_files() -> list[str]:
        """List the files."""
        return ["a.txt", "b.txt"]

    @server.tool()
    def delete_file(name: str) -> str:
        """Delete a file."""
        return f"deleted {name}"

    @server.tool()
    def system_status() -> str:
        """System status (admins)."""
        return "ok"

    @server.prompt()
    def greet(name: str) -> str:
        """A greeting prompt."""
        return f"Hello {name}"

    @server.resource("file:///public/readme.txt")
    def readme() -> str:
        return "public"

    @server.resource("file:///admin/secrets.txt")
    def secrets() -> str:
        return "secret"

    return server


if __name__ == "__main__":
    port, path = int(sys.argv[1]), sys.argv[2]
    json_response = len(sys.argv) > 3 and sys.argv[3] == "json"
    witness.serve(build(port, path, json_response), port)
