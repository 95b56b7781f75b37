// An MCP client that signs in with the TypeScript SDK (@modelcontextprotocol/sdk, pinned in
// tests/e2e/node-peers): its StreamableHTTPClientTransport with an OAuthClientProvider for the
// authorization-code grant. The SDK discovers (401, resource metadata, AS metadata), registers,
// and hands over the authorization URL, which a real browser (browser_login.mjs) follows to
// this script's loopback callback; then finishAuth(code), a tool call, and one refresh.
//
//   node ts_client.mjs --url http://127.0.0.1:GW/mcp --user alice --password ... [--artifacts DIR]
//
// Prints one JSON line shaped like py_client.py's.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const require = createRequire(path.join(process.env.NODE_PEERS || path.join(root, '.deps', 'node-peers'), 'package.json'));
const sdkRoot = path.join(path.dirname(require.resolve('@modelcontextprotocol/sdk/client/index.js')), '..', '..', '..');
const sdkVersion = JSON.parse(fs.readFileSync(path.join(sdkRoot, 'package.json'), 'utf8')).version;
const { Client } = await import(require.resolve('@modelcontextprotocol/sdk/client/index.js'));
const { StreamableHTTPClientTransport } = await import(require.resolve('@modelcontextprotocol/sdk/client/streamableHttp.js'));
const { UnauthorizedError, refreshAuthorization } = await import(require.resolve('@modelcontextprotocol/sdk/client/auth.js'));

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    scope: { type: 'string', default: 'mcp:tools' },
    artifacts: { type: 'string', default: '' },
    timeout: { type: 'string', default: '180' },
  },
});
setTimeout(() => { console.log(JSON.stringify({ sdk: sdkVersion, error: 'timeout' })); process.exit(1); },
  Number(args.timeout) * 1000).unref();

// The loopback redirect URI.
let arrived;
const callbackParams = new Promise((resolve) => { arrived = resolve; });
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/callback') arrived(Object.fromEntries(url.searchParams));
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<html><body>Signed in. You can close this window.</body></html>');
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const redirectUrl = `http://127.0.0.1:${server.address().port}/callback`;

// Every request the SDK makes, and the issuer of the AS metadata it read.
const hops = [];
let issuerRecorded = null;
const recordingFetch = async (input, init) => {
  const response = await fetch(input, init);
  const url = String(input instanceof Request ? input.url : input);
  hops.push({ method: (init?.method || (input instanceof Request ? input.method : 'GET')).toUpperCase(), url, status: response.status });
  if (response.status === 200 && /\/\.well-known\/(oauth-authorization-server|openid-configuration)/.test(url)) {
    issuerRecorded ??= (await response.clone().json()).issuer;
  }
  return response;
};

const browser = {};
const state = randomBytes(16).toString('base64url');
const store = {};
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      client_name: `mcp-authn signin test (typescript sdk ${sdkVersion})`,
      scope: args.scope,
    };
  },
  state: () => state,
  clientInformation: () => store.client,
  saveClientInformation: (client) => { store.client = client; },
  tokens: () => store.tokens,
  saveTokens: (tokens) => { store.tokens = tokens; },
  saveCodeVerifier: (verifier) => { store.verifier = verifier; },
  codeVerifier: () => store.verifier,
  redirectToAuthorization: async (authorizationUrl) => {
    browser.authorization_url = authorizationUrl.href;
    const argv = [path.join(here, 'browser_login.mjs'), '--url', authorizationUrl.href, '--until', redirectUrl,
      '--user', args.user, '--password', args.password];
    if (args.artifacts) argv.push('--artifacts', args.artifacts);
    const stdout = await new Promise((resolve) => {
      execFile(process.execPath, argv, { timeout: 150000 }, (_error, out) => resolve(out));
    });
    Object.assign(browser, JSON.parse(stdout.trim().split('\n').at(-1) || '{"error":"no output"}'));
  },
};

function claims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

async function callTools(transport) {
  const client = new Client({ name: 'mcp-authn-signin-ts', version: '1.0.0' });
  await client.connect(transport);
  const echo = await client.callTool({ name: 'echo', arguments: { text: 'signed in' } });
  const headers = await client.callTool({ name: 'echo_headers', arguments: {} });
  const result = {
    server: client.getServerVersion()?.name,
    echo: echo.content[0].text,
    upstream_headers: JSON.parse(headers.content[0].text),
  };
  await client.close();
  return result;
}

const out = { sdk: sdkVersion, hops, browser };
const started = Date.now();
try {
  const first = new StreamableHTTPClientTransport(new URL(args.url), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: 'mcp-authn-signin-ts', version: '1.0.0' });
  try {
    await client.connect(first);
    throw new Error('connected without signing in');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  if (browser.error) throw new Error(`browser login failed: ${browser.error}`);
  const params = await callbackParams;
  out.callback = params;
  if (params.state !== state) throw new Error(`state mismatch: ${params.state}`);
  await first.finishAuth(params.code);
  out.result = await callTools(new StreamableHTTPClientTransport(new URL(args.url), { authProvider: provider, fetch: recordingFetch }));
  out.seconds = (Date.now() - started) / 1000;
  out.issuer_recorded = issuerRecorded;
  out.client_id = store.client?.client_id;
  out.token_claims = claims(store.tokens.access_token);
  out.has_refresh_token = Boolean(store.tokens.refresh_token);
  if (store.tokens.refresh_token) {
    const metadataHop = hops.find((h) => h.status === 200 && /oauth-authorization-server|openid-configuration/.test(h.url));
    const metadata = await (await fetch(metadataHop.url)).json();
    const refresh = { token_endpoint: metadata.token_endpoint };
    try {
      const fresh = await refreshAuthorization(metadata.issuer, {
        metadata, clientInformation: store.client, refreshToken: store.tokens.refresh_token, resource: new URL(args.url),
      });
      refresh.status = 200;
      refresh.new_token_differs = fresh.access_token !== store.tokens.access_token;
      refresh.token_claims = claims(fresh.access_token);
      refresh.result = await callTools(new StreamableHTTPClientTransport(new URL(args.url), {
        requestInit: { headers: { authorization: `Bearer ${fresh.access_token}` } },
      }));
    } catch (error) {
      refresh.status = 0;
      refresh.body = String(error);
    }
    out.refresh = refresh;
  }
} catch (error) {
  out.error = `${error?.name}: ${error?.message}`;
}
server.close();
console.log(JSON.stringify(out));
process.exit(out.error ? 1 : 0);
