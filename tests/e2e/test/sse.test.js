// Server-Sent Events fallback at /api/stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token, forgedToken } from '../lib/jwt.js';
import { SseStream, openSse } from '../lib/sse.js';
import { event, publish, api } from '../lib/http.js';
import { uid, sleep, dedupe } from '../lib/util.js';

let server;
before(async () => {
  server = await startServer({ name: 'sse' });
});
after(async () => {
  if (server) await server.stop();
});

async function streamReady(s) {
  // give the server a moment to register the stream before publishing
  await sleep(300);
  return s;
}

for (const via of ['query', 'header']) {
  test(`SSE with the token in the ${via}: event: notification, id: <cursor>, data: <json>`, async () => {
    const user = uid('sse');
    const s = await streamReady(await openSse(server, { token: token(user), via }));
    try {
      assert.match(s.response.headers.get('content-type') || '', /^text\/event-stream/);
      const id = uid('evt');
      await publish(server, event(id, { users: [user] }, { data: { k: 'v' } }));
      const items = await s.events.waitFor((es) => es.some((e) => e.event_id === id));
      const e = items.find((x) => x.event_id === id);
      assert.equal(e.event, 'notification');
      assert.ok(e.body, `data is JSON: ${e.text}`);
      assert.equal(e.id, e.body.cursor, 'SSE id is the cursor');
      assert.deepEqual(e.body.audience, { kind: 'user', id: user });
      assert.deepEqual(e.body.data, { k: 'v' });
      assert.equal(e.body.read, false);
    } finally {
      s.close();
    }
  });
}

test('SSE carries group and broadcast notifications for the user, not others', async () => {
  const user = uid('sse');
  const group = uid('g');
  const s = await streamReady(await openSse(server, { token: token(user, [group]) }));
  try {
    const prefix = uid('sg');
    await publish(server, [
      event(`${prefix}-g`, { groups: [group] }),
      event(`${prefix}-b`, { broadcast: true }),
      event(`${prefix}-x`, { groups: [uid('notmine')] }),
      event(`${prefix}-o`, { users: [uid('other')] }),
      event(`${prefix}-u`, { users: [user] }),
    ]);
    await s.events.waitFor((es) => es.some((e) => e.event_id === `${prefix}-u`));
    await sleep(300);
    const got = s.events.items.map((e) => e.event_id).filter((e) => e && e.startsWith(prefix)).sort();
    assert.deepEqual(got, [`${prefix}-b`, `${prefix}-g`, `${prefix}-u`]);
  } finally {
    s.close();
  }
});

for (const how of ['Last-Event-ID header', 'since query parameter']) {
  test(`SSE resume with the ${how}: exactly the missed ones, oldest first, then live`, async () => {
    const user = uid('sser');
    const tok = token(user);
    const prefix = uid('sr');
    const s1 = await streamReady(await openSse(server, { token: tok }));
    await publish(server, event(`${prefix}-0`, { users: [user] }));
    const [first] = await s1.events.waitFor((es) => es.some((e) => e.event_id === `${prefix}-0`));
    const last = s1.events.items.find((e) => e.event_id === `${prefix}-0`).id;
    assert.ok(first);
    s1.close();
    const missed = [`${prefix}-1`, `${prefix}-2`, `${prefix}-3`];
    for (const id of missed) await publish(server, event(id, { users: [user] }));
    const opts = how.startsWith('Last') ? { token: tok, lastEventId: last } : { token: tok, since: last };
    const s2 = await openSse(server, opts);
    try {
      await s2.events.waitFor((es) => missed.every((m) => es.some((e) => e.event_id === m)));
      await sleep(300);
      await publish(server, event(`${prefix}-4`, { users: [user] }));
      await s2.events.waitFor((es) => es.some((e) => e.event_id === `${prefix}-4`));
      const got = dedupe(s2.events.items.filter((e) => e.event_id && e.event_id.startsWith(prefix)), (e) => e.body.id).map((e) => e.event_id);
      assert.deepEqual(got.filter((e) => e !== `${prefix}-0`), [...missed, `${prefix}-4`]);
    } finally {
      s2.close();
    }
  });
}

test('SSE without or with a bad token is a 401 with the error shape', async () => {
  for (const opts of [{}, { token: forgedToken('x') }, { token: forgedToken('x'), via: 'header' }]) {
    const s = new SseStream(server, opts);
    const res = await s.open();
    const text = await res.text().catch(() => '');
    s.close();
    assert.equal(res.status, 401, `${JSON.stringify(opts).slice(0, 40)}: ${res.status} ${text.slice(0, 200)}`);
    assert.ok(JSON.parse(text).error, 'error JSON');
  }
  const r = await api(server, '/api/stream');
  assert.equal(r.status, 401);
});

test('SSE sends a comment line at least every 15 s', { timeout: 40_000 }, async () => {
  const s = await openSse(server, { token: token(uid('idle')) });
  try {
    const t0 = Date.now();
    await sleep(16_500);
    const comments = s.comments.filter((c) => c.at > t0);
    assert.ok(comments.length >= 1, 'no SSE comment line within 16.5 s of an idle stream');
    assert.equal(s.ended, false, 'stream still open');
  } finally {
    s.close();
  }
});
