// Load driver for test_concurrency.sh: many streaming clients at once
// against one server, on Node's own http module (no npm packages needed).
//
//   node stream_load.mjs URL MODEL check [CLIENTS] [PREDICT]
//     Runs each prompt once per API alone (the reference), then CLIENTS
//     streams at once, alternating /api/generate (NDJSON) and
//     /v1/chat/completions (SSE) over the prompts. Every stream must end
//     properly (a done line / [DONE]) with the reference text.
//   node stream_load.mjs URL MODEL disconnect [CLIENTS] [PREDICT]
//     CLIENTS long streams that each close their socket after the first
//     two pieces of text; then one stream must still give the reference
//     text.
//
// Prints one line per failure and a closing "N passed, N failed" line;
// exits 1 on any failure.
import http from 'node:http';

const [baseUrl, model, mode = 'check', clientsArg = '64', predictArg = '32'] = process.argv.slice(2);
if (!baseUrl || !model || !['check', 'disconnect'].includes(mode)) {
  console.error('usage: node stream_load.mjs URL MODEL check|disconnect [CLIENTS] [PREDICT]');
  process.exit(2);
}
const clients = Number(clientsArg);
const predict = Number(predictArg);
const prompts = [
  'Once upon a time',
  'Lily and Tom went',
  'The little dog',
  'One day, a girl named Sue',
  'The sun was hot and',
  'Bob wanted to play',
  'In the park there was',
  'A big red ball',
];
const apis = ['generate', 'chat'];

let passed = 0;
let failed = 0;
const fail = (what) => {
  failed++;
  console.log(`FAIL: ${what}`);
};

function requestFor(api, prompt, nPredict) {
  if (api === 'generate')
    return {
      path: '/api/generate',
      body: { model, prompt, stream: true, options: { temperature: 0, num_predict: nPredict } },
    };
  const body = { model, messages: [{ role: 'user', content: prompt }], stream: true, temperature: 0 };
  if (nPredict >= 0) body.max_tokens = nPredict; // none: until the end of text or a full context
  return { path: '/v1/chat/completions', body };
}

// Pulls the text pieces out of the response bytes seen so far. NDJSON: one
// object per line, {"response": ..., "done": ...}; SSE: "data: {...}"
// events, then "data: [DONE]". Returns {pieces, complete, error}.
function parseStream(api, raw) {
  const pieces = [];
  let complete = false;
  let error = null;
  if (api === 'generate') {
    for (const line of raw.split('\n')) {
      if (!line.trim()) continue;
      let obj;
      try {
        obj = JSON.parse(line);
      } catch {
        if (raw.endsWith('\n')) error = `bad NDJSON line: ${line.slice(0, 120)}`;
        continue; // the last line may still be arriving
      }
      if (obj.error) error = obj.error;
      if (typeof obj.response === 'string' && obj.response) pieces.push(obj.response);
      if (obj.done === true) complete = true;
    }
  } else {
    for (const event of raw.split('\n\n')) {
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      if (data === '[DONE]') {
        complete = true;
        continue;
      }
      let obj;
      try {
        obj = JSON.parse(data);
      } catch {
        continue; // the last event may still be arriving
      }
      if (obj.error) error = obj.error.message ?? JSON.stringify(obj.error);
      const delta = obj.choices?.[0]?.delta?.content;
      if (typeof delta === 'string' && delta) pieces.push(delta);
    }
  }
  return { pieces, complete, error };
}

// One streaming request. With closeAfter, the socket is destroyed once that
// many text pieces have arrived (a client going away mid-stream).
function stream(api, prompt, nPredict, closeAfter = 0) {
  const { path, body } = requestFor(api, prompt, nPredict);
  const payload = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request(`${baseUrl}${path}`, {
      method: 'POST',
      agent: false, // one connection per client, as independent clients have
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
    });
    let raw = '';
    let settled = false;
    const done = (r) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        raw += chunk;
        if (closeAfter && parseStream(api, raw).pieces.length >= closeAfter) {
          done({ status: res.statusCode, closed: true, ...parseStream(api, raw) });
          req.destroy();
        }
      });
      res.on('end', () => done({ status: res.statusCode, ...parseStream(api, raw) }));
      res.on('error', (e) => done({ status: res.statusCode, error: `response: ${e.message}`, pieces: [] }));
    });
    req.on('error', (e) => done({ status: 0, error: `request: ${e.message}`, pieces: [] }));
    // A hang guard, not a speed check: a stream silent this long is stuck.
    req.setTimeout(60_000, () => req.destroy(new Error('no data for 60 s')));
    req.end(payload);
  });
}

async function reference() {
  const ref = new Map();
  for (const api of apis)
    for (const prompt of prompts) {
      const r = await stream(api, prompt, predict);
      if (r.status !== 200 || r.error || !r.complete) {
        fail(`reference ${api} "${prompt}": status ${r.status}, error ${r.error}, complete ${r.complete}`);
        continue;
      }
      ref.set(`${api}|${prompt}`, r.pieces.join(''));
    }
  return ref;
}

function check(label, r, expected) {
  if (r.status !== 200) return fail(`${label}: HTTP ${r.status} ${r.error ?? ''}`);
  if (r.error) return fail(`${label}: ${r.error}`);
  if (!r.complete) return fail(`${label}: the stream ended without its final line`);
  const text = r.pieces.join('');
  if (text !== expected) return fail(`${label}: text differs\n  expected: ${JSON.stringify(expected)}\n  actual:   ${JSON.stringify(text)}`);
  passed++;
}

const ref = await reference();
if (failed === 0) {
  if (mode === 'check') {
    const jobs = [];
    for (let i = 0; i < clients; i++) {
      const api = apis[i % 2];
      const prompt = prompts[Math.floor(i / 2) % prompts.length];
      jobs.push(stream(api, prompt, predict).then((r) => check(`client ${i} ${api} "${prompt}"`, r, ref.get(`${api}|${prompt}`))));
    }
    await Promise.all(jobs);
    const empty = [...ref.values()].filter((t) => !t).length;
    if (empty) fail(`${empty} reference texts are empty`);
  } else {
    // Long generations (up to the context) that the clients abandon early.
    const jobs = [];
    for (let i = 0; i < clients; i++) {
      const api = apis[i % 2];
      const prompt = prompts[i % prompts.length];
      jobs.push(
        stream(api, prompt, -1, 2).then((r) => {
          if (r.status !== 200 || r.error) fail(`disconnecting client ${i}: HTTP ${r.status} ${r.error ?? ''}`);
          else if (!r.closed) fail(`disconnecting client ${i}: the stream ended before two pieces arrived`);
          else passed++;
        }),
      );
    }
    await Promise.all(jobs);
    // The server still answers, with the same text as before.
    for (const api of apis) check(`after disconnects, ${api}`, await stream(api, prompts[0], predict), ref.get(`${api}|${prompts[0]}`));
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
