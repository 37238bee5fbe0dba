// Backends down at start: the server starts anyway (live 200, ready 503 naming each DOWN
// component, one log line per change of state) and becomes ready without a restart when
// Kafka and MongoDB answer. A malformed value still stops start-up naming the variable.
// Kafka and MongoDB "appear" through TCP proxies on ports that first refuse connections.
// Needs NOTIFY_TEST_KAFKA and NOTIFY_TEST_MONGO (scripts/test.sh sets both).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { startServer, freePort, runExpectingExit } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { api, event, publish } from '../lib/http.js';
import { uid, sleep, eventually } from '../lib/util.js';

const KAFKA = process.env.NOTIFY_TEST_KAFKA;
const MONGO = process.env.NOTIFY_TEST_MONGO;
const skip = KAFKA && MONGO ? false : 'skipping: NOTIFY_TEST_KAFKA and NOTIFY_TEST_MONGO not set';

const closers = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

/** A TCP proxy from 127.0.0.1:`port` to `target` (host:port), listening from now on. */
function proxy(port, target) {
  const [host, tport] = target.split(':');
  const sockets = new Set();
  const srv = createServer((down) => {
    const up = connect(Number(tport), host);
    sockets.add(down).add(up);
    down.pipe(up).pipe(down);
    const end = () => { down.destroy(); up.destroy(); };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(() => new Promise((r) => {
    for (const s of sockets) s.destroy();
    srv.close(() => r());
  }))));
}

async function ready(server) {
  const r = await api(server, '/health/ready');
  return r;
}

test('Kafka and MongoDB down at start: live, not ready (naming both), ready without a restart once they answer', { skip }, async () => {
  const kafkaPort = await freePort();
  const mongoPort = await freePort();
  const mongoTarget = /mongodb:\/\/([^/]+)/.exec(MONGO)[1];
  const server = await startServer({
    name: 'startup-down',
    waitPath: '/health/live',
    env: {
      NOTIFY_KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
      NOTIFY_KAFKA_TOPIC: uid('startup').replace(/[^A-Za-z0-9._-]/g, '-'),
      NOTIFY_MONGO_URI: `mongodb://127.0.0.1:${mongoPort}/`,
      NOTIFY_MONGO_DB: uid('startup').replace(/[^A-Za-z0-9_]/g, '_'),
    },
  });
  closers.push(() => server.stop());
  const live = await api(server, '/health/live');
  assert.equal(live.status, 200);
  const r = await ready(server);
  assert.equal(r.status, 503);
  assert.equal(r.json.components.store.status, 'DOWN');
  assert.equal(r.json.components.event_source.status, 'DOWN');

  // Retrying with backoff, logging once per change of state (not once per attempt).
  await sleep(6000);
  const logs = server.logs();
  const count = (re) => (logs.match(re) || []).length;
  assert.equal(count(/mongodb unavailable; retrying/g), 1, `one line for the store: ${logs.slice(-2000)}`);
  assert.equal(count(/not ready: store DOWN/g), 1, 'one readiness line for the store');
  assert.equal(count(/not ready: event_source DOWN/g), 1, 'one readiness line for Kafka');
  assert.equal(server.exited(), null, 'still running');

  // The backends answer: ready without a restart, and it works end to end.
  closers.push(await proxy(mongoPort, mongoTarget));
  closers.push(await proxy(kafkaPort, KAFKA));
  const t0 = Date.now();
  await eventually(async () => (await ready(server)).status === 200, { timeout: 60_000, interval: 250, what: 'ready' });
  console.log(`ready ${Date.now() - t0} ms after both backends answered`);
  const user = uid('sam');
  const s = await openStomp(server, { token: token(user), via: 'query' });
  closers.push(() => s.close());
  const sub = await s.subscribe('/user/queue/notifications');
  const id = uid('evt');
  await eventually(async () => {
    await publish(server, event(id, { users: [user] }));
    return sub.messages.items.some((m) => m.body.event_id === id);
  }, { timeout: 60_000, interval: 2000, what: 'a push after the backends came up' });
  // The readiness log checks on its own interval, so its UP lines may follow the first push.
  await eventually(async () => /ready: store UP/.test(server.logs()) && /ready: event_source UP/.test(server.logs()),
    { timeout: 15_000, interval: 250, what: 'the readiness log says both are UP' });
});

for (const [name, value] of [
  ['NOTIFY_KAFKA_BROKERS', 'host:1,,'],
  ['NOTIFY_KAFKA_NO_SUCH_PROPERTY', 'x'],
  ['NOTIFY_MONGO_URI', 'mongodb://'],
]) {
  test(`with backends allowed to be down, a malformed ${name} still stops start-up naming it`, async () => {
    const env = { [name]: value };
    if (name !== 'NOTIFY_KAFKA_BROKERS') env.NOTIFY_KAFKA_BROKERS = '127.0.0.1:1';
    const r = await runExpectingExit(env);
    assert.ok(!r.timedOut, `still running after 15 s; output: ${r.output.slice(-500)}`);
    assert.notEqual(r.code, 0, 'non-zero exit');
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(lines.length, 1, `one error line: ${r.stderr.slice(-500)}`);
    assert.ok(lines[0].includes(name), `it names ${name}: ${lines[0]}`);
  });
}

test('an unknown command-line option stops start-up', async () => {
  const { spawn } = await import('node:child_process');
  const { serverBinary } = await import('../lib/server.js');
  const code = await new Promise((resolve) => {
    const p = spawn(serverBinary(), ['--no-such-option'], { stdio: 'ignore' });
    p.on('exit', resolve);
  });
  assert.notEqual(code, 0);
});
