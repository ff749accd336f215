// The official `openai` npm client against nstack serve's /v1 API.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

import { demo, stories, url } from './env.mjs';

// No retries: a failing request must fail the test, not be tried again.
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused-by-nstack', maxRetries: 0, timeout: 60_000 });

const chatRequest = {
  model: demo,
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say something.' },
  ],
  max_tokens: 12,
  temperature: 0,
};

test('models.list names the demo model', async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.some((id) => id === demo || id.startsWith(`${demo}:`)), `no ${demo} in ${JSON.stringify(ids)}`);
});

test('chat.completions.create without streaming', async () => {
  const r = await client.chat.completions.create(chatRequest);
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /\S/);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat.completions.create streaming gives the same greedy text', async () => {
  const whole = await client.chat.completions.create(chatRequest);
  const stream = await client.chat.completions.create({ ...chatRequest, stream: true });
  let text = '';
  let finish = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const ch of chunk.choices) {
      text += ch.delta.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.ok(chunks >= 2, `only ${chunks} chunks`);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(text, whole.choices[0].message.content);
});

test('stream_options.include_usage ends with a usage chunk', async () => {
  const stream = await client.chat.completions.create({
    ...chatRequest,
    stream: true,
    stream_options: { include_usage: true },
  });
  let last = null;
  let withUsage = 0;
  for await (const chunk of stream) {
    if (chunk.usage) withUsage++;
    last = chunk;
  }
  assert.equal(withUsage, 1, 'exactly one chunk carries usage');
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.prompt_tokens > 0);
  assert.ok(last.usage.completion_tokens > 0 && last.usage.completion_tokens <= 12);
  assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
});

test('completions.create on stories260K by path', async () => {
  const r = await client.completions.create({ model: stories, prompt: 'Once upon a time', max_tokens: 24, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  assert.ok(r.choices[0].text.length > 0);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);

  const stream = await client.completions.create({
    model: stories,
    prompt: 'Once upon a time',
    max_tokens: 24,
    temperature: 0,
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

test('n=2 gives two choices', async () => {
  const r = await client.chat.completions.create({ ...chatRequest, n: 2 });
  assert.equal(r.choices.length, 2);
  assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1]);
  // Greedy: both choices are the same text.
  assert.equal(r.choices[0].message.content, r.choices[1].message.content);
  assert.ok(r.usage.completion_tokens >= 2);
});

test('stop ends the text before the stop sequence', async () => {
  const req = { model: stories, prompt: 'Once upon a time', max_tokens: 48, temperature: 0 };
  const full = (await client.completions.create(req)).choices[0].text;
  // A word from the middle of the greedy text: the stopped text is
  // everything before its first occurrence.
  const words = full.split(/\s+/).filter((w) => w.length >= 3);
  assert.ok(words.length >= 3, `too little text to cut: ${JSON.stringify(full)}`);
  const stop = ` ${words[Math.floor(words.length / 2)]}`;
  const cut = full.indexOf(stop);
  assert.ok(cut > 0, `stop ${JSON.stringify(stop)} not in ${JSON.stringify(full)}`);
  const r = await client.completions.create({ ...req, stop: [stop] });
  assert.equal(r.choices[0].text, full.slice(0, cut));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('the same seed gives the same sampled text', async () => {
  const req = { model: stories, prompt: 'Once upon a time', max_tokens: 32, temperature: 1.0 };
  const a = (await client.completions.create({ ...req, seed: 42 })).choices[0].text;
  const b = (await client.completions.create({ ...req, seed: 42 })).choices[0].text;
  assert.equal(a, b);
  // And the seed is used: other seeds give other samples (the output for a
  // given seed is deterministic, so this cannot flake).
  const others = [];
  for (const seed of [1, 2, 3]) others.push((await client.completions.create({ ...req, seed })).choices[0].text);
  assert.ok(others.some((t) => t !== a), 'seeds 1, 2 and 3 all gave the text of seed 42');
});

test('an unknown model is an APIError with status 404', async () => {
  await assert.rejects(
    client.chat.completions.create({ ...chatRequest, model: 'no-such-model:latest' }),
    (e) => {
      assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
      assert.equal(e.status, 404);
      assert.match(e.message, /no-such-model/);
      return true;
    },
  );
});
