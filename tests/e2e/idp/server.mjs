// A real OpenID provider for the end-to-end suite: panva's `oidc-provider` (pinned in
// scripts/setup-idp.sh, installed into .deps/node), bound to 127.0.0.1 on the given port.
//
//   node server.mjs --port P --issuer URL --layout standard|keycloak \
//        --resource URL [--resource URL ...] [--authorization-query 'a=b&c=d'] \
//        [--jwks-path /path]
//
// Layouts:
//   standard  issuer at the origin; RFC 8414 and OpenID discovery at the root,
//             JWKS at /.well-known/jwks.json (or --jwks-path), registration at /register,
//             token at /token.
//   keycloak  issuer http://127.0.0.1:P/realms/mcp, the provider mounted under /realms/mcp
//             with Keycloak's endpoint paths: /protocol/openid-connect/{auth,token,certs},
//             /clients-registrations/openid-connect; OpenID discovery only, every
//             /.well-known/oauth-authorization-server document answers 404 (as Keycloak).
//
// Features: open dynamic client registration, the client-credentials grant, resource
// indicators (RFC 8707) issuing RS256 JWT access tokens whose `aud` is the requested
// resource (only the --resource URLs are accepted). No user interaction is needed.
//
// Each request is logged to stdout as one JSON line {"method","path","status"}, so the
// tests can prove which hops reached the provider. "listening" is printed once ready.

import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const require = createRequire(path.join(process.env.IDP_NODE_PREFIX || path.join(root, '.deps', 'node'), 'package.json'));
const { default: Provider, errors } = await import(require.resolve('oidc-provider'));
const { generateKeyPair, exportJWK } = await import(require.resolve('jose'));

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    issuer: { type: 'string' },
    layout: { type: 'string', default: 'standard' },
    resource: { type: 'string', multiple: true, default: [] },
    'authorization-query': { type: 'string', default: '' },
    'jwks-path': { type: 'string', default: '/.well-known/jwks.json' },
    scope: { type: 'string', default: 'mcp:tools' },
  },
});

const port = Number(args.port);
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required');
const layout = args.layout;
if (!['standard', 'keycloak'].includes(layout)) throw new Error(`unknown --layout ${layout}`);
const issuer = args.issuer || (layout === 'keycloak'
  ? `http://127.0.0.1:${port}/realms/mcp`
  : `http://127.0.0.1:${port}`);
const mountPath = new URL(issuer).pathname.replace(/\/$/, '');
const resources = new Set(args.resource);
const resourceScope = args.scope;

const routes = layout === 'keycloak'
  ? {
    authorization: '/protocol/openid-connect/auth',
    token: '/protocol/openid-connect/token',
    jwks: '/protocol/openid-connect/certs',
    userinfo: '/protocol/openid-connect/userinfo',
    introspection: '/protocol/openid-connect/token/introspect',
    revocation: '/protocol/openid-connect/revoke',
    end_session: '/protocol/openid-connect/logout',
    registration: '/clients-registrations/openid-connect',
  }
  : {
    authorization: '/authorize',
    token: '/token',
    jwks: args['jwks-path'],
    registration: '/register',
  };

// A fresh signing key per run: nothing secret lives in the repository.
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: `idp-rs256-${port}`, alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  routes,
  scopes: ['openid', 'offline_access', resourceScope],
  clientDefaults: {
    grant_types: ['client_credentials'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  cookies: { keys: ['e2e-only-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    registration: { enabled: true, initialAccessToken: false },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (!resources.has(resourceIndicator)) {
          throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        }
        return {
          scope: resourceScope,
          audience: resourceIndicator,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});
provider.proxy = false;

// An authorization endpoint that already carries a query (some tenants' discovery does).
const authorizationQuery = args['authorization-query'];
if (authorizationQuery) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path.endsWith('/openid-configuration') || ctx.path.endsWith('/oauth-authorization-server')) {
      if (ctx.body && typeof ctx.body === 'object' && ctx.body.authorization_endpoint) {
        ctx.body = { ...ctx.body, authorization_endpoint: `${ctx.body.authorization_endpoint}?${authorizationQuery}` };
      }
    }
  });
}

for (const event of ['server_error', 'grant.error', 'registration_create.error', 'discovery.error', 'jwks.error']) {
  provider.on(event, (_ctx, error) => {
    console.log(JSON.stringify({ event, error: error?.message, detail: error?.error_description }));
  });
}

const callback = provider.callback();

function notFound(res) {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: 'not_found' }));
}

const server = http.createServer((req, res) => {
  const original = req.url;
  const pathname = original.split('?')[0];
  // Logged when the answer is handed over (not on 'finish', which may come after the client
  // already acted on it), so a test that got an answer finds its line.
  const end = res.end.bind(res);
  res.end = (...rest) => {
    console.log(JSON.stringify({ method: req.method, path: original, status: res.statusCode }));
    return end(...rest);
  };
  if (layout === 'keycloak') {
    // Keycloak publishes no RFC 8414 document; only the realm is served.
    if (pathname.includes('/.well-known/oauth-authorization-server')) return notFound(res);
    if (pathname !== mountPath && !pathname.startsWith(`${mountPath}/`)) return notFound(res);
    // Mount under the realm path (what express' app.use(prefix, ...) does): the provider sees
    // the path below it and derives the prefix from req.originalUrl.
    req.originalUrl = original;
    req.url = original.slice(mountPath.length) || '/';
  }
  return callback(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: port, issuer, layout }));
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
