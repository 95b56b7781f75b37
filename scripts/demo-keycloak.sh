#!/usr/bin/env bash
# `scripts/demo.sh --idp keycloak`: a real Keycloak, Envoy with the filter and a real MCP server,
# so a person signs in with a browser. Installs what it needs (Keycloak, Envoy, the peers),
# starts the three on loopback and prints the MCP URL, a user and the Inspector line.
# Ctrl-C stops everything. `--check` signs in once headless with the `mcp` 2.3.0 client
# (tests/e2e/signin/py_client.py and Debian's chromium) and exits.
# Ports: ENVOY_PORT (10000), MCP_PORT (3000), ADMIN_PORT (9901), KEYCLOAK_PORT (7080).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ENVOY_PORT=${ENVOY_PORT:-10000}
MCP_PORT=${MCP_PORT:-3000}
ADMIN_PORT=${ADMIN_PORT:-9901}
KEYCLOAK_PORT=${KEYCLOAK_PORT:-7080}
CHECK=0
for arg in "$@"; do [[ $arg == --check ]] && CHECK=1; done

scripts/build.sh >&2
ENVOY=$(scripts/setup-envoy.sh)
scripts/setup-peers.sh
NODE=$(scripts/setup-idp.sh)
scripts/setup-keycloak.sh >/dev/null

WORK=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # message
  echo "error: $1; logs in $WORK" >&2
  for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  trap - EXIT
  exit 1
}
wait_for() { # url, what, tries (0.2 s each)
  for _ in $(seq "${3:-150}"); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.2
  done
  fail "$2 did not come up ($1)"
}

gateway="http://127.0.0.1:${ENVOY_PORT}"
resource="$gateway/mcp"
sed -e "s/port_value: 10000/port_value: ${ENVOY_PORT}/" \
    -e "s/port_value: 3000/port_value: ${MCP_PORT}/" \
    -e "s/port_value: 9901/port_value: ${ADMIN_PORT}/" \
    -e "s/port_value: 7080/port_value: ${KEYCLOAK_PORT}/" \
    -e "s#http://127.0.0.1:10000/#${gateway}/#g" \
    -e "s#filename: dist/mcp_authn.wasm#filename: ${ROOT}/dist/mcp_authn.wasm#" \
    envoy/idp/envoy-keycloak.yaml > "$WORK/envoy.yaml"

# Keycloak first: it takes about a minute (tests/e2e/keycloak.py prints a line when ready).
mkdir -p "$WORK/keycloak"
setsid .venv/bin/python tests/e2e/keycloak.py --port "$KEYCLOAK_PORT" --resource "$resource" \
  --redirect-uri "http://localhost:6274/oauth/callback" --redirect-uri "http://127.0.0.1:6274/oauth/callback" \
  --log-dir "$WORK/keycloak" > "$WORK/keycloak.log" 2>&1 &
pids+=($!)
setsid .venv/bin/python tests/e2e/mcp_server.py "$MCP_PORT" > "$WORK/mcp.log" 2>&1 &
pids+=($!)
setsid "$ENVOY" -c "$WORK/envoy.yaml" --concurrency 2 --log-level warn --disable-hot-restart > "$WORK/envoy.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:${ADMIN_PORT}/ready" "Envoy"
wait_for "http://127.0.0.1:${MCP_PORT}/" "the MCP server"
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
