// SIGTERM: sessions are closed with a reconnect hint and the process exits 0 within 10 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { openStomp } from '../lib/stomp.js';
import { openSse } from '../lib/sse.js';
import { uid } from '../lib/util.js';

test('SIGTERM closes sessions and exits 0 within 10 s', { timeout: 30_000 }, async (t) => {
  const server = await startServer({ name: 'shutdown' });
  let s;
  let sse;
  try {
    s = await openStomp(server, { token: token(uid('u')), via: 'query' });
    await s.subscribe('/user/queue/notifications');
    sse = await openSse(server, { token: token(uid('v')) });
    const res = await server.stop(12_000);
    assert.equal(res.killed, undefined, 'had to SIGKILL the server');
    assert.equal(res.code, 0, `exit ${JSON.stringify(res)}`);
    assert.ok(res.ms <= 10_000, `took ${res.ms} ms`);
    const close = await s.waitClosed(2000);
    assert.ok(close, 'the STOMP session was closed');
    if (s.errors.items.length) t.diagnostic(`ERROR before close: ${JSON.stringify(s.errors.items[0].headers)}`);
    else t.diagnostic(`no ERROR frame before close; close ${JSON.stringify(close)}`);
  } finally {
    if (sse) sse.close();
    if (s) await s.close();
    await server.stop(1000);
  }
});
