// The fault suite: two example servers on a three-broker Kafka cluster (replication factor 3,
// min.insync.replicas=2) and FerretDB, a steady stream of events to real stompjs clients, and
// one fault per test: the partition leader killed (kill -9) and restarted, a rolling restart
// of all three brokers, a store outage, and a server instance killed mid-stream. Each test
// checks 0 lost and 0 duplicates in the inboxes, and reports how long pushes paused.
// Needs NOTIFY_TEST_KAFKA_CLUSTER(_STATE), NOTIFY_TEST_MONGO and NOTIFY_TEST_FERRETDB_STATE
// (scripts/test-faults.sh sets them).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sleep, uid } from '../lib/util.js';
import {
  CLUSTER, CLUSTER_STATE, MONGO, FERRETDB_STATE, script, startCluster, openClients, Stream,
  drain, figures, inboxCheck, warmUp, report,
} from './harness.js';

const skip = CLUSTER && CLUSTER_STATE && MONGO && FERRETDB_STATE ? false : 'skipping: run through scripts/test-faults.sh';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** Servers, clients and a stream; returns everything a test needs. */
async function setUp(name, { users = 6, intervalMs = 50 } = {}) {
  const { topic, servers } = await startCluster(name);
  cleanups.push(async () => { for (const s of servers) await s.stop(3000); });
  const group = uid('crew');
  const names = Array.from({ length: users }, () => uid('u'));
  const clients = await openClients(servers, names, [group]);
  cleanups.push(async () => { for (const c of clients) await c.close(); });
  await warmUp(servers, clients);
  const stream = new Stream(servers, names, group, { intervalMs });
  return { topic, servers, clients, stream };
}

/** Stream, drain and check; `fault` runs mid-stream and returns its window { from, to }. */
async function run(name, ctx, fault, extra = {}) {
  const { servers, clients, stream } = ctx;
  stream.start();
  await sleep(3000);
  const window = await fault();
  await sleep(3000);
  await stream.stop();
  const missing = await drain(stream, clients, 90_000);
  const f = figures(stream, clients, window);
  const live = servers.find((s) => !s.exited());
  // One inbox at a time: FerretDB answers each page in up to a second under load.
  const checks = [];
  for (const c of clients) checks.push(await inboxCheck(live, stream, c, 180_000));
  const inboxMissing = checks.reduce((n, c) => n + c.missing.length, 0);
  const inboxDuplicated = checks.reduce((n, c) => n + c.duplicated.length, 0);
  const lost = Object.values(missing).reduce((n, m) => n + m.length, 0);
  report(name, { ...f, lost, inbox_missing: inboxMissing, inbox_duplicates: inboxDuplicated, fault_ms: window.to - window.from, ...extra });
  assert.equal(lost, 0, `every client got every notification; missing: ${JSON.stringify(missing).slice(0, 800)}`);
  assert.equal(inboxMissing, 0, 'every notification is stored');
  assert.equal(inboxDuplicated, 0, 'and stored once');
  return f;
}

test('kill -9 of the partition leader, then restart: nothing lost, nothing doubled', { skip }, async () => {
  const ctx = await setUp('leader');
  let killed;
  const f = await run('leader-kill', ctx, async () => {
    killed = await script('kafka-cluster.sh', 'leader', CLUSTER_STATE, ctx.topic, '0');
    assert.match(killed, /^[123]$/, 'the leader of partition 0');
    const from = Date.now();
    await script('kafka-cluster.sh', 'kill', CLUSTER_STATE, killed);
    await sleep(8000);
    await script('kafka-cluster.sh', 'restart', CLUSTER_STATE, killed);
    await script('kafka-cluster.sh', 'wait-in-sync', CLUSTER_STATE, '120');
    return { from, to: Date.now() };
  }, {});
  assert.ok(f.paused_ms < 30_000, `pushes resumed within seconds (paused ${f.paused_ms} ms)`);
});

test('rolling restart of all three brokers: nothing lost, nothing doubled', { skip }, async () => {
  // A slower stream: the restarts take minutes on a busy machine, and every notification is
  // checked in the inboxes afterwards.
  const ctx = await setUp('rolling', { intervalMs: 150 });
  await run('rolling-restart', ctx, async () => {
    const from = Date.now();
    for (const node of ['1', '2', '3']) {
      await script('kafka-cluster.sh', 'stop-node', CLUSTER_STATE, node);
      await script('kafka-cluster.sh', 'start-node', CLUSTER_STATE, node);
      await script('kafka-cluster.sh', 'wait-in-sync', CLUSTER_STATE, '120');
    }
    return { from, to: Date.now() };
  });
});

test('store outage: pushes continue on both instances, a resume meanwhile misses nothing, storage catches up once', { skip }, async () => {
  const ctx = await setUp('store');
  let resumed;
  let caughtUpMs;
  const f = await run('store-outage', ctx, async () => {
    const from = Date.now();
    await script('ferretdb.sh', 'kill', FERRETDB_STATE);
    await sleep(2000);
    // A client drops during the outage and resumes on the other instance with `since`.
    const c = ctx.clients[0];
    const before = c.byId.size;
    await c.session.close();
    resumed = { before };
    await sleep(4000);
    await script('ferretdb.sh', 'restart', FERRETDB_STATE);
    const back = Date.now();
    // Readiness comes back without a restart.
    for (;;) {
      const r = await fetch(`${ctx.servers[0].base}/health/ready`).catch(() => null);
      if (r && r.status === 200) break;
      if (Date.now() - back > 60_000) throw new Error('not ready 60 s after the store returned');
      await sleep(200);
    }
    caughtUpMs = Date.now() - back;
    return { from, to: back };
  }, {});
  assert.ok(resumed, 'a client resumed during the outage');
  assert.ok(ctx.clients[0].moves.length >= 1, 'and moved to the other instance');
  assert.ok(f.paused_ms < 5000, `live pushes did not wait for the store (paused ${f.paused_ms} ms)`);
  report('store-outage-readiness', { ready_again_after_ms: caughtUpMs });
});

test('kill -9 of a server instance: its clients resume on the survivor with no gap', { skip }, async () => {
  const ctx = await setUp('instance', { users: 8 });
  const [a, b] = ctx.servers;
  const onA = ctx.clients.filter((c) => c.at === 0);
  let moved;
  let killedAt;
  await run('instance-kill', ctx, async () => {
    const from = Date.now();
    killedAt = from;
    a.proc.kill('SIGKILL');
    await a.exitPromise;
    // Its clients move to the survivor.
    const deadline = Date.now() + 30_000;
    while (onA.some((c) => !c.moves.length) && Date.now() < deadline) await sleep(100);
    moved = onA.map((c) => (c.moves[0] ? c.moves[0].resumedAt - from : null));
    return { from, to: Date.now() };
  });
  assert.ok(moved.every((m) => m !== null), 'every client of the killed instance moved');
  // The survivor's storing consumer takes the dead member's partitions at the next rebalance
  // (after session.timeout.ms): the first "partitions assigned" line after the kill.
  const takeoverAfterKill = () => readFileSync(b.logPath, 'utf8').replace(/\x1b\[[0-9;]*m/g, '').split('\n')
    .filter((l) => l.includes('kafka partitions assigned') && l.includes('store'))
    .map((l) => Date.parse(l.split(/\s+/)[0]))
    .filter((t) => t > killedAt)
    .map((t) => t - killedAt);
  let takeover = takeoverAfterKill();
  for (let i = 0; i < 120 && !takeover.length; i++) {
    await sleep(250);
    takeover = takeoverAfterKill();
  }
  report('instance-kill-move', {
    clients_moved: moved.length,
    resumed_within_ms: Math.max(...moved),
    storing_takeover_ms: takeover.length ? takeover[0] : null,
  });
  assert.ok(takeover.length, "the survivor's storing consumer took the partitions over");
});
