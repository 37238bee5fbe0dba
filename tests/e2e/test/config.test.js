// Configuration: demo mode, the groups claim name, and start-up errors that name the variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, runExpectingExit } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { StompSession, openStomp } from '../lib/stomp.js';
import { api, event, publish } from '../lib/http.js';
import { uid } from '../lib/util.js';

test('demo mode: no JWT key set → demo secret and key, /demo served', async () => {
  const server = await startServer({ name: 'demo', env: { NOTIFY_JWT_SECRET: null, NOTIFY_PUBLISH_KEY: null } });
  try {
    const page = await api(server, '/demo');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') || '', /text\/html/);
    const user = uid('demo');
    const s = await openStomp(server, { token: token(user, [], { secret: 'notify-demo-secret' }), via: 'query' });
    const q = await s.subscribe('/user/queue/notifications');
    await publish(server, event(uid('d'), { users: [user] }), { apiKey: 'notify-demo-key' });
    await q.messages.waitFor(1);
    await s.close();
    const wrong = await api(server, '/api/notifications', { token: token(user) }); // signed with e2e-secret
    assert.equal(wrong.status, 401);
    assert.match(server.logs(), /demo/i, 'a loud warning about demo mode');
  } finally {
    await server.stop();
  }
});

test('/demo is not served outside demo mode', async () => {
  const server = await startServer({ name: 'nodemo' });
  try {
    const page = await api(server, '/demo');
    assert.equal(page.status, 404);
  } finally {
    await server.stop();
  }
});

test('NOTIFY_JWT_GROUPS_CLAIM names the claim that lists groups', async () => {
  const server = await startServer({ name: 'claim', env: { NOTIFY_JWT_GROUPS_CLAIM: 'roles' } });
  try {
    const group = uid('g');
    const user = uid('r');
    const ok = await openStomp(server, { token: token(user, [], { extra: { roles: [group] } }), via: 'query' });
    const t = await ok.subscribe(`/topic/groups.${group}`);
    assert.deepEqual(ok.receiptsMissing, []);
    await publish(server, event(uid('e'), { groups: [group] }));
    await t.messages.waitFor(1);
    await ok.close();
    const s = new StompSession(server, { token: token(user, [group]), via: 'query' });
    await s.connect();
    s.client.subscribe(`/topic/groups.${group}`, () => {}, { id: 'x' });
    await s.errors.waitFor(1);
    await s.close();
  } finally {
    await server.stop();
  }
});

const misconfigurations = [
  ['NOTIFY_RULES', '/nonexistent/rules.toml'],
  ['NOTIFY_JWT_PUBLIC_KEY_FILE', '/nonexistent/key.pem'],
  ['NOTIFY_SESSION_QUEUE', 'lots'],
  ['NOTIFY_RETENTION', 'forever'],
  ['NOTIFY_LISTEN', 'not-an-address'],
  ['NOTIFY_MONGO_URI', 'not a uri'],
];
for (const [name, value] of misconfigurations) {
  test(`a bad ${name} stops start-up with one line naming the variable`, async () => {
    const env = { [name]: value };
    if (name === 'NOTIFY_JWT_PUBLIC_KEY_FILE') env.NOTIFY_JWT_SECRET = null;
    const r = await runExpectingExit(env);
    assert.ok(!r.timedOut, `still running after 15 s; output: ${r.output.slice(-500)}`);
    assert.notEqual(r.code, 0, 'non-zero exit');
    assert.ok(r.stderr.includes(name) || r.output.includes(name), `output names ${name}: ${r.output.slice(-500)}`);
  });
}
