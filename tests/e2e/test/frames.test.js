// Client frames: malformed / oversized frames, subscription limit, SEND, RECEIPT, DISCONNECT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { StompSession, openStomp } from '../lib/stomp.js';
import { RawStomp, openRaw, encodeFrame } from '../lib/raw.js';
import { event, publish, inbox, unreadCount } from '../lib/http.js';
import { assertPersonalDelivery } from '../lib/expect.js';
import { uid, eventually, sleep } from '../lib/util.js';

let server;
let bystander;
let bystanderQueue;
let bystanderUser;
const open = [];
before(async () => {
  server = await startServer({ name: 'frames' });
  bystanderUser = uid('bystander');
  bystander = await openStomp(server, { token: token(bystanderUser), via: 'query' });
  bystanderQueue = await bystander.subscribe('/user/queue/notifications');
});
after(async () => {
  for (const s of open) await s.close();
  if (bystander) await bystander.close();
  if (server) await server.stop();
});

/** Another session is unaffected: still connected and still receives a push. */
async function assertOthersServed() {
  assert.equal(bystander.closeEvent, null, 'the bystander session must stay open');
  await assertPersonalDelivery(server, bystanderQueue, bystanderUser);
  // and a new session can still connect
  const s = await openStomp(server, { token: token(uid('fresh')), via: 'query' });
  await s.close();
}

async function expectErrorAndClose(c, what) {
  const err = await c.next('ERROR').catch((e) => {
    throw new Error(`${what}: no ERROR frame (${e.message}); close=${JSON.stringify(c.closeEvent)}`);
  });
  const closed = await c.waitClosed();
  assert.ok(closed, `${what}: the socket should be closed after the ERROR frame`);
  return err;
}

const malformed = [
  ['a header line without a colon', encodeFrame('SUBSCRIBE', { destination: '/topic/notifications', id: 's1' }).replace('id:s1', 'this-is-not-a-header')],
  ['an unknown command', 'FROBNICATE\nfoo:bar\n\n\0'],
  ['SUBSCRIBE without destination', 'SUBSCRIBE\nid:s1\n\n\0'],
  ['SUBSCRIBE without id', 'SUBSCRIBE\ndestination:/topic/notifications\n\n\0'],
  ['a lower-case command', 'subscribe\nid:s1\ndestination:/topic/notifications\n\n\0'],
  ['an invalid header escape', 'SUBSCRIBE\nid:s\\x1\ndestination:/topic/notifications\n\n\0'],
  ['garbage bytes', '\u0001\u0002\u0003 not stomp at all \0'],
];
for (const [what, raw] of malformed) {
  test(`a malformed frame (${what}) gets ERROR and close; other sessions are still served`, async () => {
    const c = await openRaw(server, { token: token(uid('m')) });
    try {
      c.sendRaw(raw);
      await expectErrorAndClose(c, what);
    } finally {
      c.close();
    }
    await assertOthersServed();
  });
}

test('an oversized frame (> 64 KiB body) gets ERROR and close; other sessions are still served', async () => {
  const c = await openRaw(server, { token: token(uid('big')) });
  try {
    c.frame('SEND', { destination: '/app/read', 'content-type': 'application/json' }, JSON.stringify({ ids: ['x'.repeat(70 * 1024)] }));
    await expectErrorAndClose(c, 'oversized body');
  } finally {
    c.close();
  }
  await assertOthersServed();
});

test('an oversized frame (> 64 KiB header) gets ERROR and close', async () => {
  const c = await openRaw(server, { token: token(uid('bighdr')) });
  try {
    c.frame('SUBSCRIBE', { destination: '/topic/notifications', id: 's1', junk: 'y'.repeat(70 * 1024) });
    await expectErrorAndClose(c, 'oversized header');
  } finally {
    c.close();
  }
  await assertOthersServed();
});

test('an oversized frame split over several WebSocket messages gets ERROR and close', async () => {
  const c = await openRaw(server, { token: token(uid('split')) });
  try {
    const frame = encodeFrame('SEND', { destination: '/app/read' }, JSON.stringify({ ids: ['z'.repeat(80 * 1024)] }));
    // paced, and stopping once the server has answered: bytes still in flight when the server
    // closes would make the kernel reset the connection and drop the ERROR frame
    for (let i = 0; i < frame.length && !c.closeEvent && !c.frames.items.some((f) => f.command === 'ERROR'); i += 16 * 1024) {
      c.sendRaw(frame.slice(i, i + 16 * 1024));
      await sleep(100);
    }
    await expectErrorAndClose(c, 'oversized frame in chunks');
  } finally {
    c.close();
  }
  await assertOthersServed();
});

test('a frame of just under 64 KiB is accepted', async () => {
  const user = uid('near');
  const c = await openRaw(server, { token: token(user) });
  try {
    c.frame('SUBSCRIBE', { destination: '/user/queue/notifications', id: 'near', receipt: 'near', 'x-pad': 'n'.repeat(60 * 1024) });
    const f = await c.frames.waitFor((fs) => fs.some((x) => x.command === 'RECEIPT' || x.command === 'ERROR'));
    const got = f.find((x) => x.command === 'RECEIPT' || x.command === 'ERROR');
    assert.equal(got.command, 'RECEIPT', `a 60 KiB SUBSCRIBE answered ${got.command}: ${got.headers.message} ${got.text}`);
    const id = uid('evt');
    await publish(server, event(id, { users: [user] }));
    await c.frames.waitFor((fs) => fs.some((x) => x.command === 'MESSAGE' && x.body && x.body.event_id === id));
  } finally {
    c.close();
  }
});

test('64 subscriptions are fine; the 65th gets ERROR and close', async () => {
  const c = await openRaw(server, { token: token(uid('many')) });
  try {
    for (let i = 1; i < 64; i++) c.frame('SUBSCRIBE', { destination: '/topic/notifications', id: `s${i}` });
    await c.subscribe('/topic/notifications', 's64'); // receipt for the 64th: all accepted
    assert.equal(c.frames.items.filter((f) => f.command === 'ERROR').length, 0, '64 subscriptions must be accepted');
    c.frame('SUBSCRIBE', { destination: '/user/queue/notifications', id: 's65' });
    await expectErrorAndClose(c, '65th subscription');
  } finally {
    c.close();
  }
  await assertOthersServed();
});

for (const dest of ['/topic/notifications', '/user/queue/notifications', '/app/other', '/app/read/extra']) {
  test(`SEND to ${dest} is refused with ERROR`, async () => {
    const user = uid('sender');
    const s = await openStomp(server, { token: token(user), via: 'query' });
    open.push(s);
    const sub = await s.subscribe('/user/queue/notifications');
    s.send(dest, { ids: [], title: 'spoof' });
    await s.errors.waitFor(1);
    const e = s.errors.items[0];
    assert.ok(e.headers.message, 'ERROR has a message header');
    await sleep(300);
    assert.equal(sub.messages.items.length, 0, 'nothing may be delivered by a client SEND');
  });
}

test('SEND /app/read with {"ids":[…]} and {"all":true} marks read (RECEIPTs; REST unread count)', async () => {
  const user = uid('reader');
  const tok = token(user);
  const s = await openStomp(server, { token: tok, via: 'query' });
  open.push(s);
  const sub = await s.subscribe('/user/queue/notifications');
  const ids = [uid('evt'), uid('evt'), uid('evt'), uid('evt')];
  await publish(server, ids.map((id) => event(id, { users: [user] })));
  await sub.messages.waitFor(4);
  await eventually(async () => (await unreadCount(server, tok)) === 4, { what: 'unread count 4 once stored' });
  const [n1, n2] = sub.messages.items.map((m) => m.body.id);
  const r = await s.withReceipt((rid) => s.send('/app/read', { ids: [n1, n2] }, { receipt: rid, 'content-type': 'application/json' }));
  assert.ok(r.headers['receipt-id']);
  await eventually(async () => (await unreadCount(server, tok)) === 2, { timeout: 3000, what: 'unread count 2 after /app/read ids' });
  const list = await inbox(server, tok);
  const byId = Object.fromEntries(list.items.map((x) => [x.id, x.read]));
  assert.equal(byId[n1], true);
  assert.equal(byId[n2], true);
  await s.withReceipt((rid) => s.send('/app/read', { all: true }, { receipt: rid, 'content-type': 'application/json' }));
  await eventually(async () => (await unreadCount(server, tok)) === 0, { timeout: 3000, what: 'unread count 0 after /app/read all' });
  assert.equal(s.errors.items.length, 0, `no ERROR expected: ${JSON.stringify(s.errors.items)}`);
});

test('RECEIPT for SUBSCRIBE, UNSUBSCRIBE and SEND; after UNSUBSCRIBE nothing arrives there', async () => {
  const user = uid('rc');
  const s = await openStomp(server, { token: token(user), via: 'query' });
  open.push(s);
  const sub = await s.subscribe('/user/queue/notifications');
  assert.deepEqual(s.receiptsMissing, [], 'RECEIPT for SUBSCRIBE');
  const other = await s.subscribe('/topic/notifications');
  await s.withReceipt((rid) => other.unsubscribe({ receipt: rid }));
  await s.withReceipt((rid) => s.send('/app/read', { all: true }, { receipt: rid }));
  const id = uid('evt');
  await publish(server, event(id, { broadcast: true }));
  await sub.messages.waitFor((ms) => ms.some((m) => m.body.event_id === id));
  await sleep(300);
  assert.equal(other.messages.items.filter((m) => m.body.event_id === id).length, 0, 'unsubscribed topic got a message');
});

test('DISCONNECT with receipt gets RECEIPT, then the server closes', async () => {
  const c = await openRaw(server, { token: token(uid('bye')) });
  try {
    c.frame('DISCONNECT', { receipt: 'bye-1' });
    const r = await c.next('RECEIPT');
    assert.equal(r.headers['receipt-id'], 'bye-1');
    assert.ok(await c.waitClosed(), 'server should close the socket after the DISCONNECT receipt');
  } finally {
    c.close();
  }
  // stompjs' own deactivate() does the same and resolves
  const s = await openStomp(server, { token: token(uid('bye2')), via: 'query' });
  const t0 = Date.now();
  await s.client.deactivate();
  assert.ok(Date.now() - t0 < 5000);
});

test('a client flooding frames does not stall other sessions', { timeout: 60_000 }, async () => {
  const c = await openRaw(server, { token: token(uid('flood')) });
  try {
    const t0 = Date.now();
    for (let i = 0; i < 3000; i++) {
      c.sendRaw(`\n${encodeFrame('SUBSCRIBE', { destination: '/topic/notifications', id: `f${i}`, receipt: `rs${i}` })}`);
      c.sendRaw(encodeFrame('UNSUBSCRIBE', { id: `f${i}`, receipt: `ru${i}` }));
    }
    const probe = Date.now();
    await assertPersonalDelivery(server, bystanderQueue, bystanderUser);
    const latency = Date.now() - probe;
    assert.ok(latency < 3000, `a push to another session took ${latency} ms during the flood`);
    // the flooder either got all its receipts or was closed (e.g. as a slow consumer); both are fine
    await c.frames.waitFor((fs) => fs.some((f) => f.headers['receipt-id'] === 'ru2999') || c.closeEvent, 20_000).catch(() => {});
    assert.ok(Date.now() - t0 < 40_000);
  } finally {
    c.close();
  }
  await assertOthersServed();
});

test('the server still serves after all of the above', async () => {
  await assertOthersServed();
  assert.equal(server.exited(), null, 'server process must still run');
});
