// Traces exported over OTLP to a real Jaeger (scripts/test-traces.sh starts it): a producer's
// `traceparent` on POST /api/events is continued through rules, store and push (in memory, and
// over Kafka through the record headers); the MESSAGE frame and the SSE event carry the same
// trace, naming the server's push span; Jaeger's query API shows the trace with the spans of
// the whole path.
//
// Needs NOTIFY_TEST_OTLP (OTLP/HTTP base URL) and NOTIFY_TEST_JAEGER (query API base URL);
// the Kafka case also NOTIFY_TEST_KAFKA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { openSse } from '../lib/sse.js';
import { event, publish } from '../lib/http.js';
import { newTraceparent, parseTraceparent } from '../lib/trace.js';
import { uid, sleep, eventually } from '../lib/util.js';

const OTLP = process.env.NOTIFY_TEST_OTLP;
const KAFKA = process.env.NOTIFY_TEST_KAFKA;
const noKafka = KAFKA ? false : 'NOTIFY_TEST_KAFKA not set';
const JAEGER = process.env.NOTIFY_TEST_JAEGER;
const skip = !OTLP || !JAEGER ? 'NOTIFY_TEST_OTLP / NOTIFY_TEST_JAEGER not set (run scripts/test-traces.sh)' : false;
const SERVICE = uid('notify-e2e');
// Every span of one event's path in a single process with the in-memory backends.
const PATH = ['notify.publish', 'notify.event', 'notify.rules', 'notify.push', 'notify.store'];

let server;
const open = [];
const extra = [];
before(async () => {
  if (skip) return;
  server = await startServer({
    name: 'traces',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: OTLP, OTEL_SERVICE_NAME: SERVICE, RUST_LOG: 'info' },
  });
});
after(async () => {
  for (const s of open) await s.close();
  for (const s of extra) await s.stop();
  if (server) await server.stop();
});

/** Jaeger's view of a trace: { spans: [{ spanID, operationName, references, tags }], serviceName }. */
async function jaegerTrace(traceId) {
  const res = await fetch(`${JAEGER}/api/traces/${traceId}`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) return null;
  const body = await res.json();
  const t = body.data && body.data[0];
  if (!t) return null;
  const services = Object.values(t.processes || {}).map((p) => p.serviceName);
  return { spans: t.spans, services };
}

/**
 * Publishes one event with a fresh producer traceparent to `srv`, receives it on a STOMP and an
 * SSE session, and returns { producer, frame, trace } once Jaeger holds every span named in
 * `expect` ({ name: count }).
 */
async function publishTraced(srv, expect) {
  const user = uid('traced');
  const stomp = await openStomp(srv, { token: token(user), via: 'query' });
  open.push(stomp);
  const sub = await stomp.subscribe('/user/queue/notifications');
  const sse = await openSse(srv, { token: token(user) });
  open.push({ close: async () => sse.close() });
  await sleep(300);

  const producer = newTraceparent();
  const id = uid('evt');
  await publish(srv, event(id, { users: [user] }), { headers: { traceparent: producer.traceparent } });

  const msgs = await sub.messages.waitFor((ms) => ms.some((m) => m.body && m.body.event_id === id));
  const frame = parseTraceparent(msgs.find((m) => m.body.event_id === id).headers.traceparent);
  assert.ok(frame, 'the MESSAGE frame carries a valid traceparent');
  assert.equal(frame.traceId, producer.traceId, 'same trace as the producer');
  assert.notEqual(frame.parentId, producer.spanId, "it names the server's span, not the producer's");
  assert.equal(frame.flags, '01', 'sampled');
  const events = await sse.events.waitFor((es) => es.some((e) => e.event_id === id));
  const sseTrace = parseTraceparent(events.find((e) => e.event_id === id).traceparent);
  assert.ok(sseTrace, 'the SSE event carries a valid traceparent');
  assert.equal(sseTrace.traceId, producer.traceId);

  // The batch exporter sends every few seconds; Jaeger answers once it has stored them.
  const count = (t, name) => t.spans.filter((s) => s.operationName === name).length;
  const trace = await eventually(async () => {
    const t = await jaegerTrace(producer.traceId);
    return t && Object.entries(expect).every(([name, n]) => count(t, name) === n) ? t : null;
  }, { timeout: 30_000, interval: 500, what: `trace ${producer.traceId} with spans ${JSON.stringify(expect)} in Jaeger` });
  assert.ok(trace.services.includes(SERVICE), `service.name ${SERVICE}: ${trace.services}`);
  console.log(`TRACE-FIGURES: ${srv.name}: trace ${producer.traceId} found in Jaeger with ${trace.spans.length} spans: ${trace.spans.map((s) => s.operationName).sort().join(', ')}`);
  return { id, producer, frame, trace };
}

const parentOf = (s) => (s.references || []).find((r) => r.refType === 'CHILD_OF')?.spanID;
const tag = (s, key) => (s.tags || []).find((t) => t.key === key)?.value;

test('a traceparent continues through rules, store and push, and Jaeger shows the trace', { skip }, async () => {
  const { id, producer, frame, trace } = await publishTraced(server, Object.fromEntries(PATH.map((n) => [n, 1])));
  const byName = (name) => trace.spans.find((s) => s.operationName === name);
  assert.equal(parentOf(byName('notify.publish')), producer.spanId, "the publish span continues the producer's span");
  assert.equal(parentOf(byName('notify.event')), byName('notify.publish').spanID, 'event under publish');
  for (const child of ['notify.rules', 'notify.push', 'notify.store']) {
    assert.equal(parentOf(byName(child)), byName('notify.event').spanID, `${child} under the event`);
  }
  assert.equal(frame.parentId, byName('notify.push').spanID, 'the MESSAGE names the push span');
  assert.equal(tag(byName('notify.event'), 'event_id'), id, 'the event id is a span attribute');
  assert.equal(Number(tag(byName('notify.push'), 'sessions')), 2, 'pushed to the STOMP and the SSE session');
});

test('over Kafka the context travels in the record headers to the storing consumer and the fan-out', { skip: skip || noKafka }, async () => {
  const topic = uid('traces');
  const srv = await startServer({
    name: 'traces-kafka',
    readyTimeoutMs: 60_000,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: OTLP,
      OTEL_SERVICE_NAME: SERVICE,
      RUST_LOG: 'info',
      NOTIFY_KAFKA_BROKERS: KAFKA,
      NOTIFY_KAFKA_TOPIC: topic,
      NOTIFY_KAFKA_GROUP: `${topic}-g`,
    },
  });
  extra.push(srv);
  // One consumer stores (no push), the instance's fan-out pushes: two event spans.
  const { id, producer, frame, trace } = await publishTraced(srv, {
    'notify.publish': 1, 'notify.event': 2, 'notify.rules': 2, 'notify.push': 1, 'notify.store': 1,
  });
  const publishSpan = trace.spans.find((s) => s.operationName === 'notify.publish');
  assert.equal(parentOf(publishSpan), producer.spanId);
  const eventSpans = trace.spans.filter((s) => s.operationName === 'notify.event');
  for (const e of eventSpans) {
    assert.equal(parentOf(e), publishSpan.spanID, 'both consumers continue the record header (the publish span)');
    assert.equal(tag(e, 'event_id'), id);
    assert.match(String(tag(e, 'origin')), new RegExp(`^${topic}/\\d+@\\d+$`), 'origin names the record');
  }
  const push = trace.spans.find((s) => s.operationName === 'notify.push');
  const store = trace.spans.find((s) => s.operationName === 'notify.store');
  assert.notEqual(parentOf(push), parentOf(store), 'pushed by the fan-out, stored by the storing consumer');
  assert.equal(frame.parentId, push.spanID, 'the MESSAGE names the push span');
});
