"""A real Keycloak for the sign-in tests and the demo (scripts/setup-keycloak.sh installs it).

`Keycloak(log_dir, resources=[...]).start()` runs `kc.sh start-dev` on free 127.0.0.1 ports
(HTTP and the management port with /health/ready) with an in-memory database and imports the
`mcp` realm built by `realm()`, plus any further realms given as `more_realms` (each also built
by `realm()`, under another name). One Keycloak serves a whole test module: its hostname is
dynamic (start-dev), so each request's Host names the issuer, and a gateway that passes the
browser's Host through sees the realm under its own origin.

Run as a script it starts one for a person (scripts/demo.sh --idp keycloak):
    python keycloak.py --port 7080 --resource http://127.0.0.1:10000/mcp
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse

import harness

REALM = "mcp"
USERS = {"alice": "alice-password", "bob": "bob-password"}
# The demo's tool scopes (tests/e2e/demo_mcp_server.py, the Auth0 demo's rules).
TOOL_SCOPES = ("files:read", "files:delete")
SCOPE = "mcp:tools"
PUBLIC_CLIENT = "mcp-public-client"
# A confidential client with a service account, for tokens a test gets without a browser.
SERVICE_CLIENT, SERVICE_SECRET = "mcp-service", "mcp-service-secret"
VERSION = "26.5.6"


def home():
    """The unpacked distribution (scripts/setup-keycloak.sh --print-path)."""
    if os.environ.get("KEYCLOAK_HOME"):
        return os.environ["KEYCLOAK_HOME"]
    script = os.path.join(harness.ROOT, "scripts", "setup-keycloak.sh")
    done = subprocess.run([script, "--print-path"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"Keycloak is not installed: run scripts/setup-keycloak.sh ({done.stderr.strip()})")
    return done.stdout.strip()


def _scope(name, mappers=(), consent=True):
    return {
        "name": name,
        "protocol": "openid-connect",
        "attributes": {
            "include.in.token.scope": "true",
            "display.on.consent.screen": "true" if consent else "false",
        },
        "protocolMappers": list(mappers),
    }


def _mapper(name, mapper_type, config):
    return {"name": name, "protocol": "openid-connect", "protocolMapper": mapper_type,
            "consentRequired": False, "config": config}


def _audience(resource, index):
    # Keycloak does not turn RFC 8707 `resource` into `aud`; a hardcoded audience per MCP
    # resource does, on the scope every MCP client gets by default.
    return _mapper(f"audience-{index}", "oidc-audience-mapper", {
        "included.custom.audience": resource,
        "access.token.claim": "true",
        "id.token.claim": "false",
        "introspection.token.claim": "true",
    })


def _policy(name, provider, config):
    return {
        "name": name,
        "providerId": provider,
        "subType": "anonymous",
        "subComponents": {},
        "config": {key: value if isinstance(value, list) else [value] for key, value in config.items()},
    }


def realm(resources, redirect_uris=(), name=REALM, service_client=False):
    """A realm (`mcp` unless `name` says otherwise): users, scopes, the audience mapper and
    registration policies.

    resources: the MCP resource URLs tokens are for (each becomes an `aud` value).
    redirect_uris: those of the pre-registered public client `mcp-public-client`.
    service_client: also the confidential client `mcp-service` (client-credentials grant), whose
    tokens carry the same audiences.
    """
    basic = _scope("basic", [
        _mapper("sub", "oidc-sub-mapper", {"access.token.claim": "true", "introspection.token.claim": "true"}),
        _mapper("auth_time", "oidc-usersessionmodel-note-mapper", {
            "user.session.note": "AUTH_TIME", "claim.name": "auth_time", "jsonType.label": "long",
            "access.token.claim": "true", "id.token.claim": "true"}),
    ], consent=False)
    profile = _scope("profile", [
        _mapper("username", "oidc-usermodel-attribute-mapper", {
            "user.attribute": "username", "claim.name": "preferred_username", "jsonType.label": "String",
            "access.token.claim": "true", "id.token.claim": "true", "userinfo.token.claim": "true"}),
    ])
    mcp = _scope(SCOPE, [_audience(r, i) for i, r in enumerate(resources)])
    tools = [_scope(name) for name in TOOL_SCOPES]
    offline = _scope("offline_access")
    default_scopes = ["basic", "profile", SCOPE]
    optional_scopes = ["offline_access", *TOOL_SCOPES]
    clients = [
        {
            "clientId": PUBLIC_CLIENT,
            "name": "MCP public client (pre-registered)",
            "publicClient": True,
            "standardFlowEnabled": True,
            "directAccessGrantsEnabled": False,
            "redirectUris": list(redirect_uris),
            "webOrigins": ["+"],
            "attributes": {"pkce.code.challenge.method": "S256"},
            "defaultClientScopes": default_scopes,
            "optionalClientScopes": optional_scopes,
        }
    ]
    if service_client:
        clients.append({
            "clientId": SERVICE_CLIENT,
            "name": "MCP service client (client credentials, tests only)",
            "publicClient": False,
            "secret": SERVICE_SECRET,
            "serviceAccountsEnabled": True,
            "standardFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "defaultClientScopes": default_scopes,
        })
    return {
        "realm": name,
        "enabled": True,
        "sslRequired": "none",
        "registrationAllowed": False,
        "accessTokenLifespan": 600,
        "clientScopes": [basic, profile, mcp, offline, *tools],
        "defaultDefaultClientScopes": default_scopes,
        "defaultOptionalClientScopes": optional_scopes,
        "users": [
            {
                "username": user,
                "email": f"{user}@example.com",
                "emailVerified": True,
                "firstName": user.capitalize(),
                "lastName": "Example",
                "enabled": True,
                "credentials": [{"type": "password", "value": password, "temporary": False}],
                # mcp 2.x asks for offline_access whenever the server lists it; Keycloak grants
                # it only to users holding the role of that name.
                "realmRoles": ["offline_access"],
            }
            for user, password in USERS.items()
        ],
        "clients": clients,
        # Anonymous dynamic registration (RFC 7591), as MCP clients do it. Keycloak's default
        # anonymous policies are replaced by this list (an import that names any registration
        # policy gets no defaults). Left out on purpose:
        #   "Consent Required" is kept: the login shows Keycloak's consent page, which a user
        #   (and the browser test) passes with "Yes".
        #   "Full Scope Disabled" is dropped: it matters for role mappings only, of which there
        #   are none here.
        "components": {
            "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy": [
                # Only loopback may register, and only loopback redirect URIs (native and
                # desktop MCP clients use them, RFC 8252). The policy checks every URI of the
                # registration, and the MCP Inspector sends its homepage as client_uri, so
                # github.com is trusted too (this is a test and demo realm).
                _policy("Trusted Hosts", "trusted-hosts", {
                    "trusted-hosts": ["127.0.0.1", "localhost", "github.com"],
                    "host-sending-registration-request-must-match": "true",
                    "client-uris-must-match": "true",
                }),
                _policy("Consent Required", "consent-required", {}),
                _policy("Max Clients Limit", "max-clients", {"max-clients": "1000"}),
                # A client may ask for the realm's default scopes and the MCP scopes.
                _policy("Allowed Client Scopes", "allowed-client-templates", {
                    "allow-default-scopes": "true",
                    "allowed-client-scopes": [SCOPE, "offline_access", *TOOL_SCOPES],
                }),
                _policy("Allowed Protocol Mapper Types", "allowed-protocol-mappers", {
                    "allowed-protocol-mapper-types": [
                        "oidc-usermodel-property-mapper", "oidc-sha256-pairwise-sub-mapper",
                        "oidc-full-name-mapper", "oidc-address-mapper", "saml-user-property-mapper",
                        "oidc-usermodel-attribute-mapper", "saml-user-attribute-mapper",
                        "saml-role-list-mapper",
                    ],
                }),
            ]
        },
    }


class Keycloak:
    """`kc.sh start-dev` on free loopback ports; stopped by its process group."""

    def __init__(self, log_dir, resources, redirect_uris=(), port=None, name="keycloak", more_realms=(),
                 service_client=False):
        self.home = home()
        self.port = port or harness.free_port()
        self.management_port = harness.free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.origin}/realms/{REALM}"
        self.log_dir = log_dir
        self.name = name
        self.realm = realm(resources, redirect_uris, service_client=service_client)
        self.realms = [self.realm, *more_realms]
        self.process = None
        self.start_seconds = None

    def start(self, timeout=240):
        # start-dev imports from {home}/data/import only; one file per realm, rewritten per start
        # (the database is in memory, so nothing else carries over between runs).
        import_dir = os.path.join(self.home, "data", "import")
        shutil.rmtree(import_dir, ignore_errors=True)
        os.makedirs(import_dir)
        for document in self.realms:
            with open(os.path.join(import_dir, f"{document['realm']}-realm.json"), "w") as f:
                json.dump(document, f)
        env = dict(os.environ)
        env["JAVA_OPTS_KC_HEAP"] = "-Xms64m -Xmx512m"
        argv = [
            os.path.join(self.home, "bin", "kc.sh"), "start-dev",
            "--db=dev-mem",
            "--import-realm",
            "--http-host=127.0.0.1", f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            "--health-enabled=true",
            "--cache=local",
        ]
        started = time.monotonic()
        self.process = harness.Process(self.name, argv, self.log_dir, env=env)
        try:
            harness.wait_until(lambda: self.ready() or not self.process.alive(), timeout,
                               interval=0.5, what="Keycloak to be ready")
            if not self.process.alive():
                raise RuntimeError(f"Keycloak exited:\n{self.process.log_tail()}")
            # Ready means the realm import has run: each realm's discovery answers.
            harness.wait_until(self.realm_served, 30, interval=0.25, what="the realms")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def ready(self):
        try:
            status, _, _ = harness.http_request(self.management_port, "GET", "/health/ready", timeout=2)
            return status == 200
        except OSError:
            return False

    def realm_served(self):
        return all(harness.http_request(self.port, "GET", f"/realms/{document['realm']}/.well-known/"
                                        "openid-configuration")[0] == 200 for document in self.realms)

    def issuer_of(self, name):
        """The issuer of realm `name` as Keycloak names it to a client on its own origin."""
        return f"{self.origin}/realms/{name}"

    def service_token(self, name=REALM):
        """An access token of realm `name`'s `mcp-service` client (client-credentials grant)."""
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": SERVICE_CLIENT,
                                       "client_secret": SERVICE_SECRET}).encode()
        status, _, answer = harness.http_request(
            self.port, "POST", f"/realms/{name}/protocol/openid-connect/token",
            {"content-type": "application/x-www-form-urlencoded"}, body)
        if status != 200:
            raise AssertionError(f"Keycloak token ({name}): {status} {answer[:300]!r}")
        return json.loads(answer)["access_token"]

    def rss_bytes(self):
        """Resident memory of Keycloak's JVM (the child of kc.sh in its process group)."""
        total = 0
        for pid in _group_pids(self.process.proc.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def stop(self):
        if self.process is not None:
            self.process.stop(timeout=15)


def _group_pids(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=7080)
    parser.add_argument("--resource", action="append", default=[])
    parser.add_argument("--redirect-uri", action="append", default=[])
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args()
    # Keycloak runs in its own process group: a TERM to this script must still stop it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log_dir = args.log_dir or harness.new_log_dir("keycloak")
    kc = Keycloak(log_dir, args.resource, args.redirect_uri, port=args.port).start()
    print(json.dumps({"issuer": kc.issuer, "seconds": round(kc.start_seconds, 1),
                      "rss_mb": kc.rss_bytes() // (1 << 20), "log": kc.process.log_path}), flush=True)
    try:
        while kc.process.alive():
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        kc.stop()


if __name__ == "__main__":
    sys.exit(main())
