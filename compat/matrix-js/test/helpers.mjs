// Shared by the matrix-js-sdk tests: the server's address, bounded waits, and users that
// register and log in through the SDK itself.

import { randomBytes } from "node:crypto";
import { ClientEvent, SyncState, createClient } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

// The SDK logs every request and sync at debug level, and at warn level the unstable push rules
// it adds to the server's defaults; MATRIX_JS_LOG=warn or =debug shows them again.
logger.setLevel(process.env.MATRIX_JS_LOG ?? "error");

if (!process.env.FERROSYNC_URL) throw new Error("FERROSYNC_URL is not set: run this suite through the Rust compat harness");
export const baseUrl = process.env.FERROSYNC_URL.replace(/\/$/, "");

/**
 * Every request the server refused (status >= 400), as `{method, path, status, body}`: the
 * SDK retries or swallows some failures, so a missing endpoint would otherwise go unseen.
 */
export const refused = [];

async function recordingFetch(resource, init) {
  const response = await fetch(resource, init);
  if (response.status >= 400) {
    const url = new URL(resource instanceof Request ? resource.url : String(resource));
    const body = await response
      .clone()
      .text()
      .catch(() => "");
    refused.push({ method: init?.method ?? "GET", path: url.pathname, status: response.status, body });
  }
  return response;
}

/** `createClient` against the server under test, with its responses recorded. */
export function client(opts = {}) {
  const matrix = createClient({ baseUrl, fetchFn: recordingFetch, ...opts });
  // The SDK's MatrixRTC manager logs an error for the state of every room new to the client,
  // which it sees before the room is stored (matrix-js-sdk#3781, #4808); calls are not used here.
  if (!process.env.MATRIX_JS_LOG) matrix.matrixRTC.logger.setLevel("silent");
  return matrix;
}

/** How long any single wait may take before the test fails instead of hanging: generous, the
 * machine is shared. */
export const WAIT_MS = 20_000;

/** `promise`, or a rejection naming `what` once `ms` pass. */
export function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The first `event` from `emitter` whose arguments satisfy `matches`, within `ms`. Listen
 * before acting, so that an event the action causes at once is not missed.
 */
export function waitFor(emitter, event, matches, what, ms = WAIT_MS) {
  let listener;
  const seen = new Promise((resolve) => {
    listener = (...args) => {
      if (matches(...args)) resolve(args);
    };
    emitter.on(event, listener);
  });
  return within(seen, what, ms).finally(() => emitter.off(event, listener));
}

/** Resolves once `check()` is truthy, re-checking on every `event` from `emitter`, within `ms`. */
export async function until(emitter, event, check, what, ms = WAIT_MS) {
  const pending = waitFor(emitter, event, () => Boolean(check()), what, ms);
  if (check()) {
    pending.catch(() => {});
    return;
  }
  await pending;
}

/** A localpart no earlier run used, so the suite can run twice against one server. */
export function uniqueName(prefix) {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** Registers `localpart` with an `m.login.dummy` stage; returns the registration response. */
export async function register(localpart, password) {
  const anonymous = client();
  return within(
    anonymous.registerRequest({ username: localpart, password, auth: { type: "m.login.dummy" } }),
    `registering ${localpart}`,
  );
}

/**
 * A client logged in with a password as a new device: `POST /login` through `loginRequest` with
 * an `m.id.user` identifier, or (`legacy`) through `loginWithPassword`, which sends the older
 * top-level `user` field.
 */
export async function logIn(localpart, password, { legacy = false } = {}) {
  const anonymous = client();
  const login = legacy
    ? anonymous.loginWithPassword(localpart, password)
    : anonymous.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: localpart },
        password,
      });
  const response = await within(login, `logging in as ${localpart}`);
  return {
    response,
    client: client({
      userId: response.user_id,
      accessToken: response.access_token,
      deviceId: response.device_id,
    }),
  };
}

/** Starts `client` (no crypto) and waits until its first sync has been processed. */
export async function start(matrix, opts = { initialSyncLimit: 8, lazyLoadMembers: true }) {
  // ERROR too, so that a failing sync fails the test with its cause rather than by timing out.
  const outcome = waitFor(
    matrix,
    ClientEvent.Sync,
    (state) => state === SyncState.Prepared || state === SyncState.Error,
    `${matrix.getUserId()}'s first sync (PREPARED)`,
  );
  await within(matrix.startClient(opts), `starting ${matrix.getUserId()}'s client`);
  const [state, , data] = await outcome;
  if (state === SyncState.Error) {
    throw new Error(`${matrix.getUserId()}'s first sync failed: ${data?.error?.message ?? data?.error}`);
  }
}
