"""An MCP client that signs in the way a person's client does, with the Python SDK.

Runs in either venv: .venv (mcp 1.30.0) or .venv-mcp2 (mcp 2.3.0). It starts from the MCP URL
alone: the SDK's OAuth provider gets the 401, reads the resource metadata and the
authorization-server metadata, registers (or uses a pre-registered client id), and hands the
authorization URL to a real browser (browser_login.mjs), which logs in at the IdP and lands on
this script's loopback callback. The SDK then checks `state` (and, from 2.x, RFC 9207 `iss`),
exchanges the code, and the session calls a tool. Finally the refresh token is used once and
the new access token makes one more call.

    python py_client.py --url http://127.0.0.1:GW/mcp --user alice --password ... \
        --node NODE [--client-id ID --callback-port P] [--scope 'mcp:tools'] [--artifacts DIR]

Prints one JSON line with every HTTP hop the client made, the browser's pages, the callback's
parameters, the token's claims, the tool's view of the request headers and the refresh result.
"""

import argparse
import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import anyio
from importlib.metadata import version

import mcp
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

SDK = version("mcp")
MAJOR = int(SDK.split(".")[0])
if MAJOR >= 2:
    import httpx2 as httpx
    from mcp.shared.auth import AuthorizationCodeResult
else:
    import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER = {}  # what the browser did, also reported when the sign-in fails


class Callback:
    """The loopback redirect URI (RFC 8252): records the authorization response's query."""

    def __init__(self, port=0):
        if not port:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            sock.close()
        self.port = port
        self.uri = f"http://127.0.0.1:{self.port}/callback"
        self.params = None
        self.arrived = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                parsed = urllib.parse.urlsplit(self.path)
                if parsed.path == "/callback" and outer.params is None:
                    outer.params = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
                    outer.arrived.set()
                body = b"<html><body>Signed in. You can close this window.</body></html>"
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Storage:
    def __init__(self, client_info=None):
        self.tokens = None
        self.client_info = client_info

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Recording(httpx.AsyncBaseTransport):
    """Every request the client sends, with the status it got back."""

    def __init__(self):
        self.inner = httpx.AsyncHTTPTransport()
        self.hops = []

    async def handle_async_request(self, request):
        response = await self.inner.handle_async_request(request)
        self.hops.append({"method": request.method, "url": str(request.url), "status": response.status_code})
        return response

    async def aclose(self):
        await self.inner.aclose()


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def call_tools(url, http):
    async with streamable_http_client(url, http_client=http) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            echo = await session.call_tool("echo", {"text": "signed in"})
            headers = await session.call_tool("echo_headers", {})
    info = init.server_info if MAJOR >= 2 else init.serverInfo
    return {
        "server": info.name,
        "protocol": init.protocol_version if MAJOR >= 2 else init.protocolVersion,
        "echo": echo.content[0].text,
        "upstream_headers": json.loads(headers.content[0].text),
    }


async def run(args):
    callback = Callback(args.callback_port)
    browser = BROWSER

    async def redirect_handler(authorization_url):
        browser["authorization_url"] = authorization_url
        argv = [args.node, os.path.join(HERE, "browser_login.mjs"), "--url", authorization_url,
                "--until", callback.uri, "--user", args.user, "--password", args.password]
        if args.artifacts:
            argv += ["--artifacts", args.artifacts]
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(argv, capture_output=True, text=True, timeout=150))
        lines = done.stdout.strip().splitlines()
        browser.update(json.loads(lines[-1]) if lines else {"error": done.stderr[-2000:]})
        if done.returncode != 0:
            raise RuntimeError(f"browser login failed: {browser.get('error')} {done.stderr[-1000:]}")

    async def callback_handler():
        await anyio.to_thread.run_sync(lambda: callback.arrived.wait(30))
        params = callback.params or {}
        if MAJOR >= 2:
            return AuthorizationCodeResult(code=params.get("code", ""), state=params.get("state"),
                                           iss=params.get("iss"))
        return params.get("code", ""), params.get("state")

    metadata = OAuthClientMetadata(
        redirect_uris=[callback.uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
        client_name=f"mcp-authn signin test (python mcp {SDK})",
        scope=args.scope,
    )
    preset = None
    if args.client_id:
        preset = OAuthClientInformationFull(client_id=args.client_id, redirect_uris=[callback.uri],
                                            token_endpoint_auth_method="none",
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], scope=args.scope)
    storage = Storage(preset)
    extra = {"client_metadata_url": args.client_metadata_url} if args.client_metadata_url else {}
    provider = OAuthClientProvider(args.url, metadata, storage, redirect_handler=redirect_handler,
                                   callback_handler=callback_handler, **extra)
    recording = Recording()
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(auth=provider, transport=recording,
                                     timeout=httpx.Timeout(15, read=60)) as http:
            result = await call_tools(args.url, http)
    finally:
        callback.close()
    login_seconds = time.monotonic() - started
    tokens = storage.tokens
    context = provider.context
    out = {
        "sdk": SDK,
        "hops": recording.hops,
        "browser": browser,
        "callback": callback.params,
        "issuer_recorded": str(context.oauth_metadata.issuer) if context.oauth_metadata else None,
        "client_id": storage.client_info.client_id if storage.client_info else None,
        "token_claims": claims(tokens.access_token),
        "has_refresh_token": bool(tokens.refresh_token),
        "result": result,
        "seconds": round(login_seconds, 2),
    }
    if tokens.refresh_token:
        out["refresh"] = await refresh(args, context, tokens)
    return out


async def refresh(args, context, tokens):
    """One refresh_token grant at the token endpoint the client discovered, then one more call
    with the new access token alone."""
    token_endpoint = str(context.oauth_metadata.token_endpoint)
    data = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
            "client_id": context.client_info.client_id}
    resource = context.get_resource_url() if hasattr(context, "get_resource_url") else None
    if resource:
        data["resource"] = resource
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.post(token_endpoint, data=data)
        answer = {"status": response.status_code, "token_endpoint": token_endpoint}
        if response.status_code != 200:
            answer["body"] = response.text[:500]
            return answer
        fresh = response.json()["access_token"]
    answer["new_token_differs"] = fresh != tokens.access_token
    answer["token_claims"] = claims(fresh)
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {fresh}"}, timeout=15) as http:
        answer["result"] = await call_tools(args.url, http)
    return answer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--client-id")
    parser.add_argument("--callback-port", type=int, default=0)
    parser.add_argument("--client-metadata-url", help="a CIMD client_id (mcp 2.x)")
    parser.add_argument("--scope", default="mcp:tools")
    parser.add_argument("--artifacts")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()

    async def bounded():
        with anyio.fail_after(args.timeout):
            return await run(args)

    try:
        print(json.dumps(anyio.run(bounded)))
    except BaseException as error:  # the test reads the reason from stdout
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        print(json.dumps({"sdk": SDK, "error": f"{type(error).__name__}: {error}", "browser": BROWSER}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
