// A slow consumer is closed with ERROR "slow consumer" and resumes with `since` without loss.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { openRaw } from '../lib/raw.js';
import { event, publish } from '../lib/http.js';
import { assertPersonalDelivery } from '../lib/expect.js';
import { uid, sleep, dedupe, withTimeout } from '../lib/util.js';

const QUEUE = 8;
const EVENTS = Number(process.env.NOTIFY_E2E_SLOW_EVENTS || 400);
const BLOB = 'x'.repeat(50 * 1024 - 600); // each event stays under the 64 KiB event limit
const BATCH = 15; // ~750 KiB per request, under the 1 MiB body limit

let server;
before(async () => {
  server = await startServer({ name: 'slow', env: { NOTIFY_SESSION_QUEUE: String(QUEUE) } });
});
after(async () => {
  if (server) await server.stop();
});

test('slow consumer: closed with ERROR "slow consumer", then resumes with since and loses nothing', { timeout: 170_000 }, async (t) => {
  const user = uid('slow');
  const prefix = uid('sc');
  const tok = token(user);
  const bystanderUser = uid('fast');
  const bystander = await openStomp(server, { token: token(bystanderUser), via: 'query' });
  const bq = await bystander.subscribe('/user/queue/notifications');

  const slow = await openRaw(server, { token: tok }, { heartBeat: '0,0' });
  await slow.subscribe('/user/queue/notifications', 'slow-sub');
  const ids = [`${prefix}-00000`];
  await publish(server, event(ids[0], { users: [user] }));
  await slow.next('MESSAGE');

  // stop reading: the kernel buffers fill, then the session's queue
  slow.ws._socket.pause();
  for (let i = 1; i <= EVENTS; i++) ids.push(`${prefix}-${String(i).padStart(5, '0')}`);
  const t0 = Date.now();
  for (let i = 1; i < ids.length; i += BATCH) {
    const batch = ids.slice(i, i + BATCH).map((id, k) => event(id, { users: [user] }, { data: { seq: i + k, blob: BLOB } }));
    await publish(server, batch);
  }
  t.diagnostic(`published ${EVENTS} events of ~50 KiB in ${Date.now() - t0} ms`);

  // other sessions are not held up by the slow one
  await assertPersonalDelivery(server, bq, bystanderUser);
  await sleep(1000);

  // read what the server managed to write, up to its ERROR and close
  slow.ws._socket.resume();
  const closed = await slow.waitClosed(20_000);
  const frames = slow.frames.items;
  const msgs = frames.filter((f) => f.command === 'MESSAGE');
  const errors = frames.filter((f) => f.command === 'ERROR');
  t.diagnostic(`slow client read ${msgs.length} MESSAGE frames, ${errors.length} ERROR frames before close ${JSON.stringify(closed)}`);
  const seen = msgs.map((f) => f.body);
  const lastCursor = seen[seen.length - 1].cursor;

  await t.test('the server closed the slow session with ERROR message:slow consumer', () => {
    assert.ok(closed, `the slow session was not closed: it read all ${msgs.length} messages of ${ids.length} (NOTIFY_SESSION_QUEUE=${QUEUE} honoured?)`);
    assert.ok(msgs.length < ids.length, `the slow session got all ${msgs.length} messages: it was never overflowed`);
    assert.equal(errors.length, 1, `expected one ERROR frame before the close; frames: ${frames.map((f) => f.command).slice(-5)}`);
    assert.equal(errors[0].headers.message, 'slow consumer');
    assert.equal(frames[frames.length - 1].command, 'ERROR', 'the ERROR is the last frame');
  });

  await t.test('resuming with since = last cursor seen yields every notification exactly once', async () => {
    const got = [...seen];
    let cursor = lastCursor;
    let attempts = 0;
    const have = () => new Set(dedupe(got, (n) => n.id).map((n) => n.event_id));
    while (have().size < ids.length && attempts < 3) {
      attempts += 1;
      const s = await openStomp(server, { token: tok, via: 'query' });
      const q = await s.subscribe('/user/queue/notifications', { since: cursor });
      try {
        await withTimeout(
          Promise.race([
            q.messages.waitFor(() => {
              const h = have();
              for (const m of q.messages.items) h.add(m.body.event_id);
              return h.size >= ids.length;
            }, 60_000),
            s.closed.then(() => {
              throw new Error('closed');
            }),
          ]),
          61_000,
          'the resumed stream',
        ).catch((e) => t.diagnostic(`resume attempt ${attempts}: ${e.message}; errors ${JSON.stringify(s.errors.items.map((x) => x.headers.message))}`));
      } finally {
        const bodies = q.messages.items.map((m) => m.body);
        // the resumed stream is oldest first
        const order = dedupe(bodies, (n) => n.id).map((n) => n.event_id).filter((e) => !seen.some((x) => x.event_id === e));
        assert.deepEqual(order, [...order].sort(), 'resumed stream oldest first');
        got.push(...bodies);
        if (bodies.length) cursor = bodies[bodies.length - 1].cursor;
        await s.close();
      }
    }
    if (attempts > 1) t.diagnostic(`needed ${attempts} resumes to catch up`);
    const unique = dedupe(got, (n) => n.id);
    const eventIds = unique.map((n) => n.event_id);
    const missing = ids.filter((id) => !eventIds.includes(id));
    assert.deepEqual(missing, [], `missing after resume: ${missing.length} of ${ids.length}`);
    assert.equal(unique.length, ids.length, 'exactly one notification per event after de-duplication');
    assert.ok(attempts <= 1, `catching up with since should not itself overflow the session (needed ${attempts} resumes)`);
  });

  await bystander.close();
  slow.close();
});
