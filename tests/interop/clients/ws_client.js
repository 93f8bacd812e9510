// The interop client on the npm `ws` package (see ../README.md for the script).
//   node ws_client.js URL NAME COMPRESS
// `WIREHUB_INTEROP_WS` names the module to load (default 'ws'), so the same
// script drives wirehub's ws-compatible package.
'use strict';
const crypto = require('crypto');
const readline = require('readline');
const WebSocket = require(process.env.WIREHUB_INTEROP_WS || 'ws');

const [url, name, compress] = process.argv.slice(2);
const MIB = 1024 * 1024;
const digest = (what, text, buf) =>
  process.stdout.write(`${what} ${text ? 'T' : 'B'} ${buf.length} ${crypto.createHash('sha256').update(buf).digest('hex')}\n`);

const ws = new WebSocket(url, { perMessageDeflate: compress === '1', maxPayload: 4 * MIB });
let received = 0;
let total = -1;
const finish = () => { if (total >= 0 && received === total) ws.close(1000, 'done'); };

ws.on('open', () => {
  process.stdout.write(`EXTENSIONS ${ws.extensions || '-'}\nREADY\n`);
  const rl = readline.createInterface({ input: process.stdin });
  rl.once('line', (line) => {
    const m = /^GO (\d+)$/.exec(line);
    if (!m) { console.error('ws_client: expected GO <total>'); process.exit(1); }
    total = Number(m[1]);
    rl.close();
    sendAll();
    finish();
  });
});
ws.on('message', (data, isBinary) => {
  digest('RECV', !isBinary, data);
  received++;
  finish();
});
ws.on('error', (err) => { console.error(`ws_client: ${err.message}`); process.exit(1); });
ws.on('close', (code) => {
  if (code !== 1000 || received !== total) { console.error(`ws_client: closed ${code} after ${received}/${total}`); process.exit(1); }
  process.stdout.write('DONE\n');
  process.exit(0);
});

function send(buf, binary) {
  ws.send(buf, { binary });
  digest('SENT', !binary, buf);
}

function sendAll() {
  send(Buffer.from(`${name}|1|hello from ${name} \u2713`), false);
  send(Buffer.concat([Buffer.from(`${name}|2|`), Buffer.from([...Array(64).keys()])]), true);
  const p3 = Buffer.from(`${name}|3|`);
  const t = Buffer.alloc(MIB);
  p3.copy(t);
  for (let i = 0, j = p3.length; j < MIB; i++, j++) t[j] = 97 + (i % 26);
  send(t, false);
  const p4 = Buffer.from(`${name}|4|`);
  const b = Buffer.alloc(MIB);
  p4.copy(b);
  for (let i = 0, j = p4.length; j < MIB; i++, j++) b[j] = (i * 31 + 7) & 255;
  send(b, true);
  const parts = [`${name}|5|`, 'part two, ', 'part three \u2713'].map((s) => Buffer.from(s));
  parts.forEach((p, i) => ws.send(p, { binary: false, fin: i === parts.length - 1 }));
  digest('SENT', true, Buffer.concat(parts));
}
