// Rules (NOTIFY_RULES): bare business events get recipients and texts from templates.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { publish, inbox, errorBody } from '../lib/http.js';
import { uid, eventually, sleep } from '../lib/util.js';

const ADMINS = uid('purchasing-admins');
let server;
before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'notify-e2e-rules-'));
  const file = join(dir, 'rules.toml');
  writeFileSync(file, `
[[rule]]
type = "purchase.requested"
to_groups = ["${ADMINS}"]
to_users = ["{data.approver}"]
title = "New purchase request"
message = "{data.requester} requested {data.item}"
link = "/purchases/{data.purchaseId}"

[[rule]]
type = "invoice.*"
to_users = ["{data.owner}"]
title = "Invoice {data.number}"
message = "Invoice event {type}"
`);
  server = await startServer({ name: 'rules', env: { NOTIFY_RULES: file } });
});
after(async () => {
  if (server) await server.stop();
});

async function findFor(user, groups, eventId) {
  return eventually(async () => (await inbox(server, token(user, groups), 'limit=200')).items.filter((x) => x.event_id === eventId).length && (await inbox(server, token(user, groups), 'limit=200')).items.filter((x) => x.event_id === eventId), { what: `${eventId} for ${user}` });
}

test('a bare event gets recipients, title, message and link from its rule', async () => {
  const approver = uid('approver');
  const member = uid('member');
  const id = uid('pr');
  const r = await publish(server, { id, type: 'purchase.requested', data: { approver, requester: 'bob', item: 'laptop', purchaseId: 42 } });
  assert.equal(r.json.accepted, 1);
  const [mine] = await findFor(approver, [], id);
  assert.deepEqual(mine.audience, { kind: 'user', id: approver });
  assert.equal(mine.title, 'New purchase request');
  assert.equal(mine.message, 'bob requested laptop');
  assert.equal(mine.link, '/purchases/42');
  assert.equal(mine.priority, 'normal');
  const [grp] = await findFor(member, [ADMINS], id);
  assert.deepEqual(grp.audience, { kind: 'group', id: ADMINS });
});

test('a prefix glob rule matches, and templates read top-level event fields', async () => {
  const owner = uid('owner');
  const id = uid('inv');
  await publish(server, { id, type: 'invoice.paid', data: { owner, number: 'INV-7' } });
  const [n] = await findFor(owner, [], id);
  assert.equal(n.title, 'Invoice INV-7');
  assert.equal(n.message, 'Invoice event invoice.paid');
});

test('explicit fields in the event win over the rule', async (t) => {
  const approver = uid('approver');
  const explicit = uid('explicit');
  const id = uid('pr');
  await publish(server, {
    id,
    type: 'purchase.requested',
    recipients: { users: [explicit] },
    title: 'Custom title',
    data: { approver, requester: 'eve', item: 'desk', purchaseId: 7 },
  });
  const [n] = await findFor(explicit, [], id);
  assert.equal(n.title, 'Custom title');
  assert.equal(n.message, 'eve requested desk', 'fields the event leaves out still come from the rule');
  await sleep(300);
  const approverGot = (await inbox(server, token(approver), 'limit=200')).items.some((x) => x.event_id === id);
  t.diagnostic(`explicit recipients ${approverGot ? 'were merged with' : 'replaced'} the rule's recipients`);
});

test('a template naming a missing field is a 400 for that event, not an empty string', async () => {
  const id = uid('pr');
  const r = await publish(server, { id, type: 'purchase.requested', data: { requester: 'bob', item: 'laptop', purchaseId: 1 } }, { expect: null });
  assert.equal(r.status, 400, `${r.status} ${r.text}`);
  const e = errorBody(r);
  assert.ok(`${e.field} ${e.message}`.includes('approver'), `the error should name data.approver: ${JSON.stringify(e)}`);
});

test('an event whose type has no rule still needs its own recipients and texts', async () => {
  const r = await publish(server, { id: uid('x'), type: 'unrelated.thing', data: {} }, { expect: null });
  assert.equal(r.status, 400, `${r.status} ${r.text}`);
  errorBody(r);
});
