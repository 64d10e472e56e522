// SUBSCRIBERS native WebSockets subscribed to one document, and MESSAGES updates written to it
// over HTTP at RATE per second (open loop, as `bench compare`'s fan-out writes), until every
// subscriber has every event. Usage: node fanout.js BASE_URL DATA_DIR [SUBSCRIBERS] [MESSAGES]
// [RATE]. Needs `ws` (compat/js: npm ci).
const { WebSocket, rest } = require('./client');
const [base, dataDir] = [process.argv[2], process.argv[3]];
const subscribers = +(process.argv[4] || 1000);
const messages = +(process.argv[5] || 100);
const rate = +(process.argv[6] || 100);
const call = rest(base, dataDir);
(async () => {
  const svc = 'fan' + Date.now();
  await call('POST', '/api/v1/services', { unique_name: svc });
  const doc = await call('POST', `/api/v1/services/${svc}/documents`, { unique_name: 'd', data: { n: 0 } });
  const tok = await call('POST', '/api/v1/tokens', { service: svc, identity: 'fan', ttl: 3600 });
  const url = base.replace('http', 'ws') + '/api/v1/connect?token=' + tok.token;
  let received = 0;
  const expected = subscribers * messages;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const subscribe = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', id: 1, kind: 'document', object: doc.sid })));
    ws.on('error', reject);
    ws.on('message', (m) => {
      const v = JSON.parse(m);
      if (v.type === 'reply') return resolve(ws);
      if (v.type === 'event' && ++received === expected) finish();
    });
  });
  const sockets = [];
  for (let i = 0; i < subscribers; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, subscribers - i) }, subscribe))));
  }
  const t0 = Date.now();
  for (let n = 1; n <= messages; n++) {
    call('PUT', `/api/v1/services/${svc}/documents/${doc.sid}`, { data: { n } }).catch((e) => { console.error(e); process.exit(1); });
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await finished;
  console.log(`${expected} deliveries in ${Date.now() - t0} ms`);
  sockets.forEach((s) => s.close());
})().catch((e) => { console.error(e); process.exit(1); });
