// A Server-Sent Events reader over fetch: collects events and comment lines.
import { Collector, WAIT_MS, withTimeout } from './util.js';

export class SseStream {
  constructor(server, { token, via = 'query', lastEventId, since, headers = {} } = {}) {
    const params = new URLSearchParams();
    if (token && via === 'query') params.set('access_token', token);
    if (since) params.set('since', since);
    const h = { Accept: 'text/event-stream', ...headers };
    if (token && via === 'header') h.Authorization = `Bearer ${token}`;
    if (lastEventId) h['Last-Event-ID'] = lastEventId;
    this.url = `${server.base}/api/stream${params.size ? `?${params}` : ''}`;
    this.headers = h;
    this.events = new Collector('SSE events');
    this.comments = [];
    this.abort = new AbortController();
    this.ended = false;
  }

  /** Open the stream; resolves with the Response (status and headers) once headers arrive. */
  async open(timeout = WAIT_MS) {
    const res = await withTimeout(fetch(this.url, { headers: this.headers, signal: this.abort.signal }), timeout, `SSE response from ${this.url}`);
    this.response = res;
    if (res.status === 200 && res.body) this.pump(res.body);
    return res;
  }

  async pump(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let ev = { event: 'message', data: [], id: undefined, traceparent: undefined };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (ev.data.length || ev.id !== undefined || ev.event !== 'message') {
              const text = ev.data.join('\n');
              let json;
              try {
                json = JSON.parse(text);
              } catch {
                json = undefined;
              }
              this.events.push({ event: ev.event, id: ev.id, traceparent: ev.traceparent, text, body: json, event_id: json && json.event_id, at: Date.now() });
            }
            ev = { event: 'message', data: [], id: undefined, traceparent: undefined };
          } else if (line.startsWith(':')) {
            this.comments.push({ text: line.slice(1), at: Date.now() });
          } else {
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            let val = i < 0 ? '' : line.slice(i + 1);
            if (val.startsWith(' ')) val = val.slice(1);
            if (field === 'event') ev.event = val;
            else if (field === 'data') ev.data.push(val);
            else if (field === 'id') ev.id = val;
            else if (field === 'traceparent') ev.traceparent = val;
          }
        }
      }
    } catch {
      /* aborted */
    } finally {
      this.ended = true;
    }
  }

  close() {
    this.abort.abort();
  }
}

export async function openSse(server, opts) {
  const s = new SseStream(server, opts);
  const res = await s.open();
  if (res.status !== 200) {
    const text = await res.text().catch(() => '');
    s.close();
    throw new Error(`GET /api/stream answered ${res.status}: ${text.slice(0, 300)}`);
  }
  return s;
}
