// A person at the browser: opens the authorization URL an MCP client handed over, types the
// username and password on the identity provider's own login page, accepts its consent page
// if one is shown, and stops once the browser reaches the client's redirect URI.
//
//   node browser_login.mjs --url AUTHORIZE_URL --until CALLBACK_PREFIX --user U --password P \
//        [--artifacts DIR] [--timeout-ms 90000]
//
// Debian's chromium (/usr/bin/chromium) driven by playwright-core from .deps/node-peers,
// headless, with a fresh profile and the flags this sandbox needs. Prints one JSON line:
// {"callback": URL, "pages": [{method, url, status, location}], "failed": [sub-resources >= 400],
//  "steps": [...], "seconds": s}.
// On failure it saves a screenshot and the page's HTML under --artifacts and exits 1.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const peers = process.env.NODE_PEERS || path.join(root, '.deps', 'node-peers');
const require = createRequire(path.join(peers, 'package.json'));
const { chromium } = require('playwright-core');

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    until: { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    artifacts: { type: 'string', default: '' },
    'timeout-ms': { type: 'string', default: '90000' },
  },
});
for (const required of ['url', 'until', 'user', 'password']) {
  if (!args[required]) throw new Error(`--${required} is required`);
}
const deadline = Date.now() + Number(args['timeout-ms']);

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-authn-chromium-'));
const started = Date.now();
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(20000);

const pages = [];
const failed = []; // sub-resources (styles, scripts) the pages could not load
page.on('response', (response) => {
  const request = response.request();
  if (!request.isNavigationRequest() && response.status() >= 400) {
    failed.push({ url: response.url(), status: response.status() });
  }
  if (!request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
  pages.push({
    method: request.method(),
    url: response.url(),
    status: response.status(),
    location: response.headers().location || null,
  });
});

const steps = [];
const atCallback = () => page.url().startsWith(args.until);

async function visible(selector) {
  const found = page.locator(selector).first();
  return (await found.count()) > 0 && (await found.isVisible());
}

async function act() {
  if (await visible('input[name=username]')) {
    await page.fill('input[name=username]', args.user);
    await page.fill('input[name=password]', args.password);
    steps.push({ step: 'login', url: page.url() });
    await Promise.all([page.waitForNavigation(), page.click('[type=submit]')]);
    return true;
  }
  if (await visible('[name=accept]')) {
    steps.push({ step: 'consent', url: page.url() });
    await Promise.all([page.waitForNavigation(), page.click('[name=accept]')]);
    return true;
  }
  return false;
}

async function saveArtifacts(error) {
  if (!args.artifacts) return;
  fs.mkdirSync(args.artifacts, { recursive: true });
  const stamp = `${Date.now()}`;
  try {
    await page.screenshot({ path: path.join(args.artifacts, `login-${stamp}.png`), fullPage: true });
    fs.writeFileSync(path.join(args.artifacts, `login-${stamp}.html`), await page.content());
  } catch (shotError) {
    steps.push({ step: 'artifacts failed', error: String(shotError) });
  }
  fs.writeFileSync(path.join(args.artifacts, `login-${stamp}.json`),
    JSON.stringify({ error: String(error), url: page.url(), pages, steps }, null, 2));
}

let exitCode = 0;
try {
  await page.goto(args.url);
  while (!atCallback()) {
    if (Date.now() > deadline) throw new Error(`no callback by the deadline; at ${page.url()}`);
    if (!(await act())) {
      // Nothing to fill in: a redirect may still be under way.
      await page.waitForLoadState('load');
      if (!atCallback() && !(await act())) {
        await page.waitForTimeout(200);
        const text = (await page.locator('body').innerText().catch(() => '')).slice(0, 300);
        if (steps.length && steps.at(-1).waiting === page.url()) {
          throw new Error(`stuck at ${page.url()}: ${text}`);
        }
        steps.push({ waiting: page.url() });
      }
    }
  }
  await page.waitForLoadState('load');
  console.log(JSON.stringify({ callback: page.url(), pages, failed, steps, seconds: (Date.now() - started) / 1000 }));
} catch (error) {
  await saveArtifacts(error);
  console.log(JSON.stringify({ error: String(error), url: page.url(), pages, steps }));
  exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
