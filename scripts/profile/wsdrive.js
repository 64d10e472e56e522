// WRITERS writers (16 unless told), one document each, sending conditional updates (`if_match`)
// until TOTAL are answered, as `bench compare`'s conditional-write workloads do: over one native
// WebSocket, pipelined (CONNECTIONS = 1, the default), or over a WebSocket each, one update in
// flight per connection (CONNECTIONS = WRITERS); WRITERS = 1 is the one-client workload.
// Usage: node wsdrive.js BASE_URL DATA_DIR [TOTAL] [CONNECTIONS] [WRITERS]. With RETURN=minimal
// in the environment each update asks for its revision alone in reply, as the bench's do; with
// PAD=N each update's data carries a string of N bytes besides (a larger document), with FIELDS=N
// N small fields besides (a structured one).
// Needs `ws` (compat/js: npm ci).
const { WebSocket, rest } = require('./client');
const [base, dataDir] = [process.argv[2], process.argv[3]];
const total = +(process.argv[4] || 8000);
const connections = +(process.argv[5] || 1);
const writers = +(process.argv[6] || 16);
if (connections !== 1 && connections !== writers) throw new Error('CONNECTIONS is 1 or WRITERS');
const returning = process.env.RETURN ? { return: process.env.RETURN } : {};
const pad = {
  ...(process.env.PAD ? { pad: 'x'.repeat(+process.env.PAD) } : {}),
  // FIELDS=N: N fields besides, a structured document (about 21 bytes a field).
  ...Object.fromEntries(Array.from({ length: +(process.env.FIELDS || 0) }, (_, k) => ['field_' + k, k % 3 ? 'value ' + k : k])),
};
const call = rest(base, dataDir);
(async () => {
  const svc = 'prof' + Date.now();
  await call('POST', '/api/v1/services', { unique_name: svc });
  const lanes = [];
  for (let i = 0; i < writers; i++) {
    const d = await call('POST', `/api/v1/services/${svc}/documents`, { unique_name: 'd' + i, data: { n: 0 } });
    lanes.push({ doc: d.sid, revision: +d.revision });
  }
  const tok = await call('POST', '/api/v1/tokens', { service: svc, identity: 'prof', ttl: 3600 });
  const url = base.replace('http', 'ws') + '/api/v1/connect?token=' + tok.token;
  const sockets = Array.from({ length: connections }, () => new WebSocket(url));
  const socketOf = (i) => sockets[i % connections];
  let sent = 0, done = 0, open = 0;
  const t0 = Date.now();
  const send = (i) => {
    const l = lanes[i];
    socketOf(i).send(JSON.stringify({ type: 'update', id: sent++ * writers + i, kind: 'document', object: l.doc, data: { n: sent, who: 'writer-' + i, ...pad }, if_match: l.revision, ...returning }));
  };
  const onMessage = (m) => {
    const v = JSON.parse(m);
    if (v.type !== 'reply') return;
    if (v.status !== 200) { console.error('failed', JSON.stringify(v)); process.exit(1); }
    const i = v.id % writers;
    lanes[i].revision = v.body.revision;
    done++;
    if (sent < total) send(i);
    if (done === total) { console.log(`${total} updates in ${Date.now() - t0} ms`); sockets.forEach((s) => s.close()); }
  };
  for (const ws of sockets) {
    ws.on('message', onMessage);
    ws.on('open', () => { if (++open === connections) for (let i = 0; i < writers; i++) send(i); });
  }
})().catch((e) => { console.error(e); process.exit(1); });
