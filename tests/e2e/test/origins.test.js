// NOTIFY_ALLOWED_ORIGINS: CORS for REST and the WebSocket handshake's Origin check.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { StompSession } from '../lib/stomp.js';
import { api } from '../lib/http.js';
import { uid } from '../lib/util.js';

const ALLOWED = 'http://app.example';
let server;
before(async () => {
  server = await startServer({ name: 'origins', env: { NOTIFY_ALLOWED_ORIGINS: `${ALLOWED},http://other.example` } });
});
after(async () => {
  if (server) await server.stop();
});

test('WebSocket handshake from an allowed Origin connects', async () => {
  const s = new StompSession(server, { token: token(uid('o')), via: 'query', wsHeaders: { Origin: ALLOWED } });
  const r = await s.attempt(5000);
  await s.close();
  assert.equal(r.connected, true, `refused: ${JSON.stringify(r.error || r.close)}`);
});

test('WebSocket handshake from another Origin is refused', async () => {
  const s = new StompSession(server, { token: token(uid('o')), via: 'query', wsHeaders: { Origin: 'http://evil.example' } });
  const r = await s.attempt(5000);
  await s.close();
  assert.equal(r.connected, false, 'a foreign Origin must not get a session');
});

test('CORS: preflight and response headers for an allowed origin only', async () => {
  const pre = await api(server, '/api/notifications', {
    method: 'OPTIONS',
    headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization' },
  });
  assert.ok(pre.status === 200 || pre.status === 204, `preflight ${pre.status}`);
  assert.equal(pre.headers.get('access-control-allow-origin'), ALLOWED);
  assert.match((pre.headers.get('access-control-allow-headers') || '').toLowerCase(), /authorization|\*/);
  const get = await api(server, '/api/notifications/unread-count', { token: token(uid('c')), headers: { Origin: ALLOWED } });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('access-control-allow-origin'), ALLOWED);
  const evil = await api(server, '/api/notifications/unread-count', { token: token(uid('c')), headers: { Origin: 'http://evil.example' } });
  assert.notEqual(evil.headers.get('access-control-allow-origin'), 'http://evil.example');
  assert.notEqual(evil.headers.get('access-control-allow-origin'), '*');
});
