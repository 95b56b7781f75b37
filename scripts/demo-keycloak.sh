#!/usr/bin/env bash
# `scripts/demo.sh --idp keycloak`: a real Keycloak, Envoy with the filter and a real MCP server,
# so a person signs in with a browser. Installs what it needs (Keycloak, Envoy, the peers),
# starts the three on loopback and prints the MCP URL, a user and the Inspector line.
# Ctrl-C stops everything. `--check` signs in once headless with the `mcp` 2.3.0 client
# (tests/e2e/signin/py_client.py and Debian's chromium) and exits.
# Ports: ENVOY_PORT (10000), MCP_PORT (3000), ADMIN_PORT (9901), KEYCLOAK_PORT (7080).
set -euo pipefail
cd "$(dirname "$0")/.."
KEYCLOAK_PORT=${KEYCLOAK_PORT:-7080}
source scripts/demo-common.sh
NODE=$(scripts/setup-idp.sh)
scripts/setup-keycloak.sh >/dev/null

gateway="http://127.0.0.1:${ENVOY_PORT}"
resource="$gateway/mcp"
render_envoy envoy/idp/envoy-keycloak.yaml \
  -e "s/port_value: 7080/port_value: ${KEYCLOAK_PORT}/" -e "s#http://127.0.0.1:10000/#${gateway}/#g"

# Keycloak first: it takes about a minute (tests/e2e/keycloak.py prints a line when ready).
mkdir -p "$WORK/keycloak"
setsid .venv/bin/python tests/e2e/keycloak.py --port "$KEYCLOAK_PORT" --resource "$resource" \
  --redirect-uri "http://localhost:6274/oauth/callback" --redirect-uri "http://127.0.0.1:6274/oauth/callback" \
  --log-dir "$WORK/keycloak" > "$WORK/keycloak.log" 2>&1 &
pids+=($!)
start_mcp_and_envoy
echo "waiting for Keycloak (about a minute) ..." >&2
for _ in $(seq 300); do
  grep -q '"issuer"' "$WORK/keycloak.log" && break
  kill -0 "${pids[0]}" 2>/dev/null || fail "Keycloak exited"
  sleep 1
done
grep -q '"issuer"' "$WORK/keycloak.log" || fail "Keycloak did not start in 300 s"
echo "Keycloak: $(grep '"issuer"' "$WORK/keycloak.log")" >&2

if [[ $CHECK == 1 ]]; then
  out=$(.venv-mcp2/bin/python tests/e2e/signin/py_client.py --url "$resource" --user alice \
    --password alice-password --node "$NODE" --artifacts "$WORK/artifacts" | tail -n 1) || true
  .venv/bin/python - "$out" "$resource" <<'PY' || fail "the headless sign-in failed: $out"
import json, sys
out, resource = json.loads(sys.argv[1]), sys.argv[2]
assert "error" not in out, out["error"]
assert out["callback"]["iss"] == resource == out["issuer_recorded"], out["callback"]
assert out["result"]["echo"] == "signed in" and "authorization" not in out["result"]["upstream_headers"]
assert out["refresh"]["status"] == 200
print(f"demo check passed: alice signed in through Keycloak with mcp {out['sdk']} in {out['seconds']} s "
      f"(401, metadata, registration, login, consent, iss={out['callback']['iss']}, token, tool call, refresh)")
PY
  exit 0
fi

NODE_DIR=$(dirname "$NODE")
cat <<MSG

Sign in with Keycloak: Envoy on ${gateway} -> MCP server on 127.0.0.1:${MCP_PORT}; Keycloak ${KEYCLOAK_PORT} behind the gateway

  MCP URL:  ${resource}
  User:     alice   Password: alice-password      (also bob / bob-password)

Any MCP client that supports OAuth logs in with only the MCP URL; the browser shows Keycloak's
login page at ${gateway}/realms/mcp/... and asks for consent once.

MCP Inspector 2.12.0 (on the Node 22 that scripts/setup-idp.sh installed):
  PATH="${NODE_DIR}:\$PATH" npx -y @modelcontextprotocol/inspector@2.12.0 --web --transport http --server-url ${resource}
  open the http://127.0.0.1:6274/?MCP_INSPECTOR_API_TOKEN=... address it prints, switch the server on,
  sign in as alice, accept, then Tools -> echo -> Execute Tool.

Headless check of the same login: scripts/demo.sh --idp keycloak --check
Keycloak admin console: not exposed (only the realm passes the gateway).
Ctrl-C stops Keycloak, Envoy and the MCP server.
MSG
wait
