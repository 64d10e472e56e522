// The console's entry point: sign-in, the sidebar and a path router over /console/….

import { credentialKind, credentials, signIn, signOut, whenUnauthorized } from './api.js';
import { describeError, h, header, notice } from './dom.js';
import { onNavigate } from './router.js';
import * as services from './views/services.js';
import * as objects from './views/objects.js';
import * as inspector from './views/inspector.js';
import * as keys from './views/keys.js';
import * as metrics from './views/metrics.js';
import * as cognito from './views/cognito.js';
import * as proxy from './views/proxy.js';
import * as matrix from './views/matrix.js';

const main = document.getElementById('main');
const shell = document.getElementById('shell');
const signin = document.getElementById('signin');
const form = document.getElementById('signin-form');
const signinError = document.getElementById('signin-error');

/** Stops what the current page runs in the background (long-polls, samplers). */
let leaveCurrent = null;
let renderCount = 0;

/** The page for a path below /console/ (segments already decoded). */
function route(parts, query) {
  const [top, a, b, c] = parts;
  switch (top ?? '') {
    case '':
    case 'services':
      if (!a) return (el) => services.list(el);
      if (!b) return (el) => objects.collection(el, a, 'documents');
      if (!c) return (el) => objects.collection(el, a, b);
      return (el) => objects.detail(el, a, b, c);
    case 'inspector':
      return (el) => inspector.view(el, a ?? query.get('service') ?? '');
    case 'keys':
      return (el) => keys.view(el);
    case 'metrics':
      return (el) => metrics.view(el);
    case 'cognito':
      return (el) => cognito.view(el, parts.slice(1));
    case 'proxy':
      return (el) => proxy.view(el, parts.slice(1));
    case 'matrix':
      return (el) => matrix.view(el, a ?? 'users');
    default:
      return null;
  }
}

async function render() {
  if (leaveCurrent) {
    leaveCurrent();
    leaveCurrent = null;
  }
  const creds = credentials();
  if (!creds) {
    showSignIn();
    return;
  }
  signin.hidden = true;
  shell.hidden = false;
  document.getElementById('whoami').textContent = `${creds.sid} (${credentialKind(creds.sid)})`;

  const path = location.pathname.replace(/^\/console\/?/, '');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  const query = new URLSearchParams(location.search);
  markNav(parts[0] ?? 'services');
  const page = route(parts, query);
  const mine = ++renderCount;
  const container = h('div', { class: 'page' });
  main.replaceChildren(container);
  if (!page) {
    container.append(header('Page not found'), notice('error', `There is no console page at /console/${path}.`));
    return;
  }
  try {
    const leave = await page(container);
    if (typeof leave === 'function') {
      // The user may have moved on while the page loaded.
      if (mine === renderCount) leaveCurrent = leave;
      else leave();
    }
  } catch (err) {
    if (mine !== renderCount) return;
    container.append(notice('error', describeError(err)));
  }
}

function markNav(section) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function showSignIn(message) {
  shell.hidden = true;
  signin.hidden = false;
  main.replaceChildren();
  if (message) {
    signinError.textContent = message;
    signinError.hidden = false;
  }
  document.getElementById('signin-sid').focus();
}

/** Moves to a console page without reloading. */
function navigate(path) {
  const url = `/console/${path.replace(/^\/+/, '')}`;
  if (url !== location.pathname + location.search) history.pushState(null, '', url);
  render();
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const sid = document.getElementById('signin-sid').value.trim();
  const secret = document.getElementById('signin-secret').value;
  signinError.hidden = true;
  if (!sid || !secret) {
    signinError.textContent = 'Enter both the SID and its secret.';
    signinError.hidden = false;
    return;
  }
  const submit = form.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    await signIn(sid, secret);
    document.getElementById('signin-secret').value = '';
    render();
  } catch (err) {
    signinError.textContent = err.status === 401 || err.status === 403
      ? 'Those credentials were not accepted. Check the SID and its secret.'
      : `Cannot sign in: ${describeError(err)}`;
    signinError.hidden = false;
  } finally {
    submit.disabled = false;
  }
});

document.getElementById('signout').addEventListener('click', () => {
  signOut();
  if (leaveCurrent) {
    leaveCurrent();
    leaveCurrent = null;
  }
  showSignIn();
});

whenUnauthorized(() => {
  signOut();
  showSignIn('Your credentials are no longer accepted; sign in again.');
});

// Links to console pages change the page in place; others (and modified clicks) behave as links.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/console') || a.target) return;
  if (url.pathname.startsWith('/console/assets/')) return;
  e.preventDefault();
  navigate(url.pathname.replace(/^\/console\/?/, '') + url.search);
});

onNavigate(navigate);
window.addEventListener('popstate', render);
render();
