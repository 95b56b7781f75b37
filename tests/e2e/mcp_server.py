"""The upstream MCP server behind Envoy: FastMCP over streamable HTTP at /mcp.

Run as its own process (`python mcp_server.py PORT`) so the harness can stop it
by process group like any other peer. `echo_headers` reports the HTTP headers
the server received, which is how the tests see what the filter forwarded
(e.g. that the Authorization header was stripped).
"""

import json
import sys

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.transport_security import TransportSecuritySettings

import witness


def build(port):
    # Envoy forwards the client's Host (127.0.0.1:<envoy port>); FastMCP's
    # DNS-rebinding protection must accept any 127.0.0.1 port for that.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*"],
        allowed_origins=["http://127.0.0.1:*"],
    )
    server = FastMCP(
        "e2e-upstream",
        host="127.0.0.1",
        port=port,
        streamable_http_path="/mcp",
        transport_security=security,
        log_level="WARNING",
    )

    @server.tool()
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    @server.tool()
    def echo_headers(ctx: Context) -> str:
        """Return the request's HTTP headers as a JSON object (lower-case names)."""
        request = ctx.request_context.request
        return json.dumps({k.lower(): v for k, v in request.headers.items()})

    return server


if __name__ == "__main__":
    witness.serve(build(int(sys.argv[1])), int(sys.argv[1]))
