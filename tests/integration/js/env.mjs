// What the JS client tests share: where the server is (test_js_clients.sh
// starts it and passes NSTACK_URL) and which models to use.
import path from 'node:path';

export const url = process.env.NSTACK_URL;
if (!url) throw new Error('NSTACK_URL must be the base URL of a running nstack serve');

export const shared = process.env.NSTACK_SHARED || '../shared';
// The server's built-in demo model (random weights) and a real tiny model
// by absolute path: the clients send whatever model string they are given.
export const demo = process.env.NSTACK_DEMO_MODEL || 'demo';
export const stories = path.resolve(shared, 'models/stories260K.gguf');

// Polls fn until it returns a truthy value, at most `tries` times `ms` apart.
export async function until(fn, { tries = 100, ms = 50 } = {}) {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, ms));
  }
  return null;
}
