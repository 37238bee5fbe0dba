// W3C trace context helpers for the trace tests.
import { randomBytes } from 'node:crypto';

/** A fresh sampled `traceparent` as a producer would send it: { traceparent, traceId, spanId }. */
export function newTraceparent() {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceparent: `00-${traceId}-${spanId}-01`, traceId, spanId };
}

/** Splits a `traceparent` into { version, traceId, parentId, flags }, or null if malformed. */
export function parseTraceparent(value) {
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value || '');
  return m ? { version: m[1], traceId: m[2], parentId: m[3], flags: m[4] } : null;
}
