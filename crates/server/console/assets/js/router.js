// Moving between console pages without a reload; app.js supplies how.

let go = (path) => {
  location.assign(`/console/${path.replace(/^\/+/, '')}`);
};

export function onNavigate(fn) {
  go = fn;
}

/** Shows the console page at `path` (below /console/, percent-encoded). */
export function navigate(path) {
  go(path);
}
