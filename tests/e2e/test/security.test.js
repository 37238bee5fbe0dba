// Hardening (SECURITY.md, issue 12): JWT claims and key configuration, tokens in URLs,
// demo Host check, SSE expiry, limits with 429 / STOMP ERROR, slowloris, redaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createSign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { startServer, runExpectingExit } from '../lib/server.js';
import { token, signJwt } from '../lib/jwt.js';
import { api, errorBody, event, publish } from '../lib/http.js';
import { SseStream } from '../lib/sse.js';
import { RawStomp, openRaw, refusedUpgrade } from '../lib/raw.js';
import { uid, sleep, eventually } from '../lib/util.js';

const now = () => Math.floor(Date.now() / 1000);

function ecKeyFile() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = mkdtempSync(join(tmpdir(), 'notify-e2e-key-'));
  const path = join(dir, 'pub.pem');
  writeFileSync(path, publicKey.export({ type: 'spki', format: 'pem' }));
  return { path, privateKey };
}

function es256(claims, privateKey) {
  const b64 = (x) => Buffer.from(x).toString('base64url');
  const head = b64(JSON.stringify({ alg: 'ES256', typ: 'JWT' }));
  const body = b64(JSON.stringify(claims));
  const sig = createSign('SHA256').update(`${head}.${body}`).sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${head}.${body}.${b64(sig)}`;
}

/** A raw HTTP/1.1 GET with a chosen Host header (fetch cannot set Host). */
function getWithHost(server, path, host) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers: { Host: host } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET on a new socket (no keep-alive pool), resolving { status, headers, text, json }. */
function freshGet(server, path) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test('start-up refuses an HS256 secret under 32 bytes, naming the variable', async () => {
  const r = await runExpectingExit({ NOTIFY_JWT_SECRET: 'short-secret' });
  assert.ok(!r.timedOut, 'still running');
  assert.notEqual(r.code, 0);
  assert.match(r.output, /NOTIFY_JWT_SECRET/);
  assert.ok(!r.output.includes('short-secret'), 'the secret is not echoed');
});

test('start-up refuses both a secret and a key file', async () => {
  const { path } = ecKeyFile();
  const r = await runExpectingExit({ NOTIFY_JWT_PUBLIC_KEY_FILE: path });
  assert.ok(!r.timedOut, 'still running');
  assert.notEqual(r.code, 0);
  assert.match(r.output, /NOTIFY_JWT_SECRET/);
  assert.match(r.output, /NOTIFY_JWT_PUBLIC_KEY_FILE/);
});

test('a mistyped NOTIFY_KAFKA_* option is named, its value never echoed', async () => {
  const r = await runExpectingExit({ NOTIFY_KAFKA_BROKERS: '127.0.0.1:1', NOTIFY_KAFKA_SASL_PASWORD: 'hunter2-S3cret' });
  assert.ok(!r.timedOut, 'still running');
  assert.notEqual(r.code, 0);
  assert.match(r.output, /NOTIFY_KAFKA_SASL_PASWORD/);
  assert.ok(!r.output.includes('hunter2'), r.output.slice(-500));
});

test('aud, iss and nbf are enforced; a public key without them warns at start-up', async () => {
  const { path, privateKey } = ecKeyFile();
  const open = await startServer({ name: 'es256', env: { NOTIFY_JWT_SECRET: null, NOTIFY_JWT_PUBLIC_KEY_FILE: path } });
  try {
    assert.match(open.logs(), /NOTIFY_JWT_AUDIENCE/, 'start-up warning about aud/iss');
  } finally {
    await open.stop();
  }
  const server = await startServer({
    name: 'audiss',
    env: { NOTIFY_JWT_SECRET: null, NOTIFY_JWT_PUBLIC_KEY_FILE: path, NOTIFY_JWT_AUDIENCE: 'notify', NOTIFY_JWT_ISSUER: 'https://idp.example' },
  });
  try {
    assert.doesNotMatch(server.logs(), /NOTIFY_JWT_AUDIENCE/);
    const sub = uid('aud');
    const base = { sub, exp: now() + 600 };
    const good = es256({ ...base, aud: 'notify', iss: 'https://idp.example' }, privateKey);
    assert.equal((await api(server, '/api/notifications/unread-count', { token: good })).status, 200);
    for (const [why, claims] of [
      ['no aud', { ...base, iss: 'https://idp.example' }],
      ['wrong aud', { ...base, aud: 'other', iss: 'https://idp.example' }],
      ['no iss', { ...base, aud: 'notify' }],
      ['wrong iss', { ...base, aud: 'notify', iss: 'https://evil.example' }],
      ['nbf in the future', { ...base, aud: 'notify', iss: 'https://idp.example', nbf: now() + 300 }],
    ]) {
      const res = await api(server, '/api/notifications/unread-count', { token: es256(claims, privateKey) });
      assert.equal(res.status, 401, why);
      // and over STOMP
      const c = new RawStomp(server, { token: es256(claims, privateKey), via: 'connect' });
      await assert.rejects(c.connect(), /ERROR/, why);
      c.close();
    }
  } finally {
    await server.stop();
  }
});

test('tokens in the query string: only /notify and /api/stream, elsewhere 401 token_in_query', async () => {
  const server = await startServer({ name: 'qtoken' });
  try {
    const t = encodeURIComponent(token(uid('q')));
    for (const [method, path] of [
      ['GET', '/api/notifications'],
      ['GET', '/api/notifications/unread-count'],
      ['POST', '/api/notifications/read-all'],
      ['POST', '/api/notifications/n_x/read'],
      ['GET', '/health/live'],
    ]) {
      const res = await api(server, `${path}?access_token=${t}`, { method });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(errorBody(res).code, 'token_in_query', `${method} ${path}`);
    }
    const sse = new SseStream(server, { token: token(uid('q')), via: 'query' });
    const res = await sse.open();
    assert.equal(res.status, 200);
    sse.close();
    const c = await openRaw(server, { token: token(uid('q')), via: 'query' });
    c.close();
  } finally {
    await server.stop();
  }
});

test('demo mode answers only loopback Host names (no DNS rebinding to /demo/token)', async () => {
  const server = await startServer({ name: 'demohost', env: { NOTIFY_JWT_SECRET: null, NOTIFY_PUBLISH_KEY: null } });
  try {
    for (const host of ['evil.example', `evil.example:${server.port}`, `127.0.0.1.nip.io:${server.port}`]) {
      const res = await getWithHost(server, '/demo/token?user=alice', host);
      assert.equal(res.status, 403, host);
      assert.ok(!res.text.includes('token"'), host);
    }
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, 'localhost']) {
      const res = await getWithHost(server, '/demo/token?user=alice', host);
      assert.equal(res.status, 200, host);
    }
  } finally {
    await server.stop();
  }
});

test('an SSE stream ends with event: expired when its token expires', { timeout: 30_000 }, async () => {
  const server = await startServer({ name: 'sseexp' });
  try {
    const user = uid('exp');
    const sse = new SseStream(server, { token: token(user, [], { exp: now() + 2 }), via: 'header' });
    assert.equal((await sse.open()).status, 200);
    const events = await sse.events.waitFor((es) => es.some((e) => e.event === 'expired'), 15_000);
    assert.ok(events.some((e) => e.event === 'expired'));
    await eventually(() => sse.ended, { what: 'the stream to end' });
  } finally {
    await server.stop();
  }
});

test('user and publish rate limits answer 429 with Retry-After, code rate_limited and the variable', async () => {
  const server = await startServer({ name: 'rates', env: { NOTIFY_USER_RATE: '5', NOTIFY_PUBLISH_RATE: '5' } });
  try {
    const t = token(uid('rate'));
    const codes = [];
    let limited;
    for (let i = 0; i < 12; i++) {
      const res = await api(server, '/api/notifications/unread-count', { token: t });
      codes.push(res.status);
      if (res.status === 429) limited = res;
    }
    assert.ok(limited, `no 429 among ${codes}`);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1, 'Retry-After');
    const e = errorBody(limited);
    assert.equal(e.code, 'rate_limited');
    assert.equal(e.field, 'NOTIFY_USER_RATE');
    // another user is not affected
    assert.equal((await api(server, '/api/notifications/unread-count', { token: token(uid('other')) })).status, 200);

    const batch = Array.from({ length: 5 }, () => event(uid('r'), { users: [uid('u')] }));
    await publish(server, batch);
    const over = await publish(server, event(uid('r'), { users: [uid('u')] }), { expect: null });
    assert.equal(over.status, 429);
    assert.equal(errorBody(over).field, 'NOTIFY_PUBLISH_RATE');
    assert.ok(over.headers.get('retry-after'));

    const metrics = (await api(server, '/metrics')).text;
    assert.match(metrics, /notify_limit_refusals_total\{limit="NOTIFY_USER_RATE"\} [1-9]/);
    assert.match(metrics, /notify_limit_refusals_total\{limit="NOTIFY_PUBLISH_RATE"\} [1-9]/);
  } finally {
    await server.stop();
  }
});

test('sessions per user (STOMP ERROR, SSE 429) and connections per instance (WebSocket and SSE 429) are capped', { timeout: 60_000 }, async () => {
  const server = await startServer({ name: 'caps', env: { NOTIFY_MAX_SESSIONS_PER_USER: '2', NOTIFY_MAX_CONNECTIONS: '4' } });
  const open = [];
  try {
    const user = uid('many');
    open.push(await openRaw(server, { token: token(user), via: 'header' }));
    open.push(await openRaw(server, { token: token(user), via: 'header' }));
    const third = new RawStomp(server, { token: token(user), via: 'header' });
    open.push(third);
    await assert.rejects(third.connect(), (e) => {
      assert.equal(e.frame.headers.message, 'limit exceeded: NOTIFY_MAX_SESSIONS_PER_USER');
      return true;
    });
    const sse = new SseStream(server, { token: token(user), via: 'header' });
    const res = await sse.open();
    assert.equal(res.status, 429);
    assert.equal(errorBody({ json: await res.json() }).field, 'NOTIFY_MAX_SESSIONS_PER_USER');
    // other users still connect, up to the instance's cap of 4
    open.push(await openRaw(server, { token: token(uid('a')), via: 'header' }));
    open.push(await openRaw(server, { token: token(uid('b')), via: 'header' }));
    // Over the instance's cap, the upgrade itself is refused: HTTP 429, never a 101.
    const fifth = await refusedUpgrade(server, { token: token(uid('c')) });
    assert.equal(fifth.status, 429, fifth.text);
    assert.ok(Number(fifth.headers['retry-after']) >= 1, 'Retry-After');
    assert.equal(errorBody(fifth).code, 'rate_limited');
    assert.equal(errorBody(fifth).field, 'NOTIFY_MAX_CONNECTIONS');
    assert.match((await api(server, '/metrics')).text, /notify_limit_refusals_total\{limit="NOTIFY_MAX_CONNECTIONS"\} [1-9]/);
    const sse2 = new SseStream(server, { token: token(uid('d')), via: 'header' });
    const res2 = await sse2.open();
    assert.equal(res2.status, 429);
    assert.ok(res2.headers.get('retry-after'));
    // closing one frees its slot
    open[0].close();
    await eventually(async () => {
      const c = new RawStomp(server, { token: token(user), via: 'header' });
      open.push(c);
      try {
        await c.connect();
        return true;
      } catch {
        c.close();
        return false;
      }
    }, { what: 'a freed session slot' });
  } finally {
    for (const c of open) c.close();
    await server.stop();
  }
});

test('a client that sends its headers too slowly is disconnected (slowloris)', { timeout: 30_000 }, async () => {
  const server = await startServer({ name: 'slowloris', env: { NOTIFY_HEADER_READ_TIMEOUT: '2s' } });
  try {
    const sock = tcpConnect(server.port, '127.0.0.1');
    const closed = new Promise((r) => sock.on('close', () => r(Date.now())));
    sock.on('error', () => {});
    await new Promise((r) => sock.on('connect', r));
    const t0 = Date.now();
    sock.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // trickle a header line every second, never finishing the request
    const trickle = setInterval(() => sock.write(`X-Slow-${Date.now()}: 1\r\n`), 1000);
    const at = await Promise.race([closed, sleep(12_000).then(() => null)]);
    clearInterval(trickle);
    sock.destroy();
    assert.ok(at, 'the server kept a slow-header connection open for 12 s');
    assert.ok(at - t0 < 8000, `closed after ${at - t0} ms`);
    assert.equal((await api(server, '/health/live')).status, 200);
  } finally {
    await server.stop();
  }
});

test('sockets over the cap get a clean 429 instead of failing accept', { timeout: 60_000 }, async () => {
  // NOTIFY_MAX_CONNECTIONS=2 leaves room for 2 + 128 sockets in all.
  const server = await startServer({ name: 'sockcap', env: { NOTIFY_MAX_CONNECTIONS: '2' } });
  const socks = [];
  try {
    for (let i = 0; i < 130; i++) {
      const s = tcpConnect(server.port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.on('connect', r));
      socks.push(s);
    }
    await sleep(200);
    // A new socket (fetch would reuse a pooled connection that already holds a slot).
    const res = await freshGet(server, '/health/live');
    assert.equal(res.status, 429, res.text);
    assert.equal(res.headers['retry-after'], '5');
    assert.equal(errorBody(res).code, 'rate_limited');
    assert.equal(errorBody(res).field, 'NOTIFY_MAX_CONNECTIONS');
    for (const s of socks.splice(0)) s.destroy();
    await eventually(async () => (await freshGet(server, '/health/live')).status === 200, { what: 'slots to come back' });
    assert.match((await api(server, '/metrics')).text, /notify_limit_refusals_total\{limit="NOTIFY_MAX_CONNECTIONS"\} [1-9]/);
  } finally {
    for (const s of socks) s.destroy();
    await server.stop();
  }
});

test('link: absolute http(s) URLs and /paths only, naming `link`; NOTIFY_LINK_ORIGINS narrows absolute ones', async () => {
  const server = await startServer({ name: 'links', env: { NOTIFY_LINK_ORIGINS: 'https://app.example' } });
  try {
    const user = uid('l');
    for (const link of ['javascript:alert(1)', 'data:text/html,x', '//evil.example/x', '/\\evil.example', 'https://evil.example/x', 'ftp://app.example/x']) {
      const res = await publish(server, event(uid('bad'), { users: [user] }, { link }), { expect: null });
      assert.equal(res.status, 400, link);
      assert.equal(errorBody(res).field, 'link', link);
    }
    for (const link of ['/purchases/42', 'https://app.example/purchases/42']) {
      await publish(server, event(uid('ok'), { users: [user] }, { link }));
    }
  } finally {
    await server.stop();
  }
});
