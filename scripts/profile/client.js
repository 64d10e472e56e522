// What the profiling drivers share: the `ws` package and calls to the native REST API with
// the root credentials of a server's data directory.
const path = require('path');
const fs = require('fs');
const WebSocket = require(path.join(__dirname, '../../compat/js/node_modules/ws'));

function rest(base, dataDir) {
  const cred = JSON.parse(fs.readFileSync(path.join(dataDir, 'credentials.json')));
  const auth = 'Basic ' + Buffer.from(cred.account_sid + ':' + cred.auth_token).toString('base64');
  return async function call(method, route, body) {
    const r = await fetch(base + route, { method, headers: { authorization: auth, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    const v = await r.json();
    if (!r.ok) throw new Error(route + ' ' + r.status + ' ' + JSON.stringify(v));
    return v;
  };
}

module.exports = { WebSocket, rest };
