// REST API: inbox paging, catch-up, unread counts, read state, validation errors, auth, limits, idempotency.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, PUBLISH_KEY } from '../lib/server.js';
import { token, forgedToken, expiredToken } from '../lib/jwt.js';
import { api, event, publish, inbox, unreadCount, errorBody, waitListed } from '../lib/http.js';
import { uid, sleep, eventually } from '../lib/util.js';

let server;
before(async () => {
  server = await startServer({ name: 'rest' });
});
after(async () => {
  if (server) await server.stop();
});

/** Publish events for one user one by one and wait until all are listed. */
async function seed(user, n, prefix = uid('ev')) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i}`;
    ids.push(id);
    await publish(server, event(id, { users: [user] }));
  }
  await eventually(async () => (await inbox(server, token(user), 'limit=200')).items.filter((x) => x.event_id.startsWith(prefix)).length === n, { what: `${n} notifications listed` });
  return ids;
}

test('POST /api/events answers 202 {"accepted":n} for one event and for an array', async () => {
  const user = uid('pub');
  const one = await publish(server, event(uid('e'), { users: [user] }));
  assert.deepEqual(one.json, { accepted: 1 });
  const many = await publish(server, [event(uid('e'), { users: [user] }), event(uid('e'), { users: [user] }), event(uid('e'), { broadcast: true })]);
  assert.deepEqual(many.json, { accepted: 3 });
});

test('list: newest first, shape, paging with before and next_cursor', async () => {
  const user = uid('lister');
  const tok = token(user);
  const ids = await seed(user, 5);
  const page1 = await inbox(server, tok, 'limit=2');
  assert.ok(Array.isArray(page1.items));
  assert.ok('next_cursor' in page1, 'next_cursor present');
  assert.equal(typeof page1.unread_count, 'number');
  const mine = (p) => p.items.map((x) => x.event_id).filter((e) => ids.includes(e));
  assert.deepEqual(mine(page1), [ids[4], ids[3]]);
  assert.equal(page1.items.length, 2);
  assert.equal(typeof page1.next_cursor, 'string');
  const page2 = await inbox(server, tok, `limit=2&before=${encodeURIComponent(page1.next_cursor)}`);
  assert.deepEqual(mine(page2), [ids[2], ids[1]]);
  const page3 = await inbox(server, tok, `limit=2&before=${encodeURIComponent(page2.next_cursor)}`);
  // this user only has broadcasts besides its own; filter to ours
  assert.ok(mine(page3).includes(ids[0]));
  // default limit is 20 and the max is 200
  const all = await inbox(server, tok);
  assert.ok(all.items.length <= 20);
  const n = all.items[0];
  for (const k of ['id', 'event_id', 'type', 'audience', 'title', 'message', 'link', 'data', 'priority', 'created_at', 'read', 'cursor']) assert.ok(k in n, `field ${k}`);
  assert.equal(n.read, false);
});

test('paging ends with next_cursor null', async () => {
  // a user that sees no broadcasts is impossible, so page until the end
  const user = uid('ender');
  const tok = token(user);
  await seed(user, 3);
  let cursor = null;
  let pages = 0;
  let items = 0;
  do {
    const p = await inbox(server, tok, `limit=50${cursor ? `&before=${encodeURIComponent(cursor)}` : ''}`);
    items += p.items.length;
    assert.ok(p.next_cursor === null || typeof p.next_cursor === 'string');
    if (p.items.length < 50) assert.equal(p.next_cursor, null, 'a short page must end with next_cursor null');
    cursor = p.next_cursor;
    pages += 1;
  } while (cursor && pages < 100);
  assert.equal(cursor, null);
  assert.ok(items >= 3);
});

test('catch-up with since=<cursor>: oldest first, limit, next_cursor continues', async () => {
  const user = uid('catch');
  const tok = token(user);
  const ids = await seed(user, 5);
  const list = await inbox(server, tok, 'limit=200');
  const n1 = list.items.find((x) => x.event_id === ids[1]);
  const p1 = await inbox(server, tok, `since=${encodeURIComponent(n1.cursor)}&limit=2`);
  const mine = (p) => p.items.map((x) => x.event_id).filter((e) => ids.includes(e));
  assert.deepEqual(mine(p1), [ids[2], ids[3]]);
  assert.equal(typeof p1.next_cursor, 'string');
  const p2 = await inbox(server, tok, `since=${encodeURIComponent(p1.next_cursor)}&limit=2`);
  assert.deepEqual(mine(p2), [ids[4]]);
});

test('catch-up with since=<RFC 3339 time>: oldest first, only after that time', async () => {
  const user = uid('time');
  const tok = token(user);
  const before1 = await seed(user, 2, uid('old'));
  await sleep(1100);
  const point = new Date().toISOString();
  await sleep(1100);
  const after1 = await seed(user, 3, uid('new'));
  const p = await inbox(server, tok, `since=${encodeURIComponent(point)}&limit=200`);
  const got = p.items.map((x) => x.event_id).filter((e) => before1.includes(e) || after1.includes(e));
  assert.deepEqual(got, after1);
  // a time with an offset is RFC 3339 as well
  const offset = point.replace('Z', '+00:00');
  const q = await inbox(server, tok, `since=${encodeURIComponent(offset)}&limit=200`);
  assert.deepEqual(q.items.map((x) => x.event_id).filter((e) => before1.includes(e) || after1.includes(e)), after1);
});

test('unread_only, unread counts with group and broadcast, mark one read (idempotent), read-all', async () => {
  const user = uid('counter');
  const peer = uid('peer');
  const group = uid('g');
  const tok = token(user, [group]);
  const peerTok = token(peer, [group]);
  const c0 = await unreadCount(server, tok);
  const p0 = await unreadCount(server, peerTok);
  const prefix = uid('uc');
  await publish(server, event(`${prefix}-user`, { users: [user] }));
  await publish(server, event(`${prefix}-group`, { groups: [group] }));
  await publish(server, event(`${prefix}-all`, { broadcast: true }));
  await eventually(async () => (await unreadCount(server, tok)) === c0 + 3, { what: 'unread count +3 (user, group, broadcast)' });
  assert.equal(await unreadCount(server, peerTok), p0 + 2, 'peer: group + broadcast');
  const list = await inbox(server, tok, 'limit=200');
  assert.equal(list.unread_count, c0 + 3, 'unread_count in the list answer');
  const byEvent = Object.fromEntries(list.items.filter((x) => x.event_id.startsWith(prefix)).map((x) => [x.event_id, x]));
  const groupN = byEvent[`${prefix}-group`];
  const userN = byEvent[`${prefix}-user`];
  assert.ok(groupN && userN, 'listed');

  // mark one read: 204, idempotent, only this user's state
  let r = await api(server, `/api/notifications/${encodeURIComponent(groupN.id)}/read`, { method: 'POST', token: tok });
  assert.equal(r.status, 204, `mark read: ${r.status} ${r.text}`);
  r = await api(server, `/api/notifications/${encodeURIComponent(groupN.id)}/read`, { method: 'POST', token: tok });
  assert.equal(r.status, 204, 'mark read again (idempotent)');
  assert.equal(await unreadCount(server, tok), c0 + 2);
  assert.equal(await unreadCount(server, peerTok), p0 + 2, "a group member's read state is their own");
  const peerList = await inbox(server, peerTok, 'limit=200');
  assert.equal(peerList.items.find((x) => x.id === groupN.id).read, false);

  // unread_only leaves it out
  const unread = await inbox(server, tok, 'unread_only=true&limit=200');
  assert.ok(!unread.items.some((x) => x.id === groupN.id), 'read notification not in unread_only');
  assert.ok(unread.items.some((x) => x.id === userN.id));
  assert.ok(unread.items.every((x) => x.read === false));
  const listed = await inbox(server, tok, 'limit=200');
  assert.equal(listed.items.find((x) => x.id === groupN.id).read, true);

  // 404: another user's notification, a group the user is not in, an unknown id
  const stranger = token(uid('stranger'), []);
  r = await api(server, `/api/notifications/${encodeURIComponent(userN.id)}/read`, { method: 'POST', token: stranger });
  assert.equal(r.status, 404, "someone else's personal notification");
  errorBody(r);
  r = await api(server, `/api/notifications/${encodeURIComponent(groupN.id)}/read`, { method: 'POST', token: stranger });
  assert.equal(r.status, 404, 'a group notification for a non-member');
  r = await api(server, '/api/notifications/n_does_not_exist/read', { method: 'POST', token: tok });
  assert.equal(r.status, 404, 'unknown id');
  assert.equal(await unreadCount(server, tok), c0 + 2, 'refused marks change nothing');

  // read-all
  r = await api(server, '/api/notifications/read-all', { method: 'POST', token: tok });
  assert.equal(r.status, 204);
  assert.equal(await unreadCount(server, tok), 0);
  const after = await inbox(server, tok, 'limit=200');
  assert.ok(after.items.every((x) => x.read === true));
  assert.equal(after.unread_count, 0);
  assert.equal(await unreadCount(server, peerTok), p0 + 2, "read-all touches only the caller's state");
});

test('the same event id published twice yields one notification with the same id', async () => {
  const user = uid('dup');
  const tok = token(user);
  const id = uid('dupevt');
  await publish(server, event(id, { users: [user] }));
  await publish(server, event(id, { users: [user] }));
  await publish(server, [event(id, { users: [user] }), event(id, { users: [user] })]);
  await waitListed(server, tok, [id]);
  await sleep(500);
  const list = await inbox(server, tok, 'limit=200');
  const same = list.items.filter((x) => x.event_id === id);
  assert.equal(same.length, 1, `got ${same.length} notifications for one event id`);
  assert.equal(await unreadCount(server, tok) >= 1, true);
});

const badQueries = [
  ['limit=0', 'limit'],
  ['limit=201', 'limit'],
  ['limit=abc', 'limit'],
  ['limit=-1', 'limit'],
  ['before=not-a-cursor', 'before'],
  ['since=not-a-cursor-nor-a-time', 'since'],
  ['since=2026-13-45T99:00:00Z', 'since'],
  ['unread_only=maybe', 'unread_only'],
];
for (const [q, field] of badQueries) {
  test(`GET /api/notifications?${q} is a 400 naming ${field}`, async () => {
    const r = await api(server, `/api/notifications?${q}`, { token: token(uid('q')) });
    assert.equal(r.status, 400, `${r.status} ${r.text}`);
    const e = errorBody(r);
    assert.equal(e.field, field);
  });
}

const good = () => event(uid('valid'), { users: ['someone'] });
const badEvents = [
  ['missing id', () => { const e = good(); delete e.id; return e; }, 'id'],
  ['empty id', () => ({ ...good(), id: '' }), 'id'],
  ['id over 128 chars', () => ({ ...good(), id: 'i'.repeat(129) }), 'id'],
  ['id not a string', () => ({ ...good(), id: 42 }), 'id'],
  ['missing type', () => { const e = good(); delete e.type; return e; }, 'type'],
  ['unknown priority', () => ({ ...good(), priority: 'urgent' }), 'priority'],
  ['title of the wrong type', () => ({ ...good(), title: 5 }), 'title'],
  ['missing title (no rule)', () => { const e = good(); delete e.title; return e; }, 'title'],
  ['missing message (no rule)', () => { const e = good(); delete e.message; return e; }, 'message'],
  ['data not an object', () => ({ ...good(), data: [1, 2] }), 'data'],
  ['link of the wrong type', () => ({ ...good(), link: { href: '/x' } }), 'link'],
  ['occurred_at not RFC 3339', () => ({ ...good(), occurred_at: 'yesterday' }), 'occurred_at'],
  ['recipients.users not an array', () => ({ ...good(), recipients: { users: 'alice' } }), 'recipients.users'],
  ['recipients.broadcast not a boolean', () => ({ ...good(), recipients: { broadcast: 'yes' } }), 'recipients.broadcast'],
  ['no recipients at all', () => { const e = good(); delete e.recipients; return e; }, 'recipients'],
  ['empty recipients', () => ({ ...good(), recipients: { users: [], groups: [], broadcast: false } }), 'recipients'],
];
for (const [what, make, field] of badEvents) {
  test(`POST /api/events with ${what} is a 400 naming ${field}`, async () => {
    const r = await publish(server, make(), { expect: null });
    assert.equal(r.status, 400, `${r.status} ${r.text}`);
    const e = errorBody(r);
    assert.ok(e.field === field || (e.field && e.field.startsWith(`${field}`)) || (field.includes('.') && e.field === field.split('.')[0]), `field ${JSON.stringify(e.field)}, expected ${field}`);
  });
}

test('POST /api/events with invalid JSON is a 400 with the error shape', async () => {
  const r = await api(server, '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: '{"id": "x", ' });
  assert.equal(r.status, 400, `${r.status} ${r.text}`);
  errorBody(r);
});

test('POST /api/events with a JSON scalar body is a 400', async () => {
  const r = await api(server, '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: '42' });
  assert.equal(r.status, 400, `${r.status} ${r.text}`);
  errorBody(r);
});

test('POST /api/events with an event over 64 KiB is rejected (400 or 413), not stored', async () => {
  const user = uid('huge');
  const id = uid('huge');
  const r = await publish(server, event(id, { users: [user] }, { data: { blob: 'h'.repeat(70 * 1024) } }), { expect: null });
  assert.ok(r.status === 400 || r.status === 413, `${r.status} ${r.text.slice(0, 200)}`);
  errorBody(r);
  const list = await inbox(server, token(user), 'limit=200');
  assert.ok(!list.items.some((x) => x.event_id === id));
});

test('POST /api/events with a body over 1 MiB is a 413', async () => {
  const events = Array.from({ length: 24 }, () => event(uid('big'), { users: ['x'] }, { data: { blob: 'b'.repeat(50 * 1024) } }));
  const r = await publish(server, events, { expect: null });
  assert.equal(r.status, 413, `${r.status} ${r.text.slice(0, 200)}`);
  errorBody(r);
});

test('a bad event in an array is a 400 and publishes nothing of that array', async (t) => {
  const user = uid('atomic');
  const okId = uid('ok');
  const r = await publish(server, [event(okId, { users: [user] }), { ...event(uid('bad'), { users: [user] }), priority: 'urgent' }], { expect: null });
  assert.equal(r.status, 400, `${r.status} ${r.text}`);
  const e = errorBody(r);
  assert.ok(e.field && e.field.includes('priority'), `field ${e.field}`);
  await sleep(300);
  const list = await inbox(server, token(user), 'limit=200');
  if (list.items.some((x) => x.event_id === okId)) t.diagnostic('the valid event of a rejected array was published');
});

test('401 without or with a bad token, and without or with a bad API key', async () => {
  const cases = [
    ['GET /api/notifications without token', () => api(server, '/api/notifications')],
    ['GET /api/notifications with a forged token', () => api(server, '/api/notifications', { token: forgedToken('x') })],
    ['GET /api/notifications with an expired token', () => api(server, '/api/notifications', { token: expiredToken('x') })],
    ['GET /api/notifications with a garbage token', () => api(server, '/api/notifications', { token: 'not.a.jwt' })],
    ['GET /api/notifications with a Basic header', () => api(server, '/api/notifications', { headers: { Authorization: 'Basic YTpi' } })],
    ['GET unread-count without token', () => api(server, '/api/notifications/unread-count')],
    ['POST read-all without token', () => api(server, '/api/notifications/read-all', { method: 'POST' })],
    ['POST /{id}/read without token', () => api(server, '/api/notifications/n_x/read', { method: 'POST' })],
    ['POST /api/events without API key', () => api(server, '/api/events', { method: 'POST', body: event(uid('k'), { users: ['x'] }) })],
    ['POST /api/events with a wrong API key', () => api(server, '/api/events', { method: 'POST', apiKey: 'wrong', body: event(uid('k'), { users: ['x'] }) })],
    ['POST /api/events with a user token instead of the key', () => api(server, '/api/events', { method: 'POST', token: token('x'), body: event(uid('k'), { users: ['x'] }) })],
  ];
  const failures = [];
  for (const [what, call] of cases) {
    const r = await call();
    if (r.status !== 401) failures.push(`${what}: ${r.status} ${r.text.slice(0, 100)}`);
    else {
      try {
        errorBody(r);
      } catch (e) {
        failures.push(`${what}: ${e.message}`);
      }
    }
  }
  assert.deepEqual(failures, []);
});

test('no 500 for odd input', async () => {
  const tok = token(uid('odd'));
  const calls = [
    api(server, '/api/notifications?limit=99999999999999999999999', { token: tok }),
    api(server, `/api/notifications?before=${'%ff'.repeat(10)}`, { token: tok }),
    api(server, `/api/notifications/${'a'.repeat(2000)}/read`, { method: 'POST', token: tok }),
    api(server, '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: '[]' }),
    api(server, '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: 'null' }),
    api(server, '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: '{"id":"x","type":"t","recipients":{"users":["a"]},"title":"t","message":"m","data":"str"}' }),
    api(server, '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: '\u0000\u0001', headers: { 'Content-Type': 'application/json' } }),
  ];
  const res = await Promise.all(calls);
  for (const r of res) assert.ok(r.status < 500, `got ${r.status} ${r.text.slice(0, 200)}`);
});
