// The server's HTTP APIs with the signed-in credentials (HTTP Basic). The credentials live in
// sessionStorage only: they last as long as the tab and never reach another origin.

const STORAGE_KEY = 'ferrosync.console.credentials';

/** An error answer: `status` (HTTP), `code` and `message` from the body (native or Twilio). */
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export function credentials() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    return saved && saved.sid && saved.secret ? saved : null;
  } catch {
    return null;
  }
}

/** `root` for the account SID (`AC…`), `api key` for an `SK…`. */
export function credentialKind(sid) {
  return sid.startsWith('SK') ? 'API key' : 'root account';
}

/** Checks the credentials against the server, then keeps them for this tab. */
export async function signIn(sid, secret) {
  const creds = { sid: sid.trim(), secret };
  await send('GET', '/api/v1/services?page_size=1', {}, creds);
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(creds));
  return creds;
}

export function signOut() {
  sessionStorage.removeItem(STORAGE_KEY);
}

function basic({ sid, secret }) {
  // btoa takes Latin-1 only; the credentials are sent as UTF-8, as servers expect.
  const bytes = new TextEncoder().encode(`${sid}:${secret}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

let onUnauthorized = () => {};
/** Called when signed-in credentials stop working (a key deleted, a token rotated). */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/**
 * One request. `options`: `json` (a body sent as JSON), `form` (an object sent
 * form-encoded, for the Twilio faces), `headers`, `signal`, `query` (an object; undefined
 * values are left out). Resolves to `{status, data, etag}`; rejects with ApiError.
 */
export async function send(method, url, options = {}, creds = credentials()) {
  const headers = { Accept: 'application/json', ...(options.headers ?? {}) };
  if (creds) headers.Authorization = basic(creds);
  let body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = formBody(options.form);
  }
  const target = withQuery(url, options.query);
  // `credentials: 'omit'`: the Authorization header is ours; the browser keeps no login of its
  // own, and a 401 does not open its password dialog.
  const response = await fetch(target, {
    method, headers, body, signal: options.signal, credentials: 'omit', cache: 'no-store',
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const message = typeof data === 'object' && data ? (data.message ?? data.error) : data;
    const error = new ApiError(response.status, data?.code ?? data?.errcode, message || response.statusText, data);
    if (response.status === 401 && creds && creds === credentials()) onUnauthorized(error);
    throw error;
  }
  return { status: response.status, data, etag: response.headers.get('etag') };
}

function withQuery(url, query) {
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  if (!qs) return url;
  return `${url}${url.includes('?') ? '&' : '?'}${qs}`;
}

function formBody(form) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) {
    if (v === undefined || v === null) continue;
    for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
  }
  return params.toString();
}

/** The native API under `/api/v1`; `path` is already percent-encoded. */
export const api = {
  get: (path, query, signal) => send('GET', `/api/v1${path}`, { query, signal }).then((r) => r.data),
  post: (path, json) => send('POST', `/api/v1${path}`, { json }).then((r) => r.data),
  put: (path, json, ifMatch) => send('PUT', `/api/v1${path}`, {
    json, headers: ifMatch != null ? { 'If-Match': String(ifMatch) } : {},
  }).then((r) => r.data),
  delete: (path, ifMatch) => send('DELETE', `/api/v1${path}`, {
    headers: ifMatch != null ? { 'If-Match': String(ifMatch) } : {},
  }).then((r) => r.data),
};

/** The Twilio Proxy face (form-encoded, PascalCase parameters); `path` below `/v1`. */
export const proxy = {
  get: (path, query) => send('GET', path.startsWith('/twilio/') ? path : `/twilio/proxy/v1${path}`, { query })
    .then((r) => r.data),
};

/** Every page of a native listing, up to `max` items. */
export async function all(path, { max = 1000, query = {} } = {}) {
  const items = [];
  let token;
  do {
    const page = await api.get(path, { ...query, page_size: Math.min(max, 1000), page_token: token });
    items.push(...page.items);
    token = page.meta?.next_page_token;
  } while (token && items.length < max);
  return items.slice(0, max);
}
