// Assertions shared by several test files.
import assert from 'node:assert/strict';
import { event, publish } from './http.js';
import { uid } from './util.js';

/**
 * A refused STOMP attempt (result of StompSession.attempt or equivalent):
 * an ERROR frame, never CONNECTED/served, then the socket closed.
 * `mention` (optional) must appear in the ERROR's message header or body.
 */
export function assertErrorThenClose(res, { mention, what = 'the session' } = {}) {
  assert.ok(res.error, `${what}: expected an ERROR frame; got first=${res.first}, close=${JSON.stringify(res.close)}`);
  assert.ok(res.close, `${what}: expected the server to close the socket after the ERROR frame`);
  if (mention) {
    const text = `${res.error.headers.message || ''}\n${res.error.text || ''}`;
    assert.ok(text.includes(mention), `${what}: ERROR frame should name ${JSON.stringify(mention)}; got message=${JSON.stringify(res.error.headers.message)} body=${JSON.stringify(res.error.text)}`);
  }
}

/** Publish a personal event to `user` and expect it on `sub` (a stompjs subscription). */
export async function assertPersonalDelivery(server, sub, user) {
  const id = uid('evt-probe');
  await publish(server, event(id, { users: [user] }));
  const items = await sub.messages.waitFor((ms) => ms.some((m) => m.body && m.body.event_id === id), undefined, `push of ${id} to ${user}`);
  return items.find((m) => m.body.event_id === id);
}
