#!/usr/bin/env node
// An example receiver of linkpulse webhooks (Standard Webhooks), Node 18+,
// only node:http and node:crypto.
//
//   node receiver.js --port 9000 --secret whsec_...
//   LINKPULSE_WEBHOOK_SECRET=whsec_... node receiver.js --port 9000
//
// For every POST it:
//   - checks webhook-timestamp is within 5 minutes of now          (else 401)
//   - checks one "v1,<base64>" entry of webhook-signature is the
//     HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" under
//     one of the secrets (give --secret several times while rotating) (else 401)
//   - answers 204 to a webhook-id it has already accepted, without
//     processing the message again (an in-memory LRU of recent ids)
//   - prints one line per accepted message, appends it to --log FILE
//     as one JSON line if asked, and answers 204.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');

const TOLERANCE = 5 * 60; // seconds either side of now
const MAX_BODY = 1 << 20; // linkpulse payloads stay far below this
const SEEN_IDS = 10000; // how many recent webhook-ids are remembered

function usage(msg) {
  if (msg) console.error(`receiver.js: ${msg}`);
  console.error('usage: node receiver.js [--port 9000] [--host 127.0.0.1] ' +
    '[--secret whsec_... ...] [--log FILE]\n' +
    '  --secret defaults to $LINKPULSE_WEBHOOK_SECRET; repeat it while rotating');
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
  const opts = { port: 9000, host: '127.0.0.1', secrets: [], log: null };
  for (let i = 0; i < argv.length; i++) {
    let [name, value] = argv[i].startsWith('--') && argv[i].includes('=')
      ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)]
      : [argv[i], undefined];
    if (name === '-h' || name === '--help') usage();
    if (!['--port', '--host', '--secret', '--log'].includes(name)) usage(`unknown argument '${name}'`);
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`${name} needs a value`);
      value = argv[++i];
    }
    if (name === '--port') {
      opts.port = Number(value);
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage(`bad port '${value}'`);
    } else if (name === '--host') opts.host = value;
    else if (name === '--secret') opts.secrets.push(value);
    else opts.log = value;
  }
  if (opts.secrets.length === 0 && process.env.LINKPULSE_WEBHOOK_SECRET) {
    opts.secrets.push(process.env.LINKPULSE_WEBHOOK_SECRET);
  }
  if (opts.secrets.length === 0) usage('give --secret whsec_... or set LINKPULSE_WEBHOOK_SECRET');
  return opts;
}

// The HMAC key of a "whsec_<base64>" secret.
function decodeSecret(secret) {
  const b64 = secret.trim().replace(/^whsec_/, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new Error(`secret ${secret.slice(0, 10)}... is not whsec_ followed by base64`);
  }
  return Buffer.from(b64, 'base64');
}

// Returns null if the message is authentic, else the reason it is not.
function verify(keys, msgId, timestamp, signatureHeader, body, now = Date.now() / 1000) {
  if (!msgId || !timestamp || !signatureHeader) {
    return 'missing webhook-id, webhook-timestamp or webhook-signature';
  }
  if (!/^-?\d+$/.test(timestamp)) return 'webhook-timestamp is not an integer';
  if (Math.abs(now - Number(timestamp)) > TOLERANCE) {
    return 'webhook-timestamp is more than 5 minutes off';
  }
  const signed = Buffer.concat([Buffer.from(`${msgId}.${timestamp}.`), body]);
  const expected = keys.map((k) => Buffer.from(
    crypto.createHmac('sha256', k).update(signed).digest('base64')));
  for (const entry of signatureHeader.split(/\s+/)) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue; // other versions are skipped
    const sig = Buffer.from(entry.slice(comma + 1));
    for (const e of expected) {
      if (sig.length === e.length && crypto.timingSafeEqual(sig, e)) return null;
    }
  }
  return 'no valid v1 signature';
}

// A bounded LRU set of webhook-ids (a Map keeps insertion order).
class SeenIds {
  constructor(size) { this.size = size; this.ids = new Map(); }

  // Remembers id; returns false if it was already there.
  add(id) {
    if (this.ids.has(id)) {
      this.ids.delete(id);
      this.ids.set(id, true);
      return false;
    }
    this.ids.set(id, true);
    if (this.ids.size > this.size) this.ids.delete(this.ids.keys().next().value);
    return true;
  }

  forget(id) { this.ids.delete(id); }
}

function summary(data, limit = 100) {
  const text = data && typeof data === 'object' && !Array.isArray(data)
    ? Object.entries(data).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')
    : JSON.stringify(data);
  return text === undefined ? 'undefined'
    : text.length <= limit ? text : `${text.slice(0, limit - 3)}...`;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let keys;
  try {
    keys = opts.secrets.map(decodeSecret);
  } catch (e) {
    usage(e.message);
  }
  const seen = new SeenIds(SEEN_IDS);
  const fs = opts.log ? require('node:fs') : null; // only for --log

  // What a real receiver would do with an authentic, new message.
  function processMessage(msgId, payload) {
    const type = payload.type ?? '?';
    const line = { id: msgId, type, timestamp: payload.timestamp, data: payload.data,
      receivedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') };
    if (fs) fs.appendFileSync(opts.log, `${JSON.stringify(line)}\n`);
    console.log(`${type} ${msgId} ${summary(payload.data)}`);
  }

  function reply(res, status, text) {
    const body = text ? `${text}\n` : '';
    const headers = body ? { 'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body) } : {};
    res.writeHead(status, headers);
    res.end(body);
  }

  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return reply(res, 405, 'only POST');
    }
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) {
        res.setHeader('Connection', 'close');
        return reply(res, 413, 'body too large');
      }
      const body = Buffer.concat(chunks);
      const msgId = req.headers['webhook-id'] || '';
      const problem = verify(keys, msgId, req.headers['webhook-timestamp'] || '',
        req.headers['webhook-signature'] || '', body);
      if (problem) {
        console.error(`rejected ${msgId || '-'}: ${problem}`);
        return reply(res, 401, problem);
      }
      if (!seen.add(msgId)) {
        console.log(`duplicate ${msgId}: already processed`);
        return reply(res, 204);
      }
      let payload;
      try {
        payload = JSON.parse(body.toString('utf8'));
        if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
          throw new Error('not a JSON object');
        }
      } catch (e) {
        seen.forget(msgId); // not processed: a retry may be handled
        return reply(res, 400, `body is not a JSON object: ${e.message}`);
      }
      try {
        processMessage(msgId, payload);
      } catch (e) { // a failure: let linkpulse retry the message
        seen.forget(msgId);
        console.error(`failed ${msgId}: ${e.message}`);
        return reply(res, 500, 'processing failed');
      }
      reply(res, 204);
    });
  });
  server.listen(opts.port, opts.host, () => {
    console.log(`listening on http://${opts.host}:${server.address().port}/ ` +
      `with ${keys.length} secret(s)`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.(); // idle keep-alive connections (Node 18.2+)
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) main();

module.exports = { verify, decodeSecret, SeenIds };
