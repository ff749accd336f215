// The client side of bench/batch.sh: drives a running `nstack serve` and
// prints markdown tables. Node 20, built-in modules only.
//
//   node bench/batch_driver.mjs URL MODEL decode N [N...]
//   node bench/batch_driver.mjs URL MODEL prefix
//   node bench/batch_driver.mjs URL MODEL snapshot
//
// Env: NUM_PREDICT (decode tokens per stream, default 64), ROUNDS (decode:
// the stream counts are measured this many times, interleaved, and each
// row gives the median round; default 3), SEED (default 42),
// PREFIX_TOKENS (default 1000), SNAPSHOT_TOKENS (default 1900), NSTACK_BIN
// (the binary whose `tokenize` sizes the long prompts), SERVER_LOG (the
// server's log at NSTACK_LOG=debug: its "generation done" lines give the
// cached prompt tokens of each request id).
import http from 'node:http';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

const [url, model, part, ...rest] = process.argv.slice(2);
const numPredict = Number(process.env.NUM_PREDICT || 64);
const seed = Number(process.env.SEED || 42);
const rounds = Number(process.env.ROUNDS || 3);
const prefixTokens = Number(process.env.PREFIX_TOKENS || 1000);
const snapshotTokens = Number(process.env.SNAPSHOT_TOKENS || 1900);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
const die = (msg) => {
  console.error(`batch_driver: ${msg}`);
  process.exit(1);
};

// One HTTP request. Streams are NDJSON: every object is kept, and the time of
// the first one with a non-empty "response" is noted (tFirst).
function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(url + path, { method, agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let buf = '';
      const objects = [];
      let tFirst = null;
      const take = (line) => {
        if (!line.trim()) return;
        let o;
        try {
          o = JSON.parse(line);
        } catch {
          o = { unparsed: line };
        }
        if (tFirst === null && typeof o.response === 'string' && o.response !== '') tFirst = now();
        objects.push(o);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          take(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
      res.on('end', () => {
        take(buf);
        resolve({ status: res.statusCode, requestId: res.headers['x-request-id'], t0, tFirst, tEnd: now(), objects,
                  last: objects[objects.length - 1] || {} });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function expectOk(r, what, status = 200) {
  if (r.status !== status || r.last.error) die(`${what}: HTTP ${r.status} ${JSON.stringify(r.last).slice(0, 300)}`);
}

// ---- prompts: random words, reproducible from a seed ----

function rng(s) { // mulberry32
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const WORDS = ('time year people way day man thing woman life child world school state family student group country ' +
  'problem hand part place case week company system program question work government number night point home water ' +
  'room mother area money story fact month lot right study book eye job word business issue side kind head house ' +
  'service friend father power hour game line end member law car city community name president team minute idea ' +
  'kid body information back parent face others level office door health person art war history party result ' +
  'change morning reason research girl guy moment air teacher force education river stone garden window bread ' +
  'light quiet green small bright old young long short warm cold open close early late slow fast happy little ' +
  'walk run read write sing carry build follow find keep bring begin seem help show hear play move live believe').split(' ');
function words(n, seedValue) {
  const r = rng(seedValue);
  const out = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]);
  return out;
}

// Tokens of text for MODEL (BOS included), via `nstack tokenize`; null when
// that is not possible (then the prompt is sized from the server's count).
function countTokens(text) {
  if (!process.env.NSTACK_BIN) return null;
  try {
    const out = execFileSync(process.env.NSTACK_BIN, ['tokenize', model, text], { maxBuffer: 64 << 20 });
    return JSON.parse(out.toString()).length;
  } catch {
    return null;
  }
}

// Random-word text of about `target` tokens (within 2%, never over).
function textOfTokens(target, seedValue) {
  const all = words(target * 4, seedValue); // a made-up vocabulary may tokenize a word per character
  let n = Math.max(8, Math.floor(target / 4));
  for (let tries = 0; tries < 8; tries++) {
    const text = all.slice(0, n).join(' ');
    const count = countTokens(text);
    if (count === null) return { text: all.slice(0, Math.floor(target * 0.75)).join(' '), tokens: null };
    if (count <= target && count >= target * 0.98) return { text, tokens: count };
    n = Math.max(1, Math.min(all.length, Math.floor((n * target * 0.99) / count)));
  }
  const text = all.slice(0, n).join(' ');
  return { text, tokens: countTokens(text) };
}

// request id -> {cached, ttft_ms} from the server's debug log, when it has them.
function serverLogStats(requestId) {
  const path = process.env.SERVER_LOG;
  if (!path || !requestId) return {};
  let log = '';
  try {
    log = fs.readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  const line = log.split('\n').find((l) => l.includes('generation done') && l.includes(`request="${requestId}"`));
  if (!line) return {};
  const num = (k) => {
    const m = line.match(new RegExp(`${k}=([0-9.]+)`));
    return m ? Number(m[1]) : undefined;
  };
  return { cached: num('cached_tokens'), ttft_ms: num('ttft_ms') };
}

// Fields of a final object that name cached prompt tokens, if the server reports any.
function cachedField(o) {
  for (const [k, v] of Object.entries(o)) if (/cache/i.test(k) && typeof v === 'number') return `${k}=${v}`;
  return null;
}

// ---- 1. aggregate decode ----

function generateBody(prompt, n, extra = {}) {
  return { model, prompt, raw: true, stream: false, keep_alive: -1,
           options: { temperature: 0, seed, num_predict: n }, ...extra };
}

async function decodeRound(n, predict, round) {
  // Short prompts (about 15 tokens with the random models' one-character
  // tokens): the window measures decoding, not N prompts being read.
  const prompts = Array.from({ length: n }, (_, i) => `S${round}.${i} ${words(1, seed * 1000 + round * 100 + i).join(' ')}`);
  const tSend = now();
  const rs = await Promise.all(prompts.map((p) => request('POST', '/api/generate', generateBody(p, predict))));
  rs.forEach((r, i) => expectOk(r, `stream ${i} of ${n}`));
  const tokens = rs.reduce((a, r) => a + r.last.eval_count, 0);
  // Each request's eval phase ends when its response ends (client clock) and
  // lasted eval_duration (server clock): the aggregate window runs from the
  // earliest eval start to the last end.
  const evalStart = Math.min(...rs.map((r) => r.tEnd - r.last.eval_duration / 1e6));
  const lastEnd = Math.max(...rs.map((r) => r.tEnd));
  const perStream = rs.reduce((a, r) => a + r.last.eval_count / (r.last.eval_duration / 1e9), 0) / n;
  const short = rs.filter((r) => r.last.eval_count < predict).length;
  return { n, tokens, aggregate: tokens / ((lastEnd - evalStart) / 1e3), perStream,
           endToEnd: tokens / ((lastEnd - tSend) / 1e3), wall: (lastEnd - tSend) / 1e3, short };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function decode(streams) {
  if (!streams.length) die('decode needs at least one stream count');
  if (!(numPredict >= 2)) die('NUM_PREDICT must be 2 or more (one token has no eval phase to time)');
  if (!(Number.isInteger(rounds) && rounds >= 1)) die('ROUNDS must be a positive integer');
  const warm = Math.max(...streams);
  console.error(`== decode: warm-up round, ${warm} streams`);
  await decodeRound(warm, Math.min(8, numPredict), 0);
  // Shared machines drift by tens of percent within minutes: each round
  // measures every stream count once, so drift touches all of them alike,
  // and the median round of each count is reported.
  const byN = new Map(streams.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [k, n] of streams.entries()) {
      console.error(`== decode: round ${r + 1}/${rounds}, ${n} stream(s), ${numPredict} tokens each`);
      byN.get(n).push(await decodeRound(n, numPredict, r * streams.length + k + 1));
    }
  }
  const rows = streams.map((n) => {
    const runs = byN.get(n);
    const agg = runs.map((x) => x.aggregate);
    const mid = runs.find((x) => x.aggregate === median(agg)) ?? runs[0];
    return { ...mid, aggregate: median(agg), lo: Math.min(...agg), hi: Math.max(...agg),
             short: runs.reduce((a, x) => a + x.short, 0) };
  });
  const one = rows.find((r) => r.n === 1);
  console.log(`### Aggregate decode: ${numPredict} tokens per stream, greedy, raw short prompts, median of ${rounds} round(s)\n`);
  console.log('| streams | aggregate tok/s | range | per-stream tok/s | ratio to 1 stream | tokens | wall s | end-to-end tok/s |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(`| ${r.n} | ${fmt(r.aggregate)} | ${fmt(r.lo)}–${fmt(r.hi)} | ${fmt(r.perStream)} | ` +
                `${one ? fmt(r.aggregate / one.aggregate, 2) : '-'} | ${r.tokens} | ${fmt(r.wall, 2)} | ${fmt(r.endToEnd)} |`);
  const short = rows.reduce((a, r) => a + r.short, 0);
  console.log('\nAggregate: all tokens over the window from the earliest eval start (response end minus eval_duration)' +
              ' to the last response end, the median of the rounds (range: lowest and highest); the other columns are' +
              ' the median round\'s. Per-stream: the mean of eval_count / eval_duration; end-to-end: all tokens' +
              ' over the wall time from sending to the last end (prompts included). Ratio: of the medians.' +
              (short ? ` ${short} stream(s) stopped before ${numPredict} tokens (an end-of-generation token).` : ''));
}

// ---- 2. prefix reuse ----

async function timedStream(label, prompt) {
  const r = await request('POST', '/api/generate', { ...generateBody(prompt, 4), stream: true });
  expectOk(r, label);
  const log = serverLogStats(r.requestId);
  const ttft = r.tFirst === null ? null : r.tFirst - r.t0;
  return { label, ttft, endMs: r.tEnd - r.t0, promptEval: r.last.prompt_eval_count,
           promptEvalMs: r.last.prompt_eval_duration / 1e6, cached: cachedField(r.last) ??
           (log.cached !== undefined ? `${log.cached} (server log)` : '-'), noText: r.tFirst === null };
}

async function prefix() {
  console.error(`== prefix: sizing two ~${prefixTokens}-token prompts`);
  const p = textOfTokens(prefixTokens, seed + 7);
  const q = textOfTokens(prefixTokens, seed + 8);
  // Q first: it shares nothing with what came before (cold); then P (cold),
  // then P + " x" and P + " y", which share P with the cache.
  const rows = [];
  for (const [label, prompt] of [['Q + " y" (cold)', q.text + ' y'], ['P (cold)', p.text], ['P + " x"', p.text + ' x'],
    ['P + " y" (warm)', p.text + ' y']]) {
    console.error(`== prefix: ${label}`);
    rows.push(await timedStream(label, prompt));
  }
  const ms = (r) => r.ttft ?? r.endMs;
  console.log(`### Prefix reuse: prompts of ~${prefixTokens} tokens (P ${p.tokens ?? '?'}, Q ${q.tokens ?? '?'} by ` +
              '`nstack tokenize`), raw, streaming, 4 tokens each\n');
  console.log('| prompt | prompt_eval_count | cached tokens | prompt_eval_duration ms | TTFT ms |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(`| ${r.label} | ${r.promptEval} | ${r.cached} | ${fmt(r.promptEvalMs)} | ${fmt(ms(r))}${r.noText ? ' (no text)' : ''} |`);
  const cold = ms(rows[0]), warm = ms(rows[3]);
  console.log('\n| cold TTFT ms (Q + " y") | warm TTFT ms (P + " y") | ratio cold / warm |');
  console.log('| ---: | ---: | ---: |');
  console.log(`| ${fmt(cold)} | ${fmt(warm)} | ${fmt(cold / warm, 1)} |`);
  console.log('\nTTFT: client time from sending the request to the first chunk with non-empty text' +
              (rows.some((r) => r.noText) ? ' ("no text": to the end of the response)' : '') +
              '. prompt_eval_count counts every prompt token, cached or not.');
}

// ---- 3. snapshots ----

function sizeOf(o) {
  for (const k of ['file_bytes', 'size', 'bytes']) if (typeof o[k] === 'number') return o[k];
  for (const v of Object.values(o)) if (v && typeof v === 'object') { const s = sizeOf(v); if (s) return s; }
  return null;
}
function field(o, k) {
  if (typeof o[k] === 'number') return o[k];
  for (const v of Object.values(o)) if (v && typeof v === 'object' && typeof v[k] === 'number') return v[k];
  return null;
}

async function snapshot() {
  let probe;
  try {
    probe = await request('GET', '/api/sessions');
  } catch (e) {
    probe = { status: 0, last: { error: String(e) } };
  }
  if (probe.status !== 200 || !Array.isArray(probe.last.sessions)) {
    console.log(`snapshot API not available (GET /api/sessions: HTTP ${probe.status})`);
    return;
  }
  const id = `bench-${process.pid}`, name = `${id}-snap`;
  const created = await request('POST', '/api/sessions', { model, id });
  expectOk(created, 'POST /api/sessions', 201);
  console.error(`== snapshot: growing session ${id} to ~${snapshotTokens} tokens`);
  const long = textOfTokens(snapshotTokens, seed + 9);
  const grown = await request('POST', '/api/generate', generateBody(long.text, 1, { session: id }));
  expectOk(grown, 'POST /api/generate with a session');
  const info = await request('GET', `/api/sessions/${id}`);
  expectOk(info, `GET /api/sessions/${id}`);
  const tokens = info.last.tokens;

  const rows = [];
  const measure = async (op, path, body) => {
    const r = await request('POST', path, body);
    expectOk(r, `POST ${path}`, 201);
    const serverMs = field(r.last, op === 'save' ? 'save_ms' : 'restore_ms');
    rows.push({ op, size: sizeOf(r.last), serverMs, httpMs: r.tEnd - r.t0, serverMbps: field(r.last, 'mb_per_s') });
  };
  // Save 1 writes a new file. Save 2 replaces it, which keeps it as the
  // directory's spare file; saves 3 and later rewrite the spare's blocks
  // (docs/sessions.md), the steady state of a session saved again and again.
  for (let i = 0; i < 5; i++) {
    console.error(`== snapshot: save ${i + 1}`);
    await measure('save', `/api/sessions/${id}/snapshot`, { name, overwrite: true });
  }
  const size = rows.find((r) => r.size)?.size ?? null;
  for (let i = 0; i < 3; i++) {
    console.error(`== snapshot: restore ${i + 1}`);
    await measure('restore', `/api/sessions/snapshots/${name}/restore`, { replace: true });
  }
  // The restored KV in use: the next turn of the session evaluates only its new tokens.
  const next = await request('POST', '/api/generate', { ...generateBody(' z', 4, { session: id }), stream: true });
  expectOk(next, 'POST /api/generate after the restore');
  const nextLog = serverLogStats(next.requestId);

  console.log(`### Snapshots: a session of ${tokens} tokens, file ${size ? (size / 1e6).toFixed(1) + ' MB' : 'size unknown'}` +
              ' (sync false)\n');
  console.log('| operation | server ms | HTTP ms | server MB/s | MB/s (file / server ms) | ms per GB |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  const line = (label, r) => {
    const bytes = r.size ?? size;
    const mbps = bytes && r.serverMs ? bytes / 1e6 / (r.serverMs / 1e3) : NaN;
    const msPerGb = bytes && r.serverMs !== null ? r.serverMs / (bytes / 1e9) : NaN;
    console.log(`| ${label} | ${fmt(r.serverMs ?? NaN)} | ${fmt(r.httpMs)} | ${fmt(r.serverMbps ?? NaN)} | ` +
                `${fmt(mbps)} | ${fmt(msPerGb)} |`);
  };
  const saves = rows.filter((r) => r.op === 'save'), restores = rows.filter((r) => r.op === 'restore');
  const why = ['new file', 'new file, keeps the old as spare'];
  saves.forEach((r, i) => line(`save ${i + 1} (${why[i] ?? 'into the spare'})`, r));
  restores.forEach((r, i) => line(`restore ${i + 1}`, r));
  const medianLine = (label, of) => {
    const median = (k) => {
      const v = of.map((r) => r[k]).filter((x) => x !== null).sort((a, b) => a - b);
      return v.length ? v[(v.length - 1) >> 1] : null;
    };
    line(label, { size: of[0].size, serverMs: median('serverMs'), httpMs: median('httpMs'),
                  serverMbps: median('serverMbps') });
  };
  medianLine('**save into the spare, median**', saves.slice(2));
  medianLine('**restore, median**', restores);
  console.log(`\nMB and GB are 10^6 and 10^9 bytes. After the restore, the session's next turn (" z", 4 tokens):` +
              ` prompt_eval_count ${next.last.prompt_eval_count}, cached ${cachedField(next.last) ?? nextLog.cached ?? '-'},` +
              ` TTFT ${fmt(next.tFirst === null ? next.tEnd - next.t0 : next.tFirst - next.t0)} ms.`);
  await request('DELETE', `/api/sessions/snapshots/${name}`);
  await request('DELETE', `/api/sessions/${id}`);
}

try {
  if (part === 'decode') await decode(rest.map(Number));
  else if (part === 'prefix') await prefix();
  else if (part === 'snapshot') await snapshot();
  else die(`unknown part '${part}' (decode, prefix, snapshot)`);
} catch (e) {
  die(e.stack || String(e));
} finally {
  agent.destroy();
}
