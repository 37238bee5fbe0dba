// Edge cases across the transports: idempotent pushes, fan-out, framing details,
// read state in replays, time boundaries, text round trips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { openRaw, encodeFrame } from '../lib/raw.js';
import { openSse } from '../lib/sse.js';
import { api, event, publish, inbox, unreadCount, errorBody, waitListed } from '../lib/http.js';
import { uid, sleep, dedupe } from '../lib/util.js';

let server;
const open = [];
before(async () => {
  server = await startServer({ name: 'edge' });
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

// Regression: a duplicate event was once pushed again live with the duplicate's content and a
// cursor / created_at that the store does not have.
test('a duplicate event pushed to a live session repeats the stored notification exactly (same id, content, cursor)', async (t) => {
  const user = uid('dup');
  const s = await session(user);
  const q = await s.subscribe('/user/queue/notifications');
  const id = uid('evt');
  await publish(server, event(id, { users: [user] }, { title: 'first' }));
  await q.messages.waitFor(1);
  await publish(server, event(id, { users: [user] }, { title: 'second' }));
  await publish(server, [event(id, { users: [user] }, { title: 'third' })]);
  await waitListed(server, token(user), [id]);
  await sleep(800);
  const list = await inbox(server, token(user), 'limit=200');
  const ns = list.items.filter((x) => x.event_id === id);
  assert.equal(ns.length, 1, 'stored once');
  assert.equal(ns[0].title, 'first', 'the first content is kept');
  const pushes = q.messages.items.filter((m) => m.body.event_id === id);
  if (pushes.length > 1) t.diagnostic(`the duplicate was pushed ${pushes.length} times`);
  for (const m of pushes) {
    assert.equal(m.headers['message-id'], ns[0].id);
    assert.deepEqual({ title: m.body.title, cursor: m.body.cursor, created_at: m.body.created_at }, { title: ns[0].title, cursor: ns[0].cursor, created_at: ns[0].created_at }, 'a repeated push must be the stored notification');
  }
});

test('an event for several users gives each their own notification (distinct ids)', async () => {
  const a = uid('a');
  const b = uid('b');
  const id = uid('evt');
  await publish(server, event(id, { users: [a, b] }));
  await waitListed(server, token(a), [id]);
  await waitListed(server, token(b), [id]);
  const na = (await inbox(server, token(a), 'limit=200')).items.filter((x) => x.event_id === id);
  const nb = (await inbox(server, token(b), 'limit=200')).items.filter((x) => x.event_id === id);
  assert.equal(na.length, 1);
  assert.equal(nb.length, 1);
  assert.notEqual(na[0].id, nb[0].id);
  assert.deepEqual(na[0].audience, { kind: 'user', id: a });
});

test('fan-out: 100 concurrent sessions all receive one broadcast and one group push', { timeout: 60_000 }, async () => {
  const group = uid('crowd');
  const sessions = await Promise.all(Array.from({ length: 100 }, (_, i) => openStomp(server, { token: token(uid(`c${i}`), [group]), via: 'query' })));
  open.push(...sessions);
  const subs = await Promise.all(sessions.map((s) => s.subscribe('/user/queue/notifications')));
  const b = uid('bc');
  const g = uid('gp');
  await publish(server, [event(b, { broadcast: true }), event(g, { groups: [group] })]);
  await Promise.all(subs.map((q) => q.messages.waitFor((ms) => [b, g].every((e) => ms.some((m) => m.body.event_id === e)))));
  const ids = new Set(subs.map((q) => q.messages.items.find((m) => m.body.event_id === g).body.id));
  assert.equal(ids.size, 1, 'a group notification has one id for every member');
  await Promise.all(sessions.map((s) => s.close()));
});

test('group names with dots, dashes and unicode text round-trip through STOMP, REST and SSE', async () => {
  const group = `${uid('team')}.eu-west_1`;
  const user = uid('uni');
  const s = await session(user, [group]);
  const t = await s.subscribe(`/topic/groups.${group}`);
  assert.deepEqual(s.receiptsMissing, []);
  const sse = await openSse(server, { token: token(user, [group]) });
  await sleep(300);
  const title = 'Grüße 🎉 — «tëst» 中文';
  const message = 'line one\nline two: with colon\\backslash and "quotes"\u0000nul';
  const id = uid('evt');
  await publish(server, event(id, { groups: [group] }, { title, message, data: { emoji: '🚀', nested: { 'k:y': 'v\nw' } } }));
  const [m] = await t.messages.waitFor(1);
  assert.equal(m.body.title, title);
  assert.equal(m.body.message, message);
  assert.deepEqual(m.body.data, { emoji: '🚀', nested: { 'k:y': 'v\nw' } });
  assert.deepEqual(m.body.audience, { kind: 'group', id: group });
  const [e] = await sse.events.waitFor((es) => es.some((x) => x.event_id === id));
  assert.equal(sse.events.items.find((x) => x.event_id === id).body.message, message);
  sse.close();
  assert.ok(e);
  const listed = (await waitListed(server, token(user, [group]), [id])).items.find((x) => x.event_id === id);
  assert.equal(listed.title, title);
});

test('several frames in one WebSocket message, and heart-beat EOLs between frames', async () => {
  const user = uid('frames');
  const c = await openRaw(server, { token: token(user) });
  try {
    c.sendRaw(
      encodeFrame('SUBSCRIBE', { destination: '/user/queue/notifications', id: 'a', receipt: 'ra' }) +
        '\n' +
        encodeFrame('SUBSCRIBE', { destination: '/topic/notifications', id: 'b', receipt: 'rb' }),
    );
    await c.frames.waitFor((fs) => ['ra', 'rb'].every((r) => fs.some((f) => f.command === 'RECEIPT' && f.headers['receipt-id'] === r)), undefined, 'both RECEIPTs');
    // client heart-beats (bare EOLs, LF and CRLF) between frames are fine
    c.sendRaw('\n');
    c.sendRaw('\r\n');
    c.frame('SEND', { destination: '/app/read', receipt: 'rd' }, '{"all":true}');
    await c.frames.waitFor((fs) => fs.some((x) => x.command === 'RECEIPT' && x.headers['receipt-id'] === 'rd'), undefined, 'RECEIPT rd');
    assert.equal(c.frames.items.filter((x) => x.command === 'ERROR').length, 0);
  } finally {
    c.close();
  }
});

// The contract is silent here; Spring's broker relay and stompjs' splitLargeFrames rely on it.
test('one frame split over several WebSocket messages is reassembled', { todo: 'contract silent: frames are taken one per WebSocket message' }, async () => {
  const c = await openRaw(server, { token: token(uid('split')) });
  try {
    const f = encodeFrame('SEND', { destination: '/app/read', receipt: 'rc', 'content-type': 'application/json' }, '{"all":true}');
    c.sendRaw(f.slice(0, 10));
    await sleep(50);
    c.sendRaw(f.slice(10, 30));
    await sleep(50);
    c.sendRaw(f.slice(30));
    const got = await c.frames.waitFor((fs) => fs.some((x) => (x.command === 'RECEIPT' && x.headers['receipt-id'] === 'rc') || x.command === 'ERROR'));
    const r = got.find((x) => (x.command === 'RECEIPT' && x.headers['receipt-id'] === 'rc') || x.command === 'ERROR');
    assert.equal(r.command, 'RECEIPT', `split frame answered ${r.command} ${r.headers.message || ''}`);
  } finally {
    c.close();
  }
});

test('a frame with content-length and CRLF line endings is accepted', async () => {
  const user = uid('crlf');
  const c = await openRaw(server, { token: token(user) });
  try {
    const body = '{"all":true}';
    c.sendRaw(`SEND\r\ndestination:/app/read\r\ncontent-length:${Buffer.byteLength(body)}\r\nreceipt:crlf\r\n\r\n${body}\0`);
    const got = await c.frames.waitFor((fs) => fs.some((x) => x.command === 'RECEIPT' || x.command === 'ERROR'));
    const r = got.find((x) => x.command === 'RECEIPT' || x.command === 'ERROR');
    assert.equal(r.command, 'RECEIPT', `${r.command} ${r.headers.message || ''}`);
  } finally {
    c.close();
  }
});

test("the replay after since carries the user's read state", async () => {
  const user = uid('rs');
  const tok = token(user);
  const s1 = await session(user);
  const q1 = await s1.subscribe('/user/queue/notifications');
  const prefix = uid('rd');
  await publish(server, event(`${prefix}-0`, { users: [user] }));
  const [first] = await q1.messages.waitFor(1);
  await s1.close();
  await publish(server, [event(`${prefix}-1`, { users: [user] }), event(`${prefix}-2`, { users: [user] })]);
  await waitListed(server, tok, [`${prefix}-1`, `${prefix}-2`]);
  const n1 = (await inbox(server, tok, 'limit=200')).items.find((x) => x.event_id === `${prefix}-1`);
  assert.equal((await api(server, `/api/notifications/${encodeURIComponent(n1.id)}/read`, { method: 'POST', token: tok })).status, 204);
  const s2 = await session(user);
  const q2 = await s2.subscribe('/user/queue/notifications', { since: first.body.cursor });
  await q2.messages.waitFor((ms) => ms.some((m) => m.body.event_id === `${prefix}-2`));
  const byEvent = Object.fromEntries(q2.messages.items.map((m) => [m.body.event_id, m.body.read]));
  assert.equal(byEvent[`${prefix}-1`], true, 'a notification read before the resume is replayed with read:true');
  assert.equal(byEvent[`${prefix}-2`], false);
});

test('a broadcast read by one user stays unread for another', async () => {
  const a = token(uid('a'));
  const b = token(uid('b'));
  const id = uid('bc');
  await publish(server, event(id, { broadcast: true }));
  await waitListed(server, a, [id]);
  await waitListed(server, b, [id]);
  const ca = await unreadCount(server, a);
  const cb = await unreadCount(server, b);
  const n = (await inbox(server, a, 'limit=200')).items.find((x) => x.event_id === id);
  assert.equal((await api(server, `/api/notifications/${encodeURIComponent(n.id)}/read`, { method: 'POST', token: a })).status, 204);
  assert.equal(await unreadCount(server, a), ca - 1);
  assert.equal(await unreadCount(server, b), cb);
  assert.equal((await inbox(server, b, 'limit=200')).items.find((x) => x.id === n.id).read, false);
});

// Regression: created_at is in milliseconds while the store keeps finer times.
test('since=<created_at of a notification> excludes that notification ("after the point")', async () => {
  const user = uid('tb');
  const tok = token(user);
  const prefix = uid('tb');
  for (let i = 0; i < 4; i++) {
    await publish(server, event(`${prefix}-${i}`, { users: [user] }));
    await sleep(30);
  }
  const items = (await waitListed(server, tok, [0, 1, 2, 3].map((i) => `${prefix}-${i}`))).items.filter((x) => x.event_id.startsWith(prefix));
  const n1 = items.find((x) => x.event_id === `${prefix}-1`);
  const p = await inbox(server, tok, `since=${encodeURIComponent(n1.created_at)}&limit=200`);
  assert.deepEqual(p.items.map((x) => x.event_id).filter((e) => e.startsWith(prefix)), [`${prefix}-2`, `${prefix}-3`]);
});

test('boundaries: an id of 128 chars and an event just under 64 KiB are accepted; limit=1 and limit=200 work', async () => {
  const user = uid('bd');
  const long = `${uid('L')}-`.padEnd(128, 'x');
  assert.equal(long.length, 128);
  await publish(server, event(long, { users: [user] }));
  const big = uid('big');
  const r = await publish(server, event(big, { users: [user] }, { data: { blob: 'b'.repeat(60 * 1024) } }), { expect: null });
  assert.equal(r.status, 202, `a ~60 KiB event: ${r.status} ${r.text.slice(0, 200)}`);
  await waitListed(server, token(user), [long, big]);
  const one = await inbox(server, token(user), 'limit=1');
  assert.equal(one.items.length, 1);
  const all = await inbox(server, token(user), 'limit=200');
  assert.ok(all.items.some((x) => x.event_id === long));
  assert.ok(all.items.some((x) => x.event_id === big));
});

test('unknown paths answer 404 with the JSON error shape', async () => {
  const r = await api(server, '/api/nothing-here', { token: token(uid('x')) });
  assert.equal(r.status, 404);
  errorBody(r);
  const r2 = await api(server, '/api/notifications/n_unknown', { token: token(uid('x')) });
  assert.ok(r2.status === 404 || r2.status === 405, `${r2.status}`);
});

test('POST /api/events with a non-JSON content type is not a 500', async (t) => {
  const r = await api(server, '/api/events', { method: 'POST', apiKey: 'e2e-key', body: JSON.stringify(event(uid('ct'), { users: ['x'] })), headers: { 'Content-Type': 'text/plain' } });
  assert.ok(r.status < 500, `${r.status}`);
  t.diagnostic(`text/plain body answered ${r.status}`);
});
