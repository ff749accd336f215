// Checks a /metrics body (stdin) against the Prometheus text exposition
// format 0.0.4 and prints its samples as JSON lines
// {"name", "labels": {...}, "value"}; exit 1 naming the first offending line.
// CI also runs the reference parser (`promtool check metrics`); this check
// runs everywhere and adds what promtool does not verify: every sample
// belongs to a declared family, no series repeats, and each histogram's
// buckets are cumulative, end at +Inf, and +Inf equals _count.
const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
const number = /^(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN)$/;
const sampleRe = new RegExp(`^(${name})(?:\\{(.*)\\})? (\\S+)$`);
const helpRe = new RegExp(`^# HELP (${name}) .*$`);
const typeRe = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram|summary|untyped)$`);

const fail = (msg) => {
  console.error(`prom_check: ${msg}`);
  process.exit(1);
};
const unescape = (v) => v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));

function parseLabels(text, where) {
  const labels = {};
  if (!text) return labels;
  labelRe.lastIndex = 0;
  while (labelRe.lastIndex < text.length) {
    const m = labelRe.exec(text);
    if (!m) fail(`bad labels, ${where}`);
    if (m[1] in labels) fail(`label ${m[1]} given twice, ${where}`);
    labels[m[1]] = unescape(m[2]);
    if (m[3] === '' && labelRe.lastIndex < text.length) fail(`bad labels, ${where}`);
  }
  return labels;
}

let text = '';
for await (const chunk of process.stdin) text += chunk;
if (!text.endsWith('\n')) fail('the body does not end with a newline');

const types = new Map();
const seen = new Set();
const samples = [];
text.split('\n').slice(0, -1).forEach((line, i) => {
  const where = `line ${i + 1}: ${JSON.stringify(line)}`;
  if (line.startsWith('# HELP ')) {
    if (!helpRe.test(line)) fail(`bad HELP, ${where}`);
    return;
  }
  if (line.startsWith('# TYPE ')) {
    const m = typeRe.exec(line);
    if (!m) fail(`bad TYPE, ${where}`);
    if (types.has(m[1])) fail(`TYPE given twice for ${m[1]}, ${where}`);
    types.set(m[1], m[2]);
    return;
  }
  if (line.startsWith('#') || line === '') return;
  const m = sampleRe.exec(line);
  if (!m || !number.test(m[3])) fail(`not a sample line, ${where}`);
  const family = [...types.keys()].find((f) => m[1] === f ||
    (types.get(f) === 'histogram' && [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(m[1])));
  if (!family) fail(`a sample of an undeclared family, ${where}`);
  const labels = parseLabels(m[2], where);
  const key = m[1] + JSON.stringify(Object.entries(labels).sort());
  if (seen.has(key)) fail(`a series given twice, ${where}`);
  seen.add(key);
  samples.push({ name: m[1], family, labels, value: Number(m[3]) });
});

// histograms: per label set (without le), buckets in order, cumulative, +Inf = _count
const series = new Map();
for (const s of samples) {
  if (types.get(s.family) !== 'histogram') continue;
  const { le, ...rest } = s.labels;
  const key = s.family + JSON.stringify(Object.entries(rest).sort());
  if (!series.has(key)) series.set(key, { buckets: [], count: null });
  const h = series.get(key);
  if (s.name.endsWith('_bucket')) {
    if (le === undefined) fail(`${s.name} without le`);
    h.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
  } else if (s.name.endsWith('_count')) h.count = s.value;
}
for (const [key, h] of series) {
  if (!h.buckets.length || h.buckets[h.buckets.length - 1][0] !== Infinity) fail(`${key}: no +Inf bucket last`);
  for (let i = 1; i < h.buckets.length; i++) {
    if (!(h.buckets[i][0] > h.buckets[i - 1][0])) fail(`${key}: bucket bounds not ascending`);
    if (h.buckets[i][1] < h.buckets[i - 1][1]) fail(`${key}: buckets not cumulative`);
  }
  if (h.count !== h.buckets[h.buckets.length - 1][1]) fail(`${key}: +Inf bucket differs from _count`);
}
for (const s of samples) console.log(JSON.stringify({ name: s.name, labels: s.labels, value: s.value }));
