// The MCP Inspector's web UI (2.12.0, started by the test with --transport http --server-url)
// signs in the way a person does: open the UI, switch the server on, type the password on the
// IdP's login page, accept consent, wait for "Connected", then run the `echo` tool.
//
//   node inspector_login.mjs --ui URL_WITH_TOKEN --user U --password P [--artifacts DIR]
//
// Prints one JSON line: {"pages": [...], "callback": URL, "network": TEXT, "result": TEXT, "seconds": s}.
// On failure a screenshot and the page's HTML go to --artifacts.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const require = createRequire(path.join(process.env.NODE_PEERS || path.join(root, '.deps', 'node-peers'), 'package.json'));
const { chromium } = require('playwright-core');

const { values: args } = parseArgs({
  options: {
    ui: { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    text: { type: 'string', default: 'signed in through the Inspector' },
    artifacts: { type: 'string', default: '' },
  },
});

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-authn-inspector-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(30000);
const pages = [];
page.on('response', (response) => {
  const request = response.request();
  if (!request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
  pages.push({ method: request.method(), url: response.url(), status: response.status(),
    location: response.headers().location || null });
});

const started = Date.now();
const out = { pages };
try {
  await page.goto(args.ui);
  // The connect switch (Mantine: the visible track takes the click).
  await page.locator('.mantine-Switch-track').first().click();
  await page.waitForSelector('input[name=username]');
  await page.fill('input[name=username]', args.user);
  await page.fill('input[name=password]', args.password);
  await Promise.all([page.waitForNavigation(), page.click('[type=submit]')]);
  if (await page.locator('[name=accept]').count()) {
    await Promise.all([page.waitForNavigation(), page.click('[name=accept]')]);
  }
  await page.getByText('Connected', { exact: true }).waitFor();
  out.callback = pages.map((p) => p.url).find((url) => url.includes('/oauth/callback')) || null;
  out.connected_seconds = (Date.now() - started) / 1000;
  await page.getByText('Network', { exact: true }).first().click();
  out.network = await page.locator('body').innerText();
  await page.getByText('Tools', { exact: true }).first().click();
  await page.getByText('echo', { exact: true }).first().click();
  await page.getByRole('textbox', { name: 'Text' }).fill(args.text);
  await page.getByRole('button', { name: 'Execute Tool' }).click();
  await page.getByText(args.text, { exact: false }).first().waitFor();
  out.result = await page.locator('body').innerText();
  out.seconds = (Date.now() - started) / 1000;
} catch (error) {
  out.error = String(error);
  out.url = page.url();
  if (args.artifacts) {
    fs.mkdirSync(args.artifacts, { recursive: true });
    await page.screenshot({ path: path.join(args.artifacts, `inspector-${Date.now()}.png`), fullPage: true }).catch(() => {});
    fs.writeFileSync(path.join(args.artifacts, `inspector-${Date.now()}.html`), await page.content().catch(() => ''));
  }
}
await context.close();
fs.rmSync(profile, { recursive: true, force: true });
console.log(JSON.stringify(out));
process.exit(out.error ? 1 : 0);
