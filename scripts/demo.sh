#!/usr/bin/env bash
# The demo: builds the filter, installs Envoy and a real MCP server (Python `mcp` FastMCP)
# locally, starts both with inline demo keys, prints a token and the lines to try.
# Ctrl-C stops everything. `scripts/demo.sh --check` runs the printed requests itself and exits.
# Ports: ENVOY_PORT (10000), MCP_PORT (3000), ADMIN_PORT (9901).
# `--idp keycloak`: the browser sign-in demo with a real Keycloak (scripts/demo-keycloak.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
for ((i = 1; i <= $#; i++)); do
  if [[ ${!i} == --idp ]]; then
    next=$((i + 1))
    [[ ${!next:-} == keycloak ]] || { echo "error: --idp takes: keycloak" >&2; exit 2; }
    exec scripts/demo-keycloak.sh "$@"
  fi
done
source scripts/demo-common.sh
cargo build --locked --release --bin mcp-authn >&2  # `mcp-authn mint` makes the demo token

resource="http://127.0.0.1:${ENVOY_PORT}/mcp"
render_envoy envoy/demo/envoy-demo.yaml -e "s#http://127.0.0.1:10000/mcp#${resource}#"
start_mcp_and_envoy

TOKEN=$(target/release/mcp-authn mint --key envoy/demo/demo-signing-key.json --ttl 3600 \
  --claims "{\"iss\":\"https://demo-idp.mcp-authn.local\",\"aud\":\"${resource}\",\"sub\":\"demo-user\",\"scope\":\"mcp:tools\"}")
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
ACCEPT='accept: application/json, text/event-stream'

if [[ $CHECK == 1 ]]; then
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "$ACCEPT" -H 'content-type: application/json' -d "$INIT" "$resource")
  [[ $code == 401 ]] || { echo "demo check: expected 401 without a token, got $code" >&2; exit 1; }
  curl -sf "http://127.0.0.1:${ENVOY_PORT}/.well-known/oauth-protected-resource/mcp" | grep -q "\"resource\":\"${resource}\"" \
    || { echo "demo check: metadata document wrong" >&2; exit 1; }
  out=$(curl -s -X POST -H "$ACCEPT" -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" -d "$INIT" "$resource")
  grep -q '"serverInfo"' <<<"$out" || { echo "demo check: initialize with the token failed: $out" >&2; exit 1; }
  echo "demo check passed: 401 without a token, metadata served, initialize with the token"
  exit 0
fi

cat <<MSG

mcp-authn demo is up: Envoy on 127.0.0.1:${ENVOY_PORT} -> MCP server on 127.0.0.1:${MCP_PORT} (admin :${ADMIN_PORT})

Demo token (sub=demo-user, valid 1 h):
  TOKEN=$TOKEN

Without a token -> 401 and the RFC 9728 challenge:
  curl -si -X POST $resource -H '$ACCEPT' -H 'content-type: application/json' -d '$INIT'

The protected-resource metadata the challenge points at:
  curl -s http://127.0.0.1:${ENVOY_PORT}/.well-known/oauth-protected-resource/mcp

With the token -> the MCP server answers:
  curl -si -X POST $resource -H '$ACCEPT' -H 'content-type: application/json' -H "authorization: Bearer \$TOKEN" -d '$INIT'

MCP Inspector (Node 22): npx @modelcontextprotocol/inspector, transport "Streamable HTTP",
  URL $resource, header "Authorization: Bearer <token above>".

Filter stats: curl -s http://127.0.0.1:${ADMIN_PORT}/stats | grep mcp_authn
Ctrl-C stops Envoy and the MCP server.
MSG
wait
