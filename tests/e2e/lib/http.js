// REST helpers: JSON requests, publishing events, inbox queries.
import { PUBLISH_KEY } from './server.js';
import { WAIT_MS } from './util.js';

/**
 * One HTTP request. `token` sets Authorization: Bearer; `body` (non-string) is sent as JSON.
 * Resolves with { status, headers, text, json } (json is undefined if the body is not JSON).
 */
export async function api(server, path, { method = 'GET', token, apiKey, body, headers = {}, timeout = WAIT_MS } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (apiKey) h['X-Api-Key'] = apiKey;
  let payload = body;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) {
    payload = JSON.stringify(body);
  }
  if (payload !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) {
    h['Content-Type'] = 'application/json';
  }
  const res = await fetch(server.base + path, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeout) });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Publish one event or an array with the e2e API key (and extra request `headers`); asserts 202 unless `expect` is given. */
export async function publish(server, events, { expect = 202, apiKey = PUBLISH_KEY, headers = {} } = {}) {
  const res = await api(server, '/api/events', { method: 'POST', apiKey, body: events, headers });
  if (expect !== null && res.status !== expect) {
    throw new Error(`POST /api/events answered ${res.status} (expected ${expect}): ${res.text.slice(0, 500)}`);
  }
  return res;
}

/** Build an event; `to` is { users, groups, broadcast }. */
export function event(id, to, extra = {}) {
  return {
    id,
    type: 'e2e.test',
    recipients: to,
    title: `title ${id}`,
    message: `message ${id}`,
    link: `/e2e/${id}`,
    data: { eventId: id },
    priority: 'normal',
    ...extra,
  };
}

export async function inbox(server, token, query = '') {
  const res = await api(server, `/api/notifications${query ? `?${query}` : ''}`, { token });
  if (res.status !== 200) throw new Error(`GET /api/notifications?${query} answered ${res.status}: ${res.text.slice(0, 500)}`);
  return res.json;
}

export async function unreadCount(server, token) {
  const res = await api(server, '/api/notifications/unread-count', { token });
  if (res.status !== 200) throw new Error(`GET unread-count answered ${res.status}: ${res.text.slice(0, 500)}`);
  return res.json.unread_count;
}

/** Assert the contract's error shape; returns the error object. */
export function errorBody(res) {
  const e = res.json && res.json.error;
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') {
    throw new Error(`expected {"error":{"code","message",...}} but got ${res.status} ${res.text.slice(0, 300)}`);
  }
  return e;
}

/**
 * POST /api/events answers 202 once the event is accepted, not stored: wait (bounded) until
 * every event id in `eventIds` is in the user's inbox; resolves with the inbox answer.
 */
export async function waitListed(server, token, eventIds, { timeout = WAIT_MS } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const list = await inbox(server, token, 'limit=200');
    const have = new Set(list.items.map((x) => x.event_id));
    const missing = eventIds.filter((e) => !have.has(e));
    if (!missing.length) return list;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${missing.join(', ')} to be listed`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
