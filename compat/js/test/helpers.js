'use strict';
// What every test uses: the server's address and credentials from the environment, access
// tokens signed here with the API key (Twilio's AccessToken format), SDK clients pointed at the
// twilsock face, and bounded waits for events.

const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const { SyncClient } = require('twilio-sync');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through the Rust compat harness`);
  return value;
};

const URL_BASE = env('FERROSYNC_URL').replace(/\/$/, '');
const HOST = URL_BASE.replace(/^https?:\/\//, '');
const ACCOUNT_SID = env('FERROSYNC_ACCOUNT_SID');
const AUTH_TOKEN = env('FERROSYNC_AUTH_TOKEN');
const KEY_SID = env('FERROSYNC_API_KEY_SID');
const KEY_SECRET = env('FERROSYNC_API_KEY_SECRET');

/** How long any one awaited event may take: generous, the machine is shared. */
const EVENT_TIMEOUT_MS = 20000;

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * An AccessToken as Twilio's helper libraries mint it: HS256 with the API key's secret,
 * `cty: twilio-fpa;v=1`, identity and the data_sync grant. `lifetime` and `issuedAgo` (seconds)
 * let a test make a token that is about to expire.
 */
function accessToken(identity, service, { lifetime = 3600, issuedAgo = 0, secret = KEY_SECRET } = {}) {
  const now = Math.floor(Date.now() / 1000) - issuedAgo;
  const header = { typ: 'JWT', alg: 'HS256', cty: 'twilio-fpa;v=1' };
  const payload = {
    jti: `${KEY_SID}-${now}`,
    iss: KEY_SID,
    sub: ACCOUNT_SID,
    nbf: now,
    exp: now + lifetime,
    grants: { identity, data_sync: { service_sid: service } },
  };
  const signed = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const signature = crypto.createHmac('sha256', secret).update(signed).digest();
  return `${signed}.${b64url(signature)}`;
}

/** Options for a client of this server; a fresh object each time (the SDK mutates it). */
function clientOptions() {
  return {
    twilsock: { uri: `ws://${HOST}/twilio/twilsock/v3/wsconnect` },
    cdsUri: `${URL_BASE}/twilio/cds`,
    logLevel: 'silent',
  };
}

const clients = [];

/** A client that has reached `connected`. */
async function connect(token) {
  const client = new SyncClient(token, clientOptions());
  clients.push(client);
  await waitFor(client, 'connectionStateChanged', (state) => state === 'connected', 'connected', () =>
    client.connectionState === 'connected');
  return client;
}

/** A client for a fresh identity in `service`. */
async function connectAs(identity, service, tokenOptions) {
  return connect(accessToken(identity, service, tokenOptions));
}

/** Shuts every client down (call in `after`). */
async function shutdownAll() {
  await Promise.all(clients.splice(0).map((c) => c.shutdown().catch(() => {})));
}

/**
 * Resolves with the first `event` from `emitter` whose arguments satisfy `match`, or rejects
 * after EVENT_TIMEOUT_MS. `already` short-cuts when the condition holds before the event.
 */
function waitFor(emitter, event, match = () => true, what = event, already = () => false) {
  if (already()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, listener);
      reject(new Error(`no ${what} within ${EVENT_TIMEOUT_MS} ms`));
    }, EVENT_TIMEOUT_MS);
    function listener(...args) {
      if (!match(...args)) return;
      clearTimeout(timer);
      emitter.removeListener(event, listener);
      resolve(args.length > 1 ? args : args[0]);
    }
    emitter.on(event, listener);
  });
}

/** Records every `event` of `emitter`, for tests that check what arrived (and what did not). */
function record(emitter, event) {
  const seen = [];
  emitter.on(event, (e) => seen.push(e));
  return seen;
}

/** Waits until `recorded` holds `n` entries. */
async function until(recorded, n, what) {
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  while (recorded.length < n) {
    if (Date.now() > deadline) throw new Error(`${what}: ${recorded.length} of ${n} within ${EVENT_TIMEOUT_MS} ms`);
    await sleep(20);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request to one of the server's REST faces with the root account. */
async function rest(method, path, { json, form, headers = {} } = {}) {
  const auth = Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64');
  const init = { method, headers: { authorization: `Basic ${auth}`, ...headers } };
  if (json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  if (form !== undefined) {
    init.headers['content-type'] = 'application/x-www-form-urlencoded';
    init.body = new URLSearchParams(form).toString();
  }
  const response = await fetch(`${URL_BASE}${path}`, init);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/**
 * The same request as `rest`, made synchronously (in a child process): for a write that must
 * land while this process cannot handle any event, e.g. inside a mutator.
 */
function writeSync(method, path, json) {
  const script = `fetch(process.argv[1], JSON.parse(process.argv[2])).then(async (r) => {
    if (r.status >= 300) { console.error(r.status, await r.text()); process.exit(1); }
  }).catch((e) => { console.error(e); process.exit(1); });`;
  const auth = Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64');
  const init = { method, headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(json) };
  execFileSync(process.execPath, ['-e', script, `${URL_BASE}${path}`, JSON.stringify(init)], { timeout: EVENT_TIMEOUT_MS, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A fresh service (each test file works in its own), through the native API. */
async function newService(prefix) {
  const name = `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
  const r = await rest('POST', '/api/v1/services', { json: { unique_name: name } });
  if (r.status !== 201) throw new Error(`creating a service: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.sid;
}

const unique = (prefix) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;

/**
 * Resolves once the server confirmed the object's subscription. Streams need it before a
 * remote publish can be seen (a stream replays nothing); documents, lists and maps replay
 * from their last event id, so for them it only makes a test's order of events explicit.
 */
function subscribed(object) {
  const impl = object.syncDocumentImpl || object.syncListImpl || object.syncMapImpl || object.syncStreamImpl;
  return waitFor(object, '_subscriptionStateChanged', (s) => s === 'established', 'subscription established',
    () => impl && impl.subscriptionState === 'established');
}

/** The twilsock socket (the `ws` package's) under a client, for tests that cut it. */
function socketOf(client) {
  const twilsock = client.services.twilsock;
  const channel = twilsock.websocket || (twilsock.channel && twilsock.channel.websocket);
  return channel && channel.socket;
}

module.exports = {
  URL_BASE,
  EVENT_TIMEOUT_MS,
  accessToken,
  clientOptions,
  connect,
  connectAs,
  shutdownAll,
  waitFor,
  record,
  until,
  sleep,
  rest,
  writeSync,
  newService,
  unique,
  socketOf,
  subscribed,
  SyncClient,
};
