// The web console in a real browser (Debian's Chromium, driven by playwright-core) against a
// running server: sign-in, services, documents with a conflicting save, list items, the live
// inspector, API keys, tokens, metrics and the Proxy, Matrix and Cognito pages. A screenshot is
// taken at each step.
//
// Environment: FERROSYNC_URL, FERROSYNC_ACCOUNT_SID, FERROSYNC_AUTH_TOKEN,
// FERROSYNC_API_KEY_SID, FERROSYNC_API_KEY_SECRET, CONSOLE_SCREENSHOTS (a directory),
// CHROMIUM (default /usr/bin/chromium).

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = required('FERROSYNC_URL');
const SID = required('FERROSYNC_ACCOUNT_SID');
const TOKEN = required('FERROSYNC_AUTH_TOKEN');
const KEY_SID = required('FERROSYNC_API_KEY_SID');
const KEY_SECRET = required('FERROSYNC_API_KEY_SECRET');
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? 'console-screenshots';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Any one wait in the page. */
const STEP_TIMEOUT = 15_000;
/** The whole run; the Rust side bounds it too. */
const RUN_TIMEOUT = 240_000;

const SERVICE = `console-e2e-${Date.now().toString(36)}`;
const AUTH = `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

/** The native API, as another client would call it. */
async function rest(method, path, body, headers = {}) {
  const response = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { Authorization: AUTH, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(STEP_TIMEOUT),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return data;
}

/**
 * Bounded waits on a locator, in the spirit of Playwright Test's `expect` (which lives in a
 * package of its own): each polls until the condition holds or STEP_TIMEOUT passes.
 */
function expect(locator) {
  const until = async (what, probe, holds) => {
    const deadline = Date.now() + STEP_TIMEOUT;
    let seen;
    for (;;) {
      try {
        seen = await probe();
        if (holds(seen)) return;
      } catch (err) {
        seen = `(${err.message.split('\n')[0]})`;
      }
      if (Date.now() > deadline) {
        throw new Error(`${locator} did not become ${what} within ${STEP_TIMEOUT} ms; last seen: ${JSON.stringify(seen)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const text = async () => (await locator.allInnerTexts()).join('\n');
  const matches = (pattern) => (v) => (pattern instanceof RegExp ? pattern.test(v) : v === pattern);
  return {
    toBeVisible: () => until('visible', () => locator.isVisible(), Boolean),
    toBeHidden: () => until('hidden', () => locator.isHidden(), Boolean),
    toBeDisabled: () => until('disabled', () => locator.isDisabled(), Boolean),
    toContainText: (t) => until(`containing "${t}"`, text, (v) => v.includes(t)),
    toHaveText: (t) => until(`"${t}"`, async () => (await text()).trim(), matches(t)),
    toHaveValue: (t) => until(`of value ${t}`, () => locator.inputValue(), matches(t)),
    toHaveCount: (n) => until(`${n} in number`, () => locator.count(), (v) => v === n),
  };
}

/** A form-encoded POST to a Twilio face, as the helper libraries send it. */
async function twilioForm(path, form) {
  const response = await fetch(`${BASE}${path}`, {
    method: 'POST',
    headers: { Authorization: AUTH, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
    signal: AbortSignal.timeout(STEP_TIMEOUT),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** A call to the Matrix client API. */
async function matrix(path, body, token) {
  const response = await fetch(`${BASE}/_matrix/client/v3${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(STEP_TIMEOUT),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  const file = join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, timeout: STEP_TIMEOUT });
  console.log(`  screenshot ${file}`);
}

function step(title) {
  console.log(`step: ${title}`);
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'ferrosync-console-chromium-'));
  const started = Date.now();
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    viewport: { width: 1360, height: 900 },
    // This machine's network is closed: Chromium must not try to reach Google's services.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const problems = [];
  try {
    const page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.setDefaultNavigationTimeout(30_000);
    page.on('pageerror', (err) => problems.push(`uncaught in the page: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) {
        problems.push(`console: ${msg.text()}`);
      }
    });
    await scenario(page);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  assert.deepEqual(problems, [], 'the page raised errors or violated its CSP');
  console.log(`the console's browser test passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function scenario(page) {
  step('sign-in refuses wrong credentials');
  await page.goto(`${BASE}/console/`);
  await page.getByLabel('Account SID or API key SID').fill(SID);
  await page.getByLabel('Auth Token or API key secret').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not accepted');
  await screenshot(page, 'signin-refused');

  step('sign in with the root account');
  await page.getByLabel('Auth Token or API key secret').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Services' })).toBeVisible();
  await expect(page.getByTestId('whoami')).toContainText(SID);
  await screenshot(page, 'services');

  step('create a service');
  const create = page.getByRole('form', { name: 'Create a service' });
  await create.getByLabel('Unique name').fill(SERVICE);
  await create.getByRole('button', { name: 'Create service' }).click();
  await expect(page.getByRole('heading', { level: 1, name: SERVICE })).toBeVisible();
  assert.equal((await rest('GET', `/services/${SERVICE}`)).unique_name, SERVICE);

  step('create a document; invalid JSON disables the button and says where');
  const newDoc = page.getByRole('form', { name: 'Create a document' });
  await newDoc.getByLabel('Unique name').fill('settings');
  const data = newDoc.getByLabel('Data', { exact: true });
  await data.fill('{\n  "theme": "dark",\n}');
  await expect(newDoc.getByRole('status')).toContainText('Invalid JSON at line 3');
  await expect(newDoc.getByRole('button', { name: 'Create document' })).toBeDisabled();
  await screenshot(page, 'invalid-json');
  await data.fill('{"theme": "dark"}');
  await expect(newDoc.getByRole('status')).toHaveText('Valid JSON');
  await newDoc.getByRole('button', { name: 'Create document' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'settings' })).toBeVisible();
  await expect(page.getByTestId('document-editor-revision')).toHaveText('Revision 0');

  step('edit and save');
  const editor = page.getByLabel('Document data (JSON)');
  await editor.fill('{"theme": "light"}');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByText('Saved as revision 1.')).toBeVisible();
  assert.deepEqual((await rest('GET', `/services/${SERVICE}/documents/settings`)).data, { theme: 'light' });
  await screenshot(page, 'document-saved');

  step('a change made elsewhere, then a save in the console: the conflict is shown');
  await rest('PUT', `/services/${SERVICE}/documents/settings`, { data: { theme: 'blue', by: 'api' } });
  await editor.fill('{"theme": "green"}');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  const conflict = page.getByTestId('conflict');
  await expect(conflict).toBeVisible();
  await expect(conflict.getByTestId('conflict-theirs')).toContainText('"blue"');
  await expect(conflict.getByTestId('conflict-mine')).toContainText('"green"');
  await expect(editor).toHaveValue(/green/);
  assert.deepEqual((await rest('GET', `/services/${SERVICE}/documents/settings`)).data, { theme: 'blue', by: 'api' });
  await screenshot(page, 'conflict');

  step('overwrite with mine');
  await conflict.getByRole('button', { name: 'Overwrite with mine' }).click();
  await expect(page.getByText('Saved as revision 3.')).toBeVisible();
  await expect(conflict).toBeHidden();
  assert.deepEqual((await rest('GET', `/services/${SERVICE}/documents/settings`)).data, { theme: 'green' });
  await screenshot(page, 'conflict-overwritten');

  step('another conflict: take theirs');
  await rest('PUT', `/services/${SERVICE}/documents/settings`, { data: { theme: 'purple' } });
  await editor.fill('{"theme": "orange"}');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(conflict).toBeVisible();
  await conflict.getByRole('button', { name: 'Take theirs' }).click();
  await expect(editor).toHaveValue(/purple/);
  await expect(page.getByTestId('document-editor-revision')).toHaveText('Revision 4');
  assert.deepEqual((await rest('GET', `/services/${SERVICE}/documents/settings`)).data, { theme: 'purple' });

  step('browse the service: the document is listed');
  await page.getByRole('navigation', { name: 'Object kinds' }).getByRole('link', { name: 'Documents' }).click();
  await expect(page.getByTestId('documents-table')).toContainText('settings');
  await screenshot(page, 'documents');

  step('a list with items, edited in place');
  await page.getByRole('navigation', { name: 'Object kinds' }).getByRole('link', { name: 'Lists' }).click();
  const newList = page.getByRole('form', { name: 'Create a list' });
  await newList.getByLabel('Unique name').fill('todo');
  await newList.getByRole('button', { name: 'Create list' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'todo' })).toBeVisible();
  const addItem = page.getByRole('form', { name: 'Add an item' });
  await addItem.getByLabel('Item data').fill('{"text": "buy milk"}');
  await addItem.getByRole('button', { name: 'Append item' }).click();
  await expect(page.getByTestId('items-table')).toContainText('buy milk');
  await page.getByRole('button', { name: 'Edit item 0' }).click();
  await page.getByLabel('Item 0 data (JSON)').fill('{"text": "buy oat milk"}');
  await page.getByTestId('item-editor').getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByTestId('items-table')).toContainText('buy oat milk');
  const items = await rest('GET', `/services/${SERVICE}/lists/todo/items`);
  assert.deepEqual(items.items.map((i) => i.data), [{ text: 'buy oat milk' }]);
  await screenshot(page, 'list-items');

  step('the live inspector receives an event written through the REST API');
  await page.getByRole('link', { name: 'Open live inspector' }).click();
  await expect(page.getByTestId('inspector-status')).toContainText(`Listening on ${SERVICE}`);
  await rest('POST', `/services/${SERVICE}/lists/todo/items`, { data: { text: 'from the API' } });
  const event = page.getByTestId('inspector-event').filter({ hasText: 'list_item_added' });
  await expect(event).toHaveCount(1);
  await expect(event).toContainText('todo');
  await screenshot(page, 'inspector');

  step('inspector filters');
  await page.getByLabel('Event type').selectOption('document_updated');
  await expect(page.getByTestId('inspector-event')).toHaveCount(0);
  await page.getByLabel('Event type').selectOption('');
  await expect(page.getByTestId('inspector-event')).toHaveCount(1);

  step('API keys: a new secret is shown once');
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'API keys & tokens' }).click();
  const newKey = page.getByRole('form', { name: 'Create an API key' });
  await newKey.getByLabel('Friendly name').fill('browser test');
  await newKey.getByRole('button', { name: 'Create key' }).click();
  await expect(page.getByTestId('new-key-secret')).toHaveValue(/.{16,}/);
  await expect(page.getByTestId('keys-table')).toContainText('browser test');
  const mint = page.getByRole('form', { name: 'Mint an access token' });
  await mint.getByLabel('Service').selectOption(SERVICE);
  await mint.getByLabel('Identity').fill('alice');
  await mint.getByRole('button', { name: 'Mint token' }).click();
  await expect(page.getByTestId('minted-token')).toHaveValue(/^ey/);
  await screenshot(page, 'keys');

  step('metrics');
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Metrics' }).click();
  await expect(page.getByRole('figure', { name: 'WebSocket connections' })).toBeVisible();
  // Rates need two samples (three seconds apart): then the native API's requests are charted.
  const requests = page.getByRole('figure', { name: 'HTTP requests per second, by face' });
  await expect(requests.getByRole('listitem').filter({ hasText: 'native' })).toHaveCount(1);
  await screenshot(page, 'metrics');

  step('the other faces: Proxy, Matrix and Cognito');
  const proxyService = await twilioForm('/twilio/proxy/v1/Services', { UniqueName: `${SERVICE}-proxy` });
  await twilioForm(`/twilio/proxy/v1/Services/${proxyService.sid}/Sessions`, { UniqueName: 'booking-42' });
  const user = `console-${Date.now().toString(36)}`;
  const registered = await matrix('/register', { username: user, password: 'pw', auth: { type: 'm.login.dummy' } });
  await matrix('/createRoom', { name: 'Console room', topic: 'made by the browser test' }, registered.access_token);
  const console_ = page.getByRole('navigation', { name: 'Console' });
  await console_.getByRole('link', { name: 'Proxy' }).click();
  await page.getByTestId('proxy-services').getByRole('link', { name: `${SERVICE}-proxy` }).click();
  await expect(page.getByTestId('proxy-sessions')).toContainText('booking-42');
  await screenshot(page, 'proxy');
  await console_.getByRole('link', { name: 'Matrix' }).click();
  await expect(page.getByTestId('matrix-users')).toContainText(`@${user}:`);
  await page.getByRole('navigation', { name: 'Matrix' }).getByRole('link', { name: 'Rooms' }).click();
  await expect(page.getByTestId('matrix-rooms')).toContainText('Console room');
  await screenshot(page, 'matrix');
  await console_.getByRole('link', { name: 'Cognito' }).click();
  await expect(page.getByTestId('cognito-pools')).toBeVisible();
  await screenshot(page, 'cognito');

  step('sign out, then in again with an API key');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in to the console' })).toBeVisible();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'signing out forgets the credentials');
  await page.getByLabel('Account SID or API key SID').fill(KEY_SID);
  await page.getByLabel('Auth Token or API key secret').fill(KEY_SECRET);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('whoami')).toContainText(`${KEY_SID} (API key)`);
  await expect(page.getByRole('heading', { level: 1, name: 'Cognito' })).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in to the console' })).toBeVisible();
}

const guard = setTimeout(() => {
  console.error(`the browser test did not finish within ${RUN_TIMEOUT / 1000} s`);
  process.exit(1);
}, RUN_TIMEOUT);

main().then(() => {
  clearTimeout(guard);
}, (err) => {
  console.error(err);
  process.exit(1);
});
