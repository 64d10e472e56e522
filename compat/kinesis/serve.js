// Serves kinesalite (in memory) on 127.0.0.1 only, on the port given as the first argument
// (0: any free port), and prints the port it listens on as the first line of output.
'use strict';
const kinesalite = require('kinesalite');

const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0 });
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
