// Health endpoints and Prometheus metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { api, event, publish } from '../lib/http.js';
import { assertPersonalDelivery } from '../lib/expect.js';
import { uid, sleep } from '../lib/util.js';

let server;
before(async () => {
  server = await startServer({ name: 'health' });
});
after(async () => {
  if (server) await server.stop();
});

test('GET /health/live is 200 {"status":"UP"}', async () => {
  const r = await api(server, '/health/live');
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'UP');
});

test('GET /health/ready is 200 {"status":"UP","components":{…}}', async () => {
  const r = await api(server, '/health/ready');
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'UP');
  assert.equal(typeof r.json.components, 'object');
  assert.ok(r.json.components !== null);
  for (const [name, c] of Object.entries(r.json.components)) {
    const status = typeof c === 'string' ? c : c && c.status;
    assert.equal(status, 'UP', `component ${name}`);
  }
});

test('GET /metrics has the contract metric names after some traffic', async (t) => {
  // traffic: a session that receives a push, one that closes, a rejected event
  const user = uid('m');
  const s = await openStomp(server, { token: token(user), via: 'query' });
  const q = await s.subscribe('/user/queue/notifications');
  await assertPersonalDelivery(server, q, user);
  const s2 = await openStomp(server, { token: token(uid('m2')), via: 'query' });
  await s2.close();
  await publish(server, { id: '' }, { expect: null });
  await sleep(300);
  const r = await api(server, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') || '', /text\/plain/);
  const text = r.text;
  const names = [
    'notify_sessions',
    'notify_events_total',
    'notify_notifications_stored_total',
    'notify_messages_pushed_total',
    'notify_sessions_closed_total',
    'notify_delivery_latency_seconds_bucket',
    'notify_store_write_seconds_bucket',
  ];
  const missing = names.filter((n) => !new RegExp(`^${n}[{ ]`, 'm').test(text));
  assert.deepEqual(missing, [], 'metric names missing from /metrics');
  assert.match(text, /^notify_events_total\{[^}]*result="/m, 'notify_events_total has a result label');
  assert.match(text, /^notify_sessions_closed_total\{[^}]*reason="/m, 'notify_sessions_closed_total has a reason label');
  const gauge = /^notify_sessions(?:\{[^}]*\})? (\d+(?:\.\d+)?)/m.exec(text);
  assert.ok(gauge && Number(gauge[1]) >= 1, `notify_sessions gauge counts the open session: ${gauge && gauge[0]}`);
  if (!/^notify_kafka_consumer_lag/m.test(text)) t.diagnostic('notify_kafka_consumer_lag absent (no Kafka in this run)');
  await s.close();
});
