"""The bench Envoy bootstrap (a dict, written as JSON): one listener per setup, all in one Envoy.

Listeners (each on its own free loopback port, each ending in a direct_response 200):
  nofilter       no HTTP filter but the router
  native_cache   envoy.filters.http.jwt_authn, local JWKS, jwt_cache_config {jwt_cache_size: 100}
  native_nocache envoy.filters.http.jwt_authn, local JWKS, no JWT cache (Envoy's default)
  wasm           this filter, inline keys, default verifiedTokenCache (capacity 1024 per worker)
  wasm_nocache   this filter, inline keys, verifiedTokenCache.capacity 0 (every token verified)
  wasm_noop      a do-nothing Rust proxy-wasm filter (bench/noop-filter): the runtime's floor cost
                 (only when its module path is given)
  wasm_hostcalls the same module making only the hostcalls of the filter's cached-token path
                 (header map, clock, remove authorization): the floor of that path
With the hostcall-counting module (bench/hostcalls; BENCH_COUNTED_WASM), for hostcalls per request:
  counted        that module with the `wasm` listener's configuration
  counted_nocache that module with the `wasm_nocache` listener's configuration
The MCP POST listeners all end in envoy.filters.http.buffer (as the README asks for on MCP routes
under mcpAuthorization), so every one of them reads the whole body before the direct_response:
  post_nofilter   the buffer filter only
  post_wasm       this filter (default config, no mcpAuthorization), then the buffer filter
  post_wasm_scopes this filter with MCP_SCOPES_ONLY (no rules: the body is read and checked against
                  the headers, no CEL runs), then the buffer filter
  post_wasm_rules this filter with MCP_AUTHORIZATION (the README's demo rules), then the buffer filter
  post_wasm_trusted the same rules with trustServerHeaderValidation (the filter decides the call from
                  its headers and never reads the body), then the buffer filter
The tools/list listeners (each with the buffer filter too) answer with the JSON-RPC result of
50 tools (bench/workload.py), as application/json, or under /mcp/sse as one text/event-stream event:
  list_nofilter   the buffer filter only
  list_wasm       this filter with list rules that allow every tool (the list is still filtered:
                  every item goes through the rules, and the result is marked private), then buffer
  list_wasm_half  the same rules' shape hiding the 25 writing tools, then buffer
  list_wasm_scopes this filter with MCP_SCOPES_ONLY (no rules: each item only looked up in
                  requiredScopes, which hide delete_file), then buffer
Without the buffer filter the direct_response would answer at the headers, before the body: that
measures Envoy's early response, not a proxy in front of a server that reads the body.
The many-servers listeners (issue 17) run this filter with a `servers` config of N servers, all
trusting the bench issuer (inline keys); the bench request selects the last one, so selection
walks the whole list:
  wasm_servers1/10/100  selection by `match` (path prefixes /s0, /s1, ..., then /mcp)
  wasm_routemeta100     100 servers, `serverSelection: routeMetadata`: the route's metadata names
                        the last one (one property read per request instead of the prefix walk)
"""

import json

import tokens
import workload

LISTENERS = ("nofilter", "native_cache", "native_nocache", "wasm", "wasm_nocache", "wasm_noop", "wasm_hostcalls",
             "post_nofilter", "post_wasm", "post_wasm_scopes", "post_wasm_rules", "post_wasm_trusted",
             "list_nofilter", "list_wasm", "list_wasm_half", "list_wasm_scopes",
             "wasm_servers1", "wasm_servers10", "wasm_servers100", "wasm_routemeta100", "counted", "counted_nocache")
# Servers in each many-servers listener, and the one the bench request selects.
SERVER_COUNTS = {"wasm_servers1": 1, "wasm_servers10": 10, "wasm_servers100": 100, "wasm_routemeta100": 100}
ROUTE_METADATA = ("wasm_routemeta100",)
# The tools/list listeners, and the path whose answer is SSE (every other path gets JSON).
LIST_LISTENERS = ("list_nofilter", "list_wasm", "list_wasm_half", "list_wasm_scopes")
SSE_PATH = "/mcp/sse"
# Listeners that run bench/noop-filter, left out when its module path is not given.
NOOP_LISTENERS = ("wasm_noop", "wasm_hostcalls")
# Listeners that run the hostcall-counting module, left out when its path is not given.
COUNTED_LISTENERS = ("counted", "counted_nocache")


def _address(port):
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def _router():
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }


# The README's Auth0 demo rules: the bench's `echo` call is allowed by the first; the bench tokens
# carry no scope or roles, so the others never match.
MCP_AUTHORIZATION = {
    "rules": [
        'mcp.tool.name == "echo"',
        'mcp.tool.name == "get_user_info"',
        'mcp.tool.name == "list_files" && jwt.scope.contains("files:read")',
        'mcp.tool.name == "delete_file" && jwt.scope.contains("files:delete")'
        ' && jwt["https://mcp-demo/roles"].contains("admin")',
        'mcp.tool.name == "system_status" && jwt["https://mcp-demo/roles"].contains("admin")',
    ],
}


# A scope requirement on another tool: it switches the body check on for every MCP POST but does
# not apply to `echo`, so the bench call is read and checked against its headers, and no rule runs.
MCP_SCOPES_ONLY = {"requiredScopes": {"tools/call:delete_file": ["files:delete"]}}

# The demo rules, decided from the 2026-07-28 headers alone.
MCP_TRUSTED = {**MCP_AUTHORIZATION, "trustServerHeaderValidation": True}


def _buffer():
    return {
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": 1048576,
        },
    }


def native_jwt_authn(cache):
    provider = {
        "issuer": tokens.ISSUER,
        "audiences": [tokens.RESOURCE],
        "local_jwks": {"inline_string": json.dumps(tokens.public_jwks())},
        "forward": False,
    }
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }


def wasm_plugin_config(cache_capacity=None, mcp_authorization=None):
    config = {
        "issuer": tokens.ISSUER,
        "audiences": [tokens.RESOURCE],
        "jwks": {"inline": tokens.public_jwks()},
        "resourceMetadata": {"resource": tokens.RESOURCE},
    }
    if cache_capacity is not None:
        config["verifiedTokenCache"] = {"capacity": cache_capacity}
    if mcp_authorization is not None:
        config["mcpAuthorization"] = mcp_authorization
    return config


def servers_plugin_config(count, route_metadata=False):
    """`count` servers; the last one holds the bench resource at /mcp, the others /s<i>/mcp."""
    servers = []
    for i in range(count):
        last = i == count - 1
        resource = tokens.RESOURCE if last else tokens.RESOURCE.replace("/mcp", f"/s{i}/mcp")
        server = {
            "name": last_server_name(count) if last else f"s{i}",
            "issuer": tokens.ISSUER,
            "jwks": {"inline": tokens.public_jwks()},
            "resourceMetadata": {"resource": resource},
        }
        if not route_metadata:
            server["match"] = {"pathPrefix": "/mcp" if last else f"/s{i}"}
        servers.append(server)
    config = {"servers": servers, "unmatched": "reject"}
    if route_metadata:
        config["serverSelection"] = "routeMetadata"
    return config


def last_server_name(count):
    return f"s{count - 1}"


def wasm_filter(wasm_path, vm_id, plugin_config, root_id="mcp_authn"):
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": root_id,
                "root_id": root_id,
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(plugin_config),
                },
            },
        },
    }


def filters_for(name, wasm_path, noop_path=None, counted_path=None):
    if name == "nofilter":
        return []
    if name == "native_cache":
        return [native_jwt_authn(cache=True)]
    if name == "native_nocache":
        return [native_jwt_authn(cache=False)]
    if name == "wasm":
        return [wasm_filter(wasm_path, "bench_wasm", wasm_plugin_config())]
    if name == "wasm_nocache":
        return [wasm_filter(wasm_path, "bench_wasm_nocache", wasm_plugin_config(cache_capacity=0))]
    if name == "post_nofilter":
        return [_buffer()]
    if name == "post_wasm":
        return [wasm_filter(wasm_path, "bench_post_wasm", wasm_plugin_config()), _buffer()]
    if name == "post_wasm_scopes":
        config = wasm_plugin_config(mcp_authorization=MCP_SCOPES_ONLY)
        return [wasm_filter(wasm_path, "bench_post_wasm_scopes", config), _buffer()]
    if name == "post_wasm_rules":
        config = wasm_plugin_config(mcp_authorization=MCP_AUTHORIZATION)
        return [wasm_filter(wasm_path, "bench_post_wasm_rules", config), _buffer()]
    if name == "post_wasm_trusted":
        config = wasm_plugin_config(mcp_authorization=MCP_TRUSTED)
        return [wasm_filter(wasm_path, "bench_post_wasm_trusted", config), _buffer()]
    if name == "list_nofilter":
        return [_buffer()]
    if name in ("list_wasm", "list_wasm_half"):
        rules = workload.list_rules(tokens.ISSUER, hide_writes=name == "list_wasm_half")
        return [wasm_filter(wasm_path, f"bench_{name}", wasm_plugin_config(mcp_authorization=rules)), _buffer()]
    if name == "list_wasm_scopes":
        config = wasm_plugin_config(mcp_authorization=MCP_SCOPES_ONLY)
        return [wasm_filter(wasm_path, f"bench_{name}", config), _buffer()]
    if name in SERVER_COUNTS:
        config = servers_plugin_config(SERVER_COUNTS[name], route_metadata=name in ROUTE_METADATA)
        return [wasm_filter(wasm_path, f"bench_{name}", config)]
    if name == "counted":
        return [wasm_filter(counted_path, "bench_counted", wasm_plugin_config())]
    if name == "counted_nocache":
        return [wasm_filter(counted_path, "bench_counted_nocache", wasm_plugin_config(cache_capacity=0))]
    if name == "wasm_noop":
        return [wasm_filter(noop_path, "bench_noop", {}, root_id="noop")]
    if name == "wasm_hostcalls":
        return [wasm_filter(noop_path, "bench_hostcalls", {"hostcalls": True}, root_id="noop")]
    raise ValueError(name)


def _list_route(prefix, content_type, body):
    return {
        "match": {"prefix": prefix},
        "direct_response": {"status": 200, "body": {"inline_string": body}},
        "response_headers_to_add": [{"header": {"key": "content-type", "value": content_type},
                                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
    }


def routes(name):
    """Every path to a direct_response 200 (empty but for the list listeners' tools/list answer);
    the route-metadata listeners name their server."""
    if name in LIST_LISTENERS:
        return [_list_route(SSE_PATH, "text/event-stream", workload.LIST_SSE),
                _list_route("/", "application/json", workload.LIST_RESULT)]
    entry = {"match": {"prefix": "/"}, "direct_response": {"status": 200}}
    if name in ROUTE_METADATA:
        entry["metadata"] = {"filter_metadata": {"mcp_authn": {"server": last_server_name(SERVER_COUNTS[name])}}}
    return [entry]


def listener(name, port, wasm_path, noop_path=None, counted_path=None):
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "route_config": {
            # Envoy's default bound on a direct_response body is 4 KiB; the tools/list answer is ~23 KiB.
            "max_direct_response_body_size_bytes": 65536,
            "virtual_hosts": [
                {
                    "name": name,
                    "domains": ["*"],
                    "routes": routes(name),
                }
            ]
        },
        "http_filters": filters_for(name, wasm_path, noop_path, counted_path) + [_router()],
    }
    return {
        "name": name,
        "address": _address(port),
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}],
    }


def bootstrap(ports, admin_port, wasm_path, noop_path=None, counted_path=None):
    """`ports`: listener name -> port (a listener without a port is left out)."""
    names = [n for n in LISTENERS if n in ports and (n not in NOOP_LISTENERS or noop_path)
             and (n not in COUNTED_LISTENERS or counted_path)]
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {"listeners": [listener(n, ports[n], wasm_path, noop_path, counted_path)
                                           for n in names]},
    }


if __name__ == "__main__":
    import os
    import sys

    wasm = os.path.join(tokens.ROOT, "dist", "mcp_authn.wasm")
    demo_ports = {name: 10100 + i for i, name in enumerate(LISTENERS)}
    json.dump(bootstrap(demo_ports, 10199, wasm), sys.stdout, indent=2)
    print()
