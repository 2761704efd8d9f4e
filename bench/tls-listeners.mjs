// N Ogg listeners of one stream over http:// or https:// (HTTP/1.1, one connection each),
// opened at a given rate from many loopback addresses, held for a while, then closed; prints
// JSON: how many got in, bytes and pages received, and listeners that stalled (no byte for
// 2 s while held). Used by bench/tls.sh; loopback only, bounded in count and time.
//
// node bench/tls-listeners.mjs URL COUNT RATE HOLD_SECONDS [CA_FILE]

import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';

const [url, countArg, rateArg, holdArg, caFile] = process.argv.slice(2);
const target = new URL(url);
if (!/^127\./.test(target.hostname)) throw new Error('loopback targets only');
const count = Math.min(Number(countArg), 20000);
const rate = Number(rateArg);
const hold = Math.min(Number(holdArg), 600) * 1000;
const ca = caFile ? readFileSync(caFile) : undefined;
const tls = target.protocol === 'https:';

const listeners = [];
let admitted = 0;
let failed = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function open(i) {
  // Sources spread over 127.100.0.0/16, 250 to a /24.
  const localAddress = `127.100.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const l = { bytes: 0, last: Date.now(), stalls: 0, req: null };
  const options = { method: 'GET', localAddress, agent: false, ca, timeout: 10000 };
  const req = (tls ? httpsRequest : httpRequest)(target, options, (res) => {
    if (res.statusCode !== 200) { failed++; res.resume(); return; }
    admitted++;
    res.on('data', (chunk) => {
      const now = Date.now();
      if (l.bytes > 0 && now - l.last > 2000) l.stalls++;
      l.bytes += chunk.length;
      l.last = now;
    });
    res.on('error', () => {});
  });
  req.on('error', () => { failed++; });
  req.end();
  l.req = req;
  listeners.push(l);
}

const t0 = Date.now();
for (let i = 0; i < count; i++) {
  const due = t0 + (i * 1000) / rate;
  if (due > Date.now()) await sleep(due - Date.now());
  open(i);
}
const joined = Date.now();
await sleep(hold);
const now = Date.now();
let stalled = 0;
let bytes = 0;
for (const l of listeners) {
  bytes += l.bytes;
  if (l.stalls > 0 || now - l.last > 2000) stalled++;
  l.req.destroy();
}
console.log(JSON.stringify({
  url, count, admitted, failed, stalled, join_seconds: (joined - t0) / 1000,
  hold_seconds: hold / 1000, mean_kbit_per_s: (8 * bytes) / (listeners.length * hold),
}));
process.exit(0);
