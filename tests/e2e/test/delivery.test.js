// Pushed notifications: MESSAGE frame format and personal / group / broadcast routing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { StompSession, openStomp } from '../lib/stomp.js';
import { event, publish, waitListed } from '../lib/http.js';
import { assertErrorThenClose } from '../lib/expect.js';
import { uid, sleep } from '../lib/util.js';

let server;
const open = [];
before(async () => {
  server = await startServer({ name: 'delivery' });
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

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

test('a pushed notification: MESSAGE headers and the notification JSON', async () => {
  const user = uid('alice');
  const s = await session(user);
  const sub = await s.subscribe('/user/queue/notifications');
  assert.deepEqual(s.receiptsMissing, [], 'SUBSCRIBE receipt');
  const id = uid('evt');
  const ev = event(id, { users: [user] }, {
    type: 'purchase.approved',
    title: 'Purchase approved',
    message: 'Your request #42 was approved',
    link: '/purchases/42',
    data: { purchaseId: 42, nested: { ok: true, list: [1, 'two'] } },
    priority: 'high',
    occurred_at: '2026-11-25T10:00:00Z',
  });
  await publish(server, ev);
  const [m] = await sub.messages.waitFor(1);
  assert.equal(m.headers.destination, '/user/queue/notifications', 'destination header');
  assert.equal(m.headers.subscription, sub.id, 'subscription header');
  assert.ok(m.headers['content-type'] && m.headers['content-type'].startsWith('application/json'), `content-type header: ${m.headers['content-type']}`);
  assert.ok(m.body, `body must be JSON: ${m.text}`);
  const n = m.body;
  assert.equal(m.headers['message-id'], n.id, 'message-id = notification id');
  assert.equal(typeof n.id, 'string');
  assert.ok(n.id.length > 0);
  assert.equal(n.event_id, id);
  assert.equal(n.type, 'purchase.approved');
  assert.deepEqual(n.audience, { kind: 'user', id: user });
  assert.equal(n.title, 'Purchase approved');
  assert.equal(n.message, 'Your request #42 was approved');
  assert.equal(n.link, '/purchases/42');
  assert.deepEqual(n.data, { purchaseId: 42, nested: { ok: true, list: [1, 'two'] } });
  assert.equal(n.priority, 'high');
  assert.match(n.created_at, RFC3339, 'created_at is RFC 3339');
  assert.ok(!Number.isNaN(Date.parse(n.created_at)));
  assert.equal(n.read, false);
  assert.equal(typeof n.cursor, 'string');
  assert.ok(n.cursor.length > 0, 'cursor');
  for (const k of ['id', 'event_id', 'type', 'audience', 'title', 'message', 'link', 'data', 'priority', 'created_at', 'read', 'cursor']) {
    assert.ok(k in n, `field ${k} present`);
  }
  // the same notification is listed over REST with the same id
  const list = await waitListed(server, token(user), [id]);
  const listed = list.items.find((x) => x.event_id === id);
  assert.ok(listed, 'listed over REST');
  assert.equal(listed.id, n.id);
  assert.deepEqual(listed.audience, n.audience);
});

test('priority defaults to normal; group and broadcast audiences', async () => {
  const user = uid('u');
  const group = uid('grp');
  const s = await session(user, [group]);
  const sub = await s.subscribe('/user/queue/notifications');
  const e1 = uid('evt');
  const e2 = uid('evt');
  const { priority, ...noPriority } = event(e1, { groups: [group] });
  await publish(server, noPriority);
  await publish(server, event(e2, { broadcast: true }));
  await sub.messages.waitFor((ms) => [e1, e2].every((e) => ms.some((m) => m.body && m.body.event_id === e)));
  const g = sub.messages.items.find((m) => m.body.event_id === e1).body;
  assert.equal(g.priority, 'normal');
  assert.deepEqual(g.audience, { kind: 'group', id: group });
  const b = sub.messages.items.find((m) => m.body.event_id === e2).body;
  assert.equal(b.audience.kind, 'broadcast');
  assert.ok(!('id' in b.audience) || b.audience.id === undefined, `broadcast audience has no id: ${JSON.stringify(b.audience)}`);
});

test('routing: personal queue, broadcast topic and group topic each get exactly their share', async () => {
  const alice = uid('alice');
  const bob = uid('bob');
  const admins = uid('admins');
  const other = uid('other');
  const a = await session(alice, [admins]);
  const b = await session(bob, []);
  const aQueue = await a.subscribe('/user/queue/notifications');
  const aTopic = await a.subscribe('/topic/notifications');
  const aGroup = await a.subscribe(`/topic/groups.${admins}`);
  const bQueue = await b.subscribe('/user/queue/notifications');
  const bTopic = await b.subscribe('/topic/notifications');
  assert.deepEqual([...a.receiptsMissing, ...b.receiptsMissing], []);

  const prefix = uid('route');
  const ev = {
    toAlice: `${prefix}-alice`,
    toAdmins: `${prefix}-admins`,
    toAll: `${prefix}-all`,
    toBob: `${prefix}-bob`,
    toOther: `${prefix}-other`,
    toAliceAndAdmins: `${prefix}-both`,
  };
  await publish(server, [
    event(ev.toAlice, { users: [alice] }),
    event(ev.toAdmins, { groups: [admins] }),
    event(ev.toAll, { broadcast: true }),
    event(ev.toBob, { users: [bob] }),
    event(ev.toOther, { groups: [other] }),
  ]);
  // user and group at once: one notification per audience
  await publish(server, event(ev.toAliceAndAdmins, { users: [alice], groups: [admins] }));
  const mine = (sub) => sub.messages.items.filter((m) => m.body && m.body.event_id.startsWith(prefix));
  const has = (sub, ids) => () => ids.every((id) => mine(sub).some((m) => m.body.event_id === id));
  await aQueue.messages.waitFor(has(aQueue, [ev.toAlice, ev.toAdmins, ev.toAll, ev.toAliceAndAdmins]), undefined, 'alice queue');
  await bQueue.messages.waitFor(has(bQueue, [ev.toAll, ev.toBob]), undefined, 'bob queue');
  await aTopic.messages.waitFor(has(aTopic, [ev.toAll]), undefined, 'alice broadcast topic');
  await bTopic.messages.waitFor(has(bTopic, [ev.toAll]), undefined, 'bob broadcast topic');
  await aGroup.messages.waitFor(has(aGroup, [ev.toAdmins, ev.toAliceAndAdmins]), undefined, 'alice group topic');
  await sleep(500); // let anything misrouted arrive
  const ids = (sub) => mine(sub).map((m) => `${m.body.event_id}/${m.body.audience.kind}`).sort();
  // an event for alice and her group may reach her queue once (user) or twice (user + group); the contract does not say
  const both = ids(aQueue).filter((x) => x.startsWith(ev.toAliceAndAdmins));
  assert.ok(both.includes(`${ev.toAliceAndAdmins}/user`), `user+group event on alice's queue: ${both}`);
  assert.deepEqual(ids(aQueue).filter((x) => !x.startsWith(ev.toAliceAndAdmins)), [`${ev.toAdmins}/group`, `${ev.toAlice}/user`, `${ev.toAll}/broadcast`].sort(), 'alice /user/queue/notifications');
  assert.deepEqual(ids(aTopic), [`${ev.toAll}/broadcast`], 'alice /topic/notifications: broadcasts only');
  assert.deepEqual(ids(aGroup), [`${ev.toAdmins}/group`, `${ev.toAliceAndAdmins}/group`].sort(), `alice /topic/groups.${admins}: that group only`);
  assert.deepEqual(ids(bQueue), [`${ev.toAll}/broadcast`, `${ev.toBob}/user`].sort(), 'bob /user/queue/notifications');
  assert.deepEqual(ids(bTopic), [`${ev.toAll}/broadcast`], 'bob /topic/notifications');
  for (const sub of [aQueue, aTopic, aGroup, bQueue, bTopic]) {
    for (const m of mine(sub)) {
      assert.equal(m.headers.destination, sub.destination, `destination header on ${sub.destination}`);
      assert.equal(m.headers.subscription, sub.id);
      assert.equal(m.headers['message-id'], m.body.id);
    }
  }
  // the same (event, audience) has the same id on every destination
  const groupOnQueue = mine(aQueue).find((m) => m.body.event_id === ev.toAdmins);
  const groupOnTopic = mine(aGroup).find((m) => m.body.event_id === ev.toAdmins);
  assert.equal(groupOnQueue.body.id, groupOnTopic.body.id);
});

test('two sessions of the same user both receive a personal push', async () => {
  const user = uid('multi');
  const s1 = await session(user);
  const s2 = await session(user);
  const q1 = await s1.subscribe('/user/queue/notifications');
  const q2 = await s2.subscribe('/user/queue/notifications');
  const id = uid('evt');
  await publish(server, event(id, { users: [user] }));
  await q1.messages.waitFor(1);
  await q2.messages.waitFor(1);
  assert.equal(q1.messages.items[0].body.id, q2.messages.items[0].body.id);
});

const refusedDestinations = [
  ['a non-member subscribing to a group topic', (g) => `/topic/groups.${g}`],
  ["another user's queue", () => '/user/bob/queue/notifications'],
  ['an unknown topic', () => '/topic/secret'],
  ['an unknown user destination', () => '/user/queue/other'],
  ['a queue without the /user prefix', () => '/queue/notifications'],
];
for (const [what, dest] of refusedDestinations) {
  test(`SUBSCRIBE to ${what} gets an ERROR naming the destination, then close`, async () => {
    const user = uid('eve');
    const group = uid('private');
    const destination = dest(group);
    const s = new StompSession(server, { token: token(user, [uid('mine')]), via: 'query' });
    await s.connect();
    try {
      const leaked = [];
      s.client.subscribe(destination, (m) => leaked.push(m.body), { id: 'x1' });
      await s.errors.waitFor(1);
      const close = await s.waitClosed();
      assertErrorThenClose({ error: s.errors.items[0], close }, { mention: destination, what });
      assert.deepEqual(leaked, [], 'no MESSAGE may arrive on a refused destination');
    } finally {
      await s.close();
    }
  });
}

test('a member may subscribe to its group topic while another member receives as well', async () => {
  const group = uid('team');
  const m1 = await session(uid('m1'), [group]);
  const m2 = await session(uid('m2'), ['x', group]);
  const t1 = await m1.subscribe(`/topic/groups.${group}`);
  const t2 = await m2.subscribe(`/topic/groups.${group}`);
  const id = uid('evt');
  await publish(server, event(id, { groups: [group] }));
  await t1.messages.waitFor(1);
  await t2.messages.waitFor(1);
  assert.deepEqual(t1.messages.items[0].body.audience, { kind: 'group', id: group });
});
