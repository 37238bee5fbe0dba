// Trace context without an exporter: a producer's W3C `traceparent` (POST /api/events request
// header) reaches the STOMP MESSAGE frame and the SSE event unchanged; the JSON log lines of
// an event's path carry its id as a field. (With an OTLP exporter: tests/e2e/traces/.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, runExpectingExit } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { openSse } from '../lib/sse.js';
import { event, publish } from '../lib/http.js';
import { newTraceparent } from '../lib/trace.js';
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
