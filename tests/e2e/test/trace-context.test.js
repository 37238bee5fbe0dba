// Trace context without an exporter: a producer's W3C `traceparent` (POST /api/events request
// header) reaches the STOMP MESSAGE frame and the SSE event unchanged; the JSON log lines of
// an event's path carry its id as a field. (With an OTLP exporter: tests/e2e/traces/.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { startServer, runExpectingExit } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { openSse } from '../lib/sse.js';
import { event, publish } from '../lib/http.js';
import { newTraceparent, parseTraceparent } from '../lib/trace.js';
import { uid, sleep, eventually } from '../lib/util.js';

let server;
const open = [];
before(async () => {
  server = await startServer({
    name: 'trace-context',
    env: { NOTIFY_LOG_FORMAT: 'json', RUST_LOG: 'info,notify_core=debug' },
  });
});
after(async () => {
  for (const s of open) await s.close();
  if (server) await server.stop();
});

/** The server's JSON log lines so far (a line that is not JSON is skipped). */
function jsonLines() {
  return readFileSync(server.logPath, 'utf8').split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      return [];
    }
  });
}

async function listeners(user) {
  const stomp = await openStomp(server, { token: token(user), via: 'query' });
  open.push(stomp);
  const sub = await stomp.subscribe('/user/queue/notifications');
  const sse = await openSse(server, { token: token(user) });
  open.push({ close: async () => sse.close() });
  await sleep(300); // the SSE stream registers asynchronously
  return { sub, sse };
}

test('traceparent and tracestate on POST /api/events reach the MESSAGE frame and the SSE event', async () => {
  const user = uid('tp');
  const { sub, sse } = await listeners(user);
  const { traceparent } = newTraceparent();
  const id = uid('evt');
  await publish(server, event(id, { users: [user] }), {
    headers: { traceparent, tracestate: 'e2e=1' },
  });
  const msgs = await sub.messages.waitFor((ms) => ms.some((m) => m.body && m.body.event_id === id));
  const m = msgs.find((x) => x.body.event_id === id);
  assert.equal(m.headers.traceparent, traceparent, 'no exporter: the context is passed on as received');
  assert.equal(m.headers.tracestate, 'e2e=1');
  const events = await sse.events.waitFor((es) => es.some((e) => e.event_id === id));
  const e = events.find((x) => x.event_id === id);
  assert.equal(e.traceparent, traceparent, 'SSE event carries a traceparent field');
  assert.equal(e.event, 'notification');
});

test('no traceparent, or an invalid one: no traceparent header, delivery unaffected', async () => {
  const user = uid('tp');
  const { sub, sse } = await listeners(user);
  const plain = uid('evt');
  const invalid = uid('evt');
  await publish(server, event(plain, { users: [user] }));
  // Upper-case hex is invalid W3C: ignored, as the specification says.
  await publish(server, event(invalid, { users: [user] }), {
    headers: { traceparent: newTraceparent().traceparent.toUpperCase() },
  });
  const msgs = await sub.messages.waitFor((ms) => [plain, invalid].every((id) => ms.some((m) => m.body && m.body.event_id === id)));
  for (const id of [plain, invalid]) {
    const m = msgs.find((x) => x.body.event_id === id);
    assert.equal(m.headers.traceparent, undefined, `${id}: no traceparent`);
  }
  const events = await sse.events.waitFor((es) => [plain, invalid].every((id) => es.some((e) => e.event_id === id)));
  assert.ok(events.filter((e) => [plain, invalid].includes(e.event_id)).every((e) => e.traceparent === undefined));
});

test('NOTIFY_LOG_FORMAT=json: every line of an event path names the event id as a field', async () => {
  const user = uid('tp');
  const { sub } = await listeners(user);
  const id = uid('evt');
  await publish(server, event(id, { users: [user] }), { headers: { traceparent: newTraceparent().traceparent } });
  await sub.messages.waitFor((ms) => ms.some((m) => m.body && m.body.event_id === id));
  const lines = await eventually(() => {
    const mine = jsonLines().filter((l) => l.event_id === id);
    return mine.some((l) => l.message === 'event pushed') ? mine : null;
  }, { what: `a JSON log line with event_id ${id}` });
  const pushed = lines.find((l) => l.message === 'event pushed');
  assert.match(pushed.spans, /^notify\.event/, 'logged inside the event span');
  assert.equal(pushed.level, 'DEBUG');
  // Every line inside an event span of this event carries its id at the top level.
  const inEventSpans = jsonLines().filter((l) => (l.spans || '').startsWith('notify.event') && l.origin === pushed.origin);
  assert.ok(inEventSpans.length >= 1);
  assert.ok(inEventSpans.every((l) => l.event_id === id), JSON.stringify(inEventSpans));
});

test('a bad OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_PROTOCOL stops start-up naming the variable', async () => {
  for (const [env, variable] of [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4318' }, 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'OTEL_EXPORTER_OTLP_PROTOCOL'],
  ]) {
    const res = await runExpectingExit(env);
    assert.equal(res.code, 2, `${JSON.stringify(env)}: exit 2, got ${JSON.stringify(res)}`);
    assert.match(res.stderr, new RegExp(variable), res.stderr);
  }
});

test('with an OTLP receiver that never answers, delivery goes on, MESSAGE continues the trace, SIGTERM exits in time', async () => {
  // Accepts connections and never answers: the worst receiver (a refused port fails fast).
  const sockets = [];
  const blackhole = createServer((sock) => sockets.push(sock));
  await new Promise((r) => blackhole.listen(0, '127.0.0.1', r));
  const srv = await startServer({
    name: 'trace-export-down',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackhole.address().port}`, OTEL_BSP_SCHEDULE_DELAY: '200' },
  });
  try {
    const user = uid('tp');
    const stomp = await openStomp(srv, { token: token(user), via: 'query' });
    open.push(stomp);
    const sub = await stomp.subscribe('/user/queue/notifications');
    const producer = newTraceparent();
    const ids = [uid('evt'), uid('evt'), uid('evt')];
    for (const id of ids) {
      await publish(srv, event(id, { users: [user] }), { headers: { traceparent: producer.traceparent } });
    }
    const msgs = await sub.messages.waitFor((ms) => ids.every((id) => ms.some((m) => m.body && m.body.event_id === id)));
    for (const id of ids) {
      const tp = parseTraceparent(msgs.find((m) => m.body.event_id === id).headers.traceparent);
      assert.ok(tp, `${id}: a traceparent`);
      assert.equal(tp.traceId, producer.traceId, 'same trace');
      assert.notEqual(tp.parentId, producer.spanId, "the server's own span");
    }
  } finally {
    const stopped = await srv.stop();
    assert.equal(stopped.code, 0, `SIGTERM exits 0 with the receiver unreachable: ${JSON.stringify(stopped)}`);
    assert.ok(stopped.ms < 10_000, `within 10 s (${stopped.ms} ms)`);
    for (const sock of sockets) sock.destroy();
    blackhole.close();
  }
});
