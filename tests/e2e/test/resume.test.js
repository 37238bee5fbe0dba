// Resume: SUBSCRIBE /user/queue/notifications with `since: <cursor>` replays, then goes live, with no gap.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { event, publish, inbox, waitListed } from '../lib/http.js';
import { uid, sleep, dedupe } from '../lib/util.js';

let server;
const open = [];
before(async () => {
  server = await startServer({ name: 'resume' });
});
after(async () => {
  for (const s of open) await s.close();
  if (server) await server.stop();
});

async function session(user, groups = []) {
  const s = await openStomp(server, { token: token(user, groups), via: 'query' });
  open.push(s);
  return s;
}

test('reconnect with since: exactly the notifications missed, oldest first, then live', async (t) => {
  const user = uid('res');
  const group = uid('grp');
  const prefix = uid('rs');
  const s1 = await session(user, [group]);
  const q1 = await s1.subscribe('/user/queue/notifications');
  await publish(server, event(`${prefix}-0`, { users: [user] }));
  const [first] = await q1.messages.waitFor(1);
  const cursor = first.body.cursor;
  await s1.close();

  const missed = [`${prefix}-1`, `${prefix}-2`, `${prefix}-3`, `${prefix}-4`];
  await publish(server, event(missed[0], { users: [user] }));
  await publish(server, event(missed[1], { groups: [group] }));
  await publish(server, event(missed[2], { broadcast: true }));
  await publish(server, event(missed[3], { users: [user] }));
  // an event for someone else must not be replayed
  await publish(server, event(`${prefix}-x`, { users: [uid('someone-else')] }));

  const s2 = await session(user, [group]);
  const q2 = await s2.subscribe('/user/queue/notifications', { since: cursor });
  assert.deepEqual(s2.receiptsMissing, []);
  const ours = () => dedupe(q2.messages.items.filter((m) => m.body && m.body.event_id.startsWith(prefix)), (m) => m.headers['message-id']);
  await q2.messages.waitFor(() => missed.every((e) => ours().some((m) => m.body.event_id === e)), undefined, 'the replay');
  const live = `${prefix}-5`;
  await publish(server, event(live, { users: [user] }));
  await q2.messages.waitFor(() => ours().some((m) => m.body.event_id === live), undefined, 'the live push after the replay');
  await sleep(300);
  let got = ours().map((m) => m.body.event_id);
  if (got[0] === `${prefix}-0`) {
    t.diagnostic('the notification at the since cursor itself was sent again (allowed as a repeat)');
    got = got.slice(1);
  }
  assert.deepEqual(got, [...missed, live], 'missed notifications oldest first, then live, each once');
  for (const m of q2.messages.items) assert.equal(m.headers.subscription, q2.id);

  // REST catch-up from the same cursor tells the same story
  await waitListed(server, token(user, [group]), [...missed, live]);
  const rest = await inbox(server, token(user, [group]), `since=${encodeURIComponent(cursor)}&limit=200`);
  assert.deepEqual(rest.items.map((x) => x.event_id).filter((e) => e.startsWith(prefix)), [...missed, live]);
});

test('no gap: reconnecting with since while events keep coming loses nothing', { timeout: 60_000 }, async () => {
  const user = uid('nogap');
  const prefix = uid('ng');
  const total = 60;
  const s1 = await session(user);
  const q1 = await s1.subscribe('/user/queue/notifications');
  const ids = Array.from({ length: total }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  const publisher = (async () => {
    for (const id of ids) {
      await publish(server, event(id, { users: [user] }));
      await sleep(15);
    }
  })();
  await q1.messages.waitFor(15, 15_000);
  // drop the connection abruptly, as a flaky network would
  s1.ws.terminate();
  await s1.waitClosed(5000);
  const seen1 = q1.messages.items.map((m) => m.body);
  const last = seen1[seen1.length - 1];
  const s2 = await session(user);
  const q2 = await s2.subscribe('/user/queue/notifications', { since: last.cursor });
  await publisher;
  const all = () => dedupe([...seen1, ...q2.messages.items.map((m) => m.body)], (n) => n.id);
  await q2.messages.waitFor(() => all().length >= total, 15_000, 'all notifications across the resume');
  await sleep(300);
  const got = all().map((n) => n.event_id);
  assert.deepEqual(got, ids, 'every notification exactly once (after de-duplication), in order');
  const second = dedupe(q2.messages.items.map((m) => m.body), (n) => n.id).map((n) => n.event_id);
  const seenBefore = new Set(seen1.map((n) => n.event_id));
  assert.deepEqual(second.filter((e) => !seenBefore.has(e)), ids.slice(ids.indexOf(last.event_id) + 1), 'the resumed stream is every later notification, oldest first');
});

test('since with a cursor from the REST listing works for STOMP too', async () => {
  const user = uid('mix');
  const tok = token(user);
  const prefix = uid('mx');
  await publish(server, [event(`${prefix}-a`, { users: [user] }), event(`${prefix}-b`, { users: [user] })]);
  const list = await waitListed(server, tok, [`${prefix}-a`, `${prefix}-b`]);
  const a = list.items.find((x) => x.event_id === `${prefix}-a`);
  assert.ok(a, 'listed');
  const s = await session(user);
  const q = await s.subscribe('/user/queue/notifications', { since: a.cursor });
  await q.messages.waitFor((ms) => ms.some((m) => m.body.event_id === `${prefix}-b`));
  await sleep(300);
  const got = dedupe(q.messages.items, (m) => m.headers['message-id']).map((m) => m.body.event_id).filter((e) => e.startsWith(prefix));
  assert.deepEqual(got.filter((e) => e !== `${prefix}-a`), [`${prefix}-b`]);
});
