// A real OpenID provider for the end-to-end suite: panva's `oidc-provider` (pinned in
// scripts/setup-idp.sh, installed into .deps/node), bound to 127.0.0.1 on the given port.
//
//   node server.mjs --port P --issuer URL --layout standard|keycloak \
//        --resource URL [--resource URL ...] [--authorization-query 'a=b&c=d'] \
//        [--jwks-path /path] [--rfc9207 on|off] [--user name:password ...] [--cimd on]
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
// resource (only the --resource URLs are accepted). The authorization-code grant with PKCE
// for a person: a login page (username, password: the --user accounts) and a consent page
// ("Yes", name=accept) under {issuer}/interaction/, and a refresh token for every client
// allowed the refresh_token grant.
//
// RFC 9207 is on by default, as in oidc-provider: every authorization response carries `iss`
// and the metadata says `authorization_response_iss_parameter_supported: true`. `--rfc9207
// off` plays a provider that does not implement it: neither is sent.
//
// `--cimd on` enables Client ID Metadata Documents (oidc-provider's experimental
// clientIdMetadataDocument, draft-02): an https client_id is fetched as the client's metadata
// (`client_id_metadata_document_supported: true`). oidc-provider refuses to fetch from loopback
// addresses (SSRF protection); the test documents are served on loopback, so this IdP lifts that.
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
    rfc9207: { type: 'string', default: 'on' },
    cimd: { type: 'string', default: 'off' },
    user: { type: 'string', multiple: true, default: ['alice:alice-password'] },
  },
});
const users = new Map(args.user.map((pair) => pair.split(/:(.*)/s).slice(0, 2)));

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
  findAccount: async (_ctx, sub) => (users.has(sub) ? { accountId: sub, claims: async () => ({ sub }) } : undefined),
  interactions: { url: async (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}` },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ...(args.cimd === 'on' ? {
    // Drop oidc-provider's SSRF-protecting dispatcher: the test's documents are on 127.0.0.1.
    fetch: (url, { dispatcher: _loopbackRefused, ...options }) => globalThis.fetch(url, options),
  } : {}),
  features: {
    clientIdMetadataDocument: { enabled: args.cimd === 'on', ack: 'draft-02' },
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

// RFC 9207 off: a provider that neither advertises nor sends `iss` in authorization responses.
if (args.rfc9207 === 'off') {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.body && typeof ctx.body === 'object' && 'authorization_response_iss_parameter_supported' in ctx.body) {
      const { authorization_response_iss_parameter_supported: _dropped, ...rest } = ctx.body;
      ctx.body = rest;
    }
    const location = ctx.response.get('location');
    if (ctx.status >= 300 && ctx.status < 400 && location) {
      const url = new URL(location, issuer);
      if (url.searchParams.get('iss') === issuer) {
        url.searchParams.delete('iss');
        ctx.response.set('location', url.href);
      }
    }
  });
} else if (args.rfc9207 !== 'on') {
  throw new Error('--rfc9207 is on or off');
}

// The person's pages. Form actions are relative, so they work wherever the pages are served.
const page = (title, body) => `<!doctype html><html><head><title>${title}</title></head><body>
<h1>${title}</h1>${body}</body></html>`;
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return new URLSearchParams(raw);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new errors.InvalidRequest('interaction mismatch');
  const html = (status, body) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  };
  if (req.method === 'GET' && details.prompt.name === 'login') {
    return html(200, page('Sign in', `<form method="post" action="${escape(uid)}/login">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit" id="kc-login">Sign in</button></form>`));
  }
  if (req.method === 'GET' && details.prompt.name === 'consent') {
    const scopes = [...new Set(Object.values(details.prompt.details.missingResourceScopes || {}).flat()
      .concat(details.prompt.details.missingOIDCScope || []))];
    return html(200, page('Grant access', `<p>${escape(details.params.client_id)} asks for: ${escape(scopes.join(' '))}</p>
<form method="post" action="${escape(uid)}/confirm"><button type="submit" name="accept" value="yes">Yes</button></form>`));
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const name = form.get('username');
    if (!users.has(name) || users.get(name) !== form.get('password')) {
      return html(401, page('Sign in', '<p>Invalid username or password.</p>'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: name } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') {
    const { prompt: { details: missing }, params, session: { accountId } } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return html(400, page('Unexpected step', `<p>${escape(details.prompt.name)}</p>`));
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

const interactionPath = new RegExp(`^${mountPath}/interaction/([A-Za-z0-9_-]+)(?:/(login|confirm))?$`);

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
  const step = interactionPath.exec(pathname);
  if (step) {
    return interaction(req, res, step[1], step[2]).catch((error) => {
      console.log(JSON.stringify({ event: 'interaction.error', error: error?.message }));
      if (!res.headersSent) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${error?.message}`);
      }
    });
  }
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
