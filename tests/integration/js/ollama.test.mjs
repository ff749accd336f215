// The official `ollama` npm client against nstack serve's /api.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ollama } from 'ollama';

import { demo, stories, until, url } from './env.mjs';

const ollama = new Ollama({ host: url });
const greedy = { temperature: 0, num_predict: 24 };
const storyRequest = { model: stories, prompt: 'Once upon a time', options: greedy };

const sameModel = (a, b) => a === b || a === `${b}:latest` || b === `${a}:latest`;

test('generate without streaming reports Ollama\'s fields', async () => {
  const r = await ollama.generate(storyRequest);
  assert.equal(r.done, true);
  assert.ok(['stop', 'length'].includes(r.done_reason), r.done_reason);
  assert.equal(typeof r.response, 'string');
  assert.ok(r.response.length > 0);
  assert.ok(r.eval_count > 0 && r.eval_count <= 24);
  assert.ok(r.prompt_eval_count > 0);
  for (const f of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration'])
    assert.ok(Number.isInteger(r[f]) && r[f] >= 0, `${f} = ${r[f]}`);
  assert.ok(r.total_duration >= r.eval_duration);
  assert.ok(Array.isArray(r.context) && r.context.length >= r.prompt_eval_count);
  assert.match(r.created_at, /^\d{4}-\d\d-\d\dT/);
});

test('generate streaming gives the same greedy text', async () => {
  const whole = await ollama.generate(storyRequest);
  let text = '';
  let parts = 0;
  let last = null;
  for await (const part of await ollama.generate({ ...storyRequest, stream: true })) {
    parts++;
    text += part.response;
    last = part;
  }
  assert.ok(parts >= 2, `only ${parts} parts`);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, whole.eval_count);
  assert.equal(text, whole.response);
});

const chatRequest = {
  model: demo,
  messages: [{ role: 'user', content: 'Hello there' }],
  options: { temperature: 0, num_predict: 12 },
};

test('chat without and with streaming', async () => {
  const whole = await ollama.chat(chatRequest);
  assert.equal(whole.done, true);
  assert.equal(whole.message.role, 'assistant');
  assert.equal(typeof whole.message.content, 'string');
  assert.ok(whole.eval_count > 0 && whole.eval_count <= 12);

  let text = '';
  let last = null;
  for await (const part of await ollama.chat({ ...chatRequest, stream: true })) {
    if (!part.done) assert.equal(part.message.role, 'assistant');
    text += part.message?.content ?? '';
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(text, whole.message.content);
});

test('list shows the demo model', async () => {
  const { models } = await ollama.list();
  const m = models.find((x) => sameModel(x.name, demo));
  assert.ok(m, `no ${demo} in ${JSON.stringify(models.map((x) => x.name))}`);
  assert.ok(m.size > 0);
  assert.match(m.digest, /^(sha256:)?[0-9a-f]{64}$/);
});

test('ps shows a model that just ran', async () => {
  await ollama.generate({ ...storyRequest, keep_alive: '5m' });
  const { models } = await ollama.ps();
  const m = models.find((x) => x.name === stories || x.model === stories);
  assert.ok(m, `no ${stories} in ${JSON.stringify(models.map((x) => x.name))}`);
  assert.ok(m.size > 0);
  assert.ok(Date.parse(m.expires_at) > Date.now());
});

test('show describes the demo model', async () => {
  const r = await ollama.show({ model: demo });
  assert.equal(typeof r.details, 'object');
  assert.equal(r.details.format, 'gguf');
  assert.equal(typeof r.model_info, 'object');
  assert.ok(Object.keys(r.model_info).some((k) => k.startsWith('general.')));
});

test('copy then delete', async () => {
  const copyName = 'js-client-copy:latest';
  await ollama.copy({ source: demo, destination: copyName });
  let { models } = await ollama.list();
  assert.ok(models.some((m) => m.name === copyName), 'the copy is listed');
  const r = await ollama.generate({ model: copyName, prompt: 'Hi', options: { num_predict: 2 }, keep_alive: 0 });
  assert.equal(r.done, true);

  await ollama.delete({ model: copyName });
  ({ models } = await ollama.list());
  assert.ok(!models.some((m) => m.name === copyName), 'the copy is gone');
  assert.ok(models.some((m) => sameModel(m.name, demo)), 'the original stays');
  await assert.rejects(ollama.delete({ model: copyName }), (e) => e.name === 'ResponseError' && e.status_code === 404);
});

test('keep_alive 0 unloads: ps is empty', async () => {
  await ollama.generate({ ...storyRequest, keep_alive: '5m' });
  // Whatever is loaded (the demo model may be preloaded too) goes with a
  // keep_alive 0 request, as `ollama stop` does it.
  for (const m of (await ollama.ps()).models)
    await ollama.generate({ model: m.model ?? m.name, prompt: 'Hi', options: { num_predict: 1 }, keep_alive: 0 });
  // Unloading happens once the model is idle, right after the response.
  const empty = await until(async () => (await ollama.ps()).models.length === 0);
  assert.ok(empty, `still loaded: ${JSON.stringify((await ollama.ps()).models.map((m) => m.name))}`);
});

test('an unknown model is a ResponseError with status 404', async () => {
  await assert.rejects(ollama.generate({ model: 'no-such-model', prompt: 'x' }), (e) => {
    assert.equal(e.name, 'ResponseError');
    assert.equal(e.status_code, 404);
    assert.match(e.error, /no-such-model/);
    return true;
  });
  await assert.rejects(ollama.show({ model: 'no-such-model' }), (e) => e.status_code === 404);
});
