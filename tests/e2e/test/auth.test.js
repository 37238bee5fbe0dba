// Connecting: token locations, sub-protocols, heart-beats, refused tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token, forgedToken, expiredToken, signJwt } from '../lib/jwt.js';
import { StompSession, openStomp, parseHeartBeat, negotiate } from '../lib/stomp.js';
import { RawStomp, openRaw } from '../lib/raw.js';
import { assertErrorThenClose, assertPersonalDelivery } from '../lib/expect.js';
import { uid, sleep } from '../lib/util.js';
import { event, publish } from '../lib/http.js';

let server;
const open = [];
before(async () => {
  server = await startServer({ name: 'auth' });
});
after(async () => {
  for (const s of open) await s.close();
  if (server) await server.stop();
});

async function connectAndProve(via) {
  const user = uid('alice');
  const s = await openStomp(server, { token: token(user, []), via });
  open.push(s);
  assert.equal(s.connectedFrame.headers.version, '1.2', 'CONNECTED version');
  const sub = await s.subscribe('/user/queue/notifications');
  const m = await assertPersonalDelivery(server, sub, user);
  assert.equal(m.body.audience.id, user);
  return s;
}

test('token in the handshake query ?access_token= connects (stompjs, no host header)', async () => {
  await connectAndProve('query');
});

test('token in the handshake header Authorization: Bearer connects', async () => {
  await connectAndProve('header');
});

test('token in the CONNECT frame header Authorization: Bearer connects', async () => {
  await connectAndProve('connect');
});

test('CONNECT without host header and STOMP frame are accepted (raw)', async () => {
  const user = uid('u');
  const c = await openRaw(server, { token: token(user), via: 'connect' });
  try {
    // no `host` header was sent by openRaw
    assert.equal(c.frames.items.at(-1).command, 'CONNECTED');
  } finally {
    c.close();
  }
  const c2 = new RawStomp(server, { token: token(user), via: 'query' });
  try {
    await c2.opened;
    c2.frame('STOMP', { 'accept-version': '1.2', 'heart-beat': '0,0' });
    const f = await c2.frames.waitFor(1);
    assert.equal(f[0].command, 'CONNECTED', `STOMP command answered ${f[0].command} ${f[0].headers.message || ''}`);
  } finally {
    c2.close();
  }
});

test('sub-protocol negotiation picks v12.stomp for stompjs, and v11/v10 when only they are offered', async () => {
  const user = uid('u');
  const s = await openStomp(server, { token: token(user), via: 'query' });
  open.push(s);
  assert.equal(s.ws.protocol, 'v12.stomp');
  for (const p of ['v11.stomp', 'v10.stomp']) {
    const c = new RawStomp(server, { token: token(user), protocols: [p] });
    try {
      await c.opened;
      assert.equal(c.protocol, p, `offered only ${p}`);
      const version = p === 'v11.stomp' ? '1.1' : '1.0';
      const f = await c.connect({ headers: { 'accept-version': version } });
      assert.equal(f.command, 'CONNECTED');
      if (version !== '1.0') assert.equal(f.headers.version, version);
    } finally {
      c.close();
    }
  }
});

test('heart-beat: CONNECTED combines the server offer 10000,10000 with the client offer', async () => {
  const user = uid('u');
  // stompjs default offer 10000,10000
  const s = await openStomp(server, { token: token(user), via: 'query' });
  open.push(s);
  const hb = s.connectedFrame.headers['heart-beat'];
  assert.ok(hb, 'CONNECTED must carry heart-beat');
  assert.deepEqual(negotiate([10000, 10000], parseHeartBeat(hb)), { clientToServer: 10000, serverToClient: 10000 }, `CONNECTED heart-beat:${hb}`);
  const cases = [
    ['0,0', { clientToServer: 0, serverToClient: 0 }],
    ['5000,20000', { clientToServer: 10000, serverToClient: 20000 }],
    ['20000,5000', { clientToServer: 20000, serverToClient: 10000 }],
    ['0,3000', { clientToServer: 0, serverToClient: 10000 }],
  ];
  for (const [offer, expected] of cases) {
    const c = await openRaw(server, { token: token(user) }, { heartBeat: offer });
    try {
      const f = c.frames.items.find((x) => x.command === 'CONNECTED');
      assert.ok(f.headers['heart-beat'] !== undefined, `CONNECTED for offer ${offer} must carry heart-beat`);
      const got = negotiate(parseHeartBeat(offer), parseHeartBeat(f.headers['heart-beat']));
      assert.deepEqual(got, expected, `client offer ${offer}, server answered heart-beat:${f.headers['heart-beat']}`);
    } finally {
      c.close();
    }
  }
});

test('heart-beats: the server sends them, and drops a peer silent for more than twice the interval', { timeout: 60_000 }, async () => {
  const user = uid('u');
  // wants server heart-beats (server->client = max(10000, 1000) = 10 s)
  const listener = await openRaw(server, { token: token(user) }, { heartBeat: '0,1000' });
  // promises client heart-beats but stays silent (client->server = 10 s): must be dropped after > 20 s
  const silent = await openRaw(server, { token: token(user) }, { heartBeat: '1000,0' });
  // promises client heart-beats and keeps them: must stay open
  const talker = await openRaw(server, { token: token(user) }, { heartBeat: '1000,0' });
  const t0 = Date.now();
  const ticker = setInterval(() => talker.ws.readyState === 1 && talker.sendRaw('\n'), 4000);
  try {
    const closedAt = silent.closed.then(() => Date.now() - t0);
    await sleep(18_000);
    assert.ok(listener.heartbeats.length >= 1, 'no server heart-beat (EOL) within 18 s although 10 s was agreed');
    assert.equal(silent.closeEvent, null, `silent peer dropped after ${Date.now() - t0} ms, before twice the interval (20 s)`);
    const ms = await Promise.race([closedAt, sleep(17_000).then(() => null)]);
    assert.ok(ms !== null, 'a peer silent for 35 s (agreed interval 10 s) was not dropped');
    assert.ok(ms >= 19_000, `silent peer dropped after ${ms} ms, earlier than twice the interval`);
    assert.equal(talker.closeEvent, null, 'a peer that keeps sending heart-beats must not be dropped');
    assert.equal(listener.closeEvent, null, 'a peer that promised no heart-beats (0,x) must not be dropped');
  } finally {
    clearInterval(ticker);
    listener.close();
    silent.close();
    talker.close();
  }
});

const refusals = [
  ['a forged token (bad signature) in the CONNECT header', () => ({ token: forgedToken(uid('mallory')), via: 'connect' })],
  ['a forged token (bad signature) in the query', () => ({ token: forgedToken(uid('mallory')), via: 'query' })],
  ['a forged token (bad signature) in the handshake header', () => ({ token: forgedToken(uid('mallory')), via: 'header' })],
  ['an expired token in the query', () => ({ token: expiredToken(uid('late')), via: 'query' })],
  ['an expired token in the CONNECT header', () => ({ token: expiredToken(uid('late')), via: 'connect' })],
  ['a token without exp', () => ({ token: signJwt({ sub: uid('noexp'), groups: [] }), via: 'connect' })],
  ['an alg:none token', () => ({ token: `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', groups: [], exp: 4102444800 })).toString('base64url')}.`, via: 'connect' })],
  ['no token at all', () => ({ via: 'none' })],
];

for (const [what, opts] of refusals) {
  test(`${what} is refused with an ERROR frame and a close`, async () => {
    const s = new StompSession(server, opts());
    const res = await s.attempt();
    try {
      assert.equal(res.connected, false, 'must not get CONNECTED');
      assert.ok(!s.handshakeStatus, `handshake was rejected with HTTP ${s.handshakeStatus} instead of an ERROR frame and a close`);
      assertErrorThenClose(res, { what });
    } finally {
      await s.close();
    }
  });
}

test('a token that expires during the session ends the session with an ERROR (exp enforced)', { timeout: 20_000 }, async () => {
  const user = uid('short');
  const exp = Math.floor(Date.now() / 1000) + 2;
  const c = await openRaw(server, { token: token(user, [], { exp }) });
  try {
    await c.subscribe('/user/queue/notifications', 's');
    await sleep(3500);
    // traffic for the session after expiry must not be delivered
    await publish(server, event(uid('late'), { users: [user] }));
    const closed = await c.waitClosed(8000);
    assert.ok(closed, 'session with an expired token still open');
    assert.ok(c.frames.items.some((f) => f.command === 'ERROR'), 'an ERROR frame before the close');
    assert.equal(c.messages().length, 0, 'nothing delivered after expiry');
  } finally {
    c.close();
  }
});

test('frames before CONNECT are refused: SUBSCRIBE without a session gets ERROR and close', async () => {
  const c = new RawStomp(server, { via: 'none' });
  try {
    await c.opened;
    c.frame('SUBSCRIBE', { destination: '/topic/notifications', id: '0' });
    const f = await c.next('ERROR');
    assert.ok(f);
    assert.ok(await c.waitClosed(), 'socket should close after the ERROR');
    assert.equal(c.messages().length, 0);
  } finally {
    c.close();
  }
});
