// The fault suite's harness: a steady stream of events (personal, group and broadcast) published
// over HTTP, received by real stompjs clients that move to another server and resume with
// `since` when theirs goes away; then the figures: lost, duplicates, how long pushes paused.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { startServer, REPO_ROOT, E2E_DIR, PUBLISH_KEY } from '../lib/server.js';
import { token } from '../lib/jwt.js';
import { StompSession } from '../lib/stomp.js';
import { api, event } from '../lib/http.js';
import { sleep, uid } from '../lib/util.js';

export const CLUSTER = process.env.NOTIFY_TEST_KAFKA_CLUSTER;
export const CLUSTER_STATE = process.env.NOTIFY_TEST_KAFKA_CLUSTER_STATE;
export const MONGO = process.env.NOTIFY_TEST_MONGO;
export const FERRETDB_STATE = process.env.NOTIFY_TEST_FERRETDB_STATE;

/** Run a project script (scripts/NAME ARGS...); resolves with its stdout, rejects on failure. */
export function script(name, ...args) {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [join(REPO_ROOT, 'scripts', name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; process.stderr.write(d); });
    p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${name} ${args.join(' ')} exited ${code}: ${err.slice(-800)}`))));
  });
}

/** Two (or n) example servers on one topic and one database: the production configuration. */
export async function startCluster(name, { instances = 2, env = {} } = {}) {
  const topic = uid(`faults-${name}`).replace(/[^A-Za-z0-9._-]/g, '-');
  const db = uid(`faults_${name}`).replace(/[^A-Za-z0-9_]/g, '_');
  const common = {
    NOTIFY_KAFKA_BROKERS: CLUSTER,
    NOTIFY_KAFKA_TOPIC: topic,
    NOTIFY_MONGO_URI: MONGO,
    NOTIFY_MONGO_DB: db,
    ...env,
  };
  const servers = [];
  for (let i = 0; i < instances; i++) {
    servers.push(await startServer({ name: `${name}-${i}`, env: { ...common, NOTIFY_INSTANCE_ID: `${name}-${i}` }, readyTimeoutMs: 90_000 }));
  }
  return { topic, db, servers };
}

/**
 * A user's client: a stompjs session on one of `servers` (starting at `home`), subscribed to
 * the user queue. When its socket closes without being asked to, it moves to the next live
 * server and resumes with `since` = the last cursor it saw, as the widget does.
 */
export class Client {
  constructor(user, groups, servers, home) {
    this.user = user;
    this.tok = token(user, groups);
    this.servers = servers;
    this.at = home;
    this.byId = new Map(); // notification id -> first arrival
    this.frames = 0; // MESSAGE frames including repeats
    this.arrivals = []; // { t, id, eventId }
    this.lastCursor = null;
    this.closing = false;
    this.moves = []; // { t, from, to, resumedAt }
    this.session = null;
  }

  /** Records one MESSAGE (called from the subscription callback). */
  record(msg) {
    this.frames += 1;
    const n = msg.body;
    if (!n) return;
    if (!this.byId.has(n.id)) {
      const t = Date.now();
      this.byId.set(n.id, { t, eventId: n.event_id, audience: n.audience });
      this.arrivals.push({ t, id: n.id, eventId: n.event_id });
    }
    this.lastCursor = n.cursor;
  }

  async onClosed(s) {
    if (this.closing || s !== this.session) return;
    const t = Date.now();
    const from = this.at;
    for (let attempt = 0; attempt < 60 && !this.closing; attempt++) {
      this.at = (this.at + 1) % this.servers.length;
      const server = this.servers[this.at];
      if (server.exited && server.exited()) continue;
      try {
        await this.connectAndSubscribe(this.lastCursor);
        this.moves.push({ t, from, to: this.at, resumedAt: Date.now() });
        return;
      } catch {
        await sleep(250);
      }
    }
  }

  async connectAndSubscribe(since) {
    const server = this.servers[this.at];
    const s = new StompSession(server, { token: this.tok, via: 'query', heartbeat: [10000, 10000] });
    await s.connect(15_000);
    this.session = s;
    const headers = { id: uid('sub') };
    if (since) headers.since = since;
    await new Promise((resolve, reject) => {
      const rid = uid('rcpt');
      s.client.watchForReceipt(rid, resolve);
      s.client.subscribe('/user/queue/notifications', (f) => {
        let body;
        try { body = JSON.parse(f.body); } catch { body = undefined; }
        this.record({ headers: f.headers, body });
      }, { ...headers, receipt: rid });
      setTimeout(() => reject(new Error('no RECEIPT for SUBSCRIBE')), 15_000);
    });
    s.closed.then(() => this.onClosed(s));
    return s;
  }

  async close() {
    this.closing = true;
    if (this.session) await this.session.close().catch(() => {});
  }
}

/** Opens one client per user, spread round-robin over the servers. */
export async function openClients(servers, users, groups) {
  const clients = users.map((u, i) => new Client(u, groups, servers, i % servers.length));
  for (const c of clients) await c.connectAndSubscribe(null);
  return clients;
}

/**
 * Publishes a steady stream: every `intervalMs` one event, in turn personal (to the next
 * user), for the group, personal, broadcast... Each POST goes to a live server and is
 * retried (same id) until accepted; `t` is when it was first sent.
 */
export class Stream {
  constructor(servers, users, group, { intervalMs = 50 } = {}) {
    this.servers = servers;
    this.users = users;
    this.group = group;
    this.intervalMs = intervalMs;
    this.sent = []; // { id, t, to, acceptedAt, attempts }
    this.inFlight = new Set();
    this.n = 0;
    this.timer = null;
    this.prefix = uid('f');
  }

  start() {
    this.timer = setInterval(() => this.one(), this.intervalMs);
  }

  async stop() {
    clearInterval(this.timer);
    const deadline = Date.now() + 90_000;
    while (this.inFlight.size && Date.now() < deadline) await sleep(100);
    if (this.inFlight.size) throw new Error(`${this.inFlight.size} publishes never accepted`);
  }

  one() {
    const i = this.n++;
    let to;
    switch (i % 6) {
      case 1: to = { groups: [this.group] }; break;
      case 4: to = { broadcast: true }; break;
      default: to = { users: [this.users[i % this.users.length]] };
    }
    const rec = { id: `${this.prefix}-${i}`, t: Date.now(), to, acceptedAt: null, attempts: 0 };
    this.sent.push(rec);
    this.inFlight.add(rec.id);
    this.publish(rec, i).finally(() => this.inFlight.delete(rec.id));
  }

  async publish(rec, i) {
    for (;;) {
      const live = this.servers.filter((s) => !(s.exited && s.exited()));
      const server = live[(i + rec.attempts) % live.length];
      rec.attempts += 1;
      try {
        const res = await api(server, '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: event(rec.id, rec.to), timeout: 60_000 });
        if (res.status === 202) {
          rec.acceptedAt = Date.now();
          return;
        }
      } catch {
        // the server went away mid-request: retry elsewhere with the same id
      }
      await sleep(200);
    }
  }

  /** Event ids a user should get. */
  expectedFor(user) {
    return this.sent.filter((r) => r.acceptedAt && (r.to.broadcast || (r.to.groups && r.to.groups.includes(this.group)) || (r.to.users && r.to.users.includes(user)))).map((r) => r.id);
  }
}

/** Waits until every client has every event it should get (bounded); returns what is missing. */
export async function drain(stream, clients, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = {};
    for (const c of clients) {
      const got = new Set([...c.byId.values()].map((x) => x.eventId));
      const miss = stream.expectedFor(c.user).filter((id) => !got.has(id));
      if (miss.length) missing[c.user] = miss;
    }
    if (!Object.keys(missing).length || Date.now() > deadline) return missing;
    await sleep(250);
  }
}

/**
 * The figures of one run: per event, delivery latency = first arrival at any client that
 * should get it minus when it was first sent; the longest of these in the fault window is how
 * long pushes paused. Also the longest silence at the clients and the repeats.
 */
export function figures(stream, clients, window) {
  const first = new Map();
  for (const c of clients) {
    for (const a of c.arrivals) {
      const prev = first.get(a.eventId);
      if (prev === undefined || a.t < prev) first.set(a.eventId, a.t);
    }
  }
  const lat = [];
  let worst = { ms: 0, id: null };
  for (const r of stream.sent) {
    if (!r.acceptedAt || !first.has(r.id)) continue;
    const ms = first.get(r.id) - r.t;
    lat.push(ms);
    if (r.t >= window.from && r.t <= window.to && ms > worst.ms) worst = { ms, id: r.id };
  }
  lat.sort((a, b) => a - b);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.round((p / 100) * (lat.length - 1)))] : null);
  // Longest time without any new notification at all clients together, inside the window.
  const times = clients.flatMap((c) => c.arrivals.map((a) => a.t)).filter((t) => t >= window.from && t <= window.to + 60_000).sort((a, b) => a - b);
  let silence = 0;
  for (let i = 1; i < times.length; i++) silence = Math.max(silence, times[i] - times[i - 1]);
  const frames = clients.reduce((n, c) => n + c.frames, 0);
  const unique = clients.reduce((n, c) => n + c.byId.size, 0);
  return {
    events: stream.sent.length,
    notifications_received: unique,
    repeats_before_dedup: frames - unique,
    latency_p50_ms: pct(50),
    latency_p99_ms: pct(99),
    paused_ms: worst.ms,
    longest_silence_ms: silence,
  };
}

/** Every expected event is in the user's inbox exactly once (REST, all pages). */
export async function inboxCheck(server, stream, client, timeoutMs = 60_000) {
  const expected = new Set(stream.expectedFor(client.user));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = new Map();
    let cursor = null;
    let ok = true;
    for (let page = 0; page < 100; page++) {
      const q = `limit=200${cursor ? `&before=${encodeURIComponent(cursor)}` : ''}`;
      const res = await api(server, `/api/notifications?${q}`, { token: client.tok }).catch(() => null);
      if (!res || res.status !== 200) { ok = false; break; }
      for (const n of res.json.items) {
        if (expected.has(n.event_id)) seen.set(n.event_id, (seen.get(n.event_id) || 0) + 1);
      }
      cursor = res.json.next_cursor;
      if (!cursor) break;
    }
    const missing = [...expected].filter((id) => !seen.has(id));
    const duplicated = [...seen].filter(([, k]) => k > 1).map(([id]) => id);
    if (ok && !missing.length) return { missing, duplicated };
    if (Date.now() > deadline) return { missing, duplicated, ok };
    await sleep(500);
  }
}

/** Publishes warm-up events until every client received one (the fan-outs are running). */
export async function warmUp(servers, clients) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pending = clients.filter((c) => c.byId.size === 0);
    if (!pending.length) return;
    if (Date.now() > deadline) throw new Error(`warm-up: ${pending.length} clients got nothing`);
    await api(servers[0], '/api/events', { method: 'POST', apiKey: PUBLISH_KEY, body: event(uid('warm'), { broadcast: true }) });
    await sleep(500);
  }
}

/** Appends one fault's figures to artifacts/faults.jsonl and prints them. */
export function report(fault, data) {
  const line = JSON.stringify({ fault, at: new Date().toISOString(), ...data });
  const dir = join(E2E_DIR, 'artifacts');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'faults.jsonl'), `${line}\n`);
  console.log(`FAULT-FIGURES ${line}`);
}

