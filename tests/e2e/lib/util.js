// Small shared utilities: timeouts, unique names, waiting for conditions.
import { randomBytes } from 'node:crypto';

/** Default bound for any single wait in the suite. */
export const WAIT_MS = Number(process.env.NOTIFY_E2E_WAIT_MS || 10_000);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Reject with a descriptive error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const RUN = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
let counter = 0;
/** A name unique to this run and call: safe as user, group and event id. */
export function uid(prefix = 'x') {
  counter += 1;
  return `${prefix}-${RUN}-${counter}`;
}

/** Poll `fn` until it returns a truthy value (returned) or the bound runs out (throws). */
export async function eventually(fn, { timeout = WAIT_MS, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const detail = lastErr ? `; last error: ${lastErr.message}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await sleep(interval);
  }
}

/**
 * A list that can be awaited: push items, and wait until a predicate over
 * the whole list holds. Used for MESSAGE frames, SSE events, ERROR frames.
 */
export class Collector {
  constructor(name = 'items') {
    this.name = name;
    this.items = [];
    this.waiters = [];
  }
  push(item) {
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => {
      if (w.pred(this.items)) {
        w.resolve(this.items);
        return false;
      }
      return true;
    });
  }
  /** Wait until pred(items) holds; `pred` may be a number (at least that many items). */
  waitFor(pred, timeout = WAIT_MS, what) {
    const p = typeof pred === 'number' ? (items) => items.length >= pred : pred;
    if (p(this.items)) return Promise.resolve(this.items);
    const promise = new Promise((resolve) => this.waiters.push({ pred: p, resolve }));
    return withTimeout(promise, timeout, what || `${this.name} (have ${this.items.length})`).catch((e) => {
      e.message += `; got so far: ${JSON.stringify(this.summary())}`;
      throw e;
    });
  }
  summary() {
    return this.items.map((m) => (m && m.body && m.body.event_id) || (m && m.event_id) || (m && m.command) || m).slice(-30);
  }
}

/** De-duplicate by key, keeping the first occurrence and the order. */
export function dedupe(list, key) {
  const seen = new Set();
  return list.filter((x) => {
    const k = key(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
