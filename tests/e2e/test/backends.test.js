// The example server on real backends: MongoDB (FerretDB) survives a restart; two instances
// on one Kafka topic both push every event to their own sessions while the store holds it
// once; events from an independent Kafka client (Kafka's own console producer) reach a
// stompjs client. Needs NOTIFY_TEST_MONGO and NOTIFY_TEST_KAFKA (scripts/test.sh sets both).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { api, event, publish, inbox, unreadCount, waitListed } from '../lib/http.js';
import { uid, eventually } from '../lib/util.js';

const MONGO = process.env.NOTIFY_TEST_MONGO;
const KAFKA = process.env.NOTIFY_TEST_KAFKA;
const noMongo = MONGO ? false : 'skipping: NOTIFY_TEST_MONGO not set';
const noBoth = MONGO && KAFKA ? false : 'skipping: NOTIFY_TEST_KAFKA and NOTIFY_TEST_MONGO not set';

const running = [];
const sessions = [];
after(async () => {
  for (const s of sessions) await s.close().catch(() => {});
  for (const s of running) await s.stop().catch(() => {});
});

async function start(name, env) {
  const s = await startServer({ name, env, readyTimeoutMs: 60_000 });
  running.push(s);
  return s;
}

test('MongoDB: restarting the server on the same database keeps inbox, read state and counts', { skip: noMongo }, async () => {
  const db = uid('e2e_restart').replace(/[^A-Za-z0-9_]/g, '_');
  const env = { NOTIFY_MONGO_URI: MONGO, NOTIFY_MONGO_DB: db };
  const user = uid('mia');
  const tok = token(user, ['crew']);
  let server = await start('mongo-restart-1', env);
  const ids = [uid('evt'), uid('evt'), uid('evt')];
  await publish(server, event(ids[0], { users: [user] }));
  await publish(server, event(ids[1], { groups: ['crew'] }));
  await publish(server, event(ids[2], { broadcast: true }));
  await waitListed(server, tok, ids);
  const before = await inbox(server, tok, 'limit=50');
  const personal = before.items.find((n) => n.event_id === ids[0]);
  const r = await api(server, `/api/notifications/${personal.id}/read`, { method: 'POST', token: tok });
  assert.equal(r.status, 204);
  const countBefore = await unreadCount(server, tok);
  const stopped = await server.stop();
  assert.equal(stopped.code, 0, 'SIGTERM exits 0');

  server = await start('mongo-restart-2', env);
  const afterRestart = await inbox(server, tok, 'limit=50');
  const mine = (list) => list.items.filter((n) => ids.includes(n.event_id)).map((n) => [n.id, n.read, n.cursor]);
  assert.deepEqual(mine(afterRestart), mine(await inbox(server, tok, 'limit=50')));
  assert.deepEqual(mine(afterRestart), mine(before).map(([id, , c]) => [id, id === personal.id, c]), 'same notifications, read state kept');
  assert.equal(await unreadCount(server, tok), countBefore, 'unread count intact');
});

test('Kafka + MongoDB: two instances each push every event; the store holds it once', { skip: noBoth }, async () => {
  const topic = uid('e2e-two').replace(/[^A-Za-z0-9._-]/g, '-');
  const db = uid('e2e_two').replace(/[^A-Za-z0-9_]/g, '_');
  const common = { NOTIFY_KAFKA_BROKERS: KAFKA, NOTIFY_KAFKA_TOPIC: topic, NOTIFY_MONGO_URI: MONGO, NOTIFY_MONGO_DB: db };
  const a = await start('kafka-a', { ...common, NOTIFY_INSTANCE_ID: 'a' });
  const b = await start('kafka-b', { ...common, NOTIFY_INSTANCE_ID: 'b' });
  const user = uid('kai');
  const tok = token(user);
  const onA = await openStomp(a, { token: tok, via: 'query' });
  const onB = await openStomp(b, { token: tok, via: 'query' });
  sessions.push(onA, onB);
  const subA = await onA.subscribe('/user/queue/notifications');
  const subB = await onB.subscribe('/user/queue/notifications');
  const id = uid('evt');
  // Fan-out consumers start at the end of the stored topic: publish until both see one.
  await eventually(async () => {
    await publish(a, event(uid('warmup'), { users: [user] }));
    return subA.messages.items.length > 0 && subB.messages.items.length > 0;
  }, { timeout: 30_000, interval: 1000, what: 'both fan-out consumers running' });
  await publish(b, event(id, { users: [user] }));
  await subA.messages.waitFor((m) => m.some((x) => x.body.event_id === id), 15_000);
  await subB.messages.waitFor((m) => m.some((x) => x.body.event_id === id), 15_000);
  await waitListed(a, tok, [id], { timeout: 15_000 });
  const listed = (await inbox(b, tok, 'limit=200')).items.filter((n) => n.event_id === id);
  assert.equal(listed.length, 1, 'stored once');
});

function kafkaLibs() {
  const home = join(process.env.NOTIFY_CACHE || join(homedir(), '.cache', 'notify'), 'kafka-4.1.1');
  return existsSync(join(home, 'libs')) ? home : null;
}

test("Kafka: an independent producer's events reach a stompjs client", { skip: noBoth }, async () => {
  const home = kafkaLibs();
  assert.ok(home, 'Kafka jars installed by scripts/kafka.sh');
  const topic = uid('e2e-console').replace(/[^A-Za-z0-9._-]/g, '-');
  const server = await start('kafka-console', {
    NOTIFY_KAFKA_BROKERS: KAFKA,
    NOTIFY_KAFKA_TOPIC: topic,
    NOTIFY_MONGO_URI: MONGO,
    NOTIFY_MONGO_DB: uid('e2e_console').replace(/[^A-Za-z0-9_]/g, '_'),
  });
  const user = uid('cora');
  const s = await openStomp(server, { token: token(user), via: 'query' });
  sessions.push(s);
  const sub = await s.subscribe('/user/queue/notifications');
  const id = uid('evt');
  const line = `${user}\t${JSON.stringify(event(id, { users: [user] }, { title: 'from the console producer' }))}\n`;
  const produce = () =>
    new Promise((resolve, reject) => {
      const p = spawn('java', [
        '-Xmx256m', '-XX:TieredStopAtLevel=1',
        `-Dlog4j2.configurationFile=${join(home, 'log4j2.properties')}`,
        '-Dnotify.log.level=WARN', '-Dnotify.log.target=SYSTEM_ERR',
        '-cp', `${join(home, 'libs')}/*`, 'org.apache.kafka.tools.ConsoleProducer',
        '--bootstrap-server', KAFKA, '--topic', topic,
        '--property', 'parse.key=true', '--property', 'key.separator=\t',
      ], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => { err += d; });
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ConsoleProducer exited ${code}: ${err.slice(-500)}`))));
      p.stdin.end(line);
    });
  // The fan-out consumer starts at the end of the stored topic; a second send is harmless
  // (same event id: stored once, clients de-duplicate).
  await produce();
  try {
    await sub.messages.waitFor((m) => m.some((x) => x.body.event_id === id), 20_000);
  } catch {
    await produce();
    await sub.messages.waitFor((m) => m.some((x) => x.body.event_id === id), 20_000);
  }
  const n = sub.messages.items.find((x) => x.body.event_id === id);
  assert.equal(n.body.title, 'from the console producer');
  assert.deepEqual(n.body.audience, { kind: 'user', id: user });
});
