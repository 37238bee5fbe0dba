// A raw STOMP-over-WebSocket client for what stompjs will not send
// (malformed and oversized frames) and for the paused slow consumer.
import WebSocket from 'ws';
import { Collector, WAIT_MS, withTimeout } from './util.js';
import { ALL_PROTOCOLS } from './stomp.js';

function unescapeHeader(v) {
  return v.replace(/\\(.)/g, (_, c) => ({ n: '\n', r: '\r', c: ':', '\\': '\\' })[c] ?? `\\${c}`);
}
function escapeHeader(v) {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/:/g, '\\c');
}

/** Encode a frame (STOMP 1.2 header escaping; CONNECT headers are not escaped). */
export function encodeFrame(command, headers = {}, body = '') {
  const esc = command === 'CONNECT' || command === 'STOMP' ? (v) => String(v) : escapeHeader;
  const lines = Object.entries(headers).map(([k, v]) => `${esc(k)}:${esc(v)}`);
  return `${command}\n${lines.join('\n')}${lines.length ? '\n' : ''}\n${body}\0`;
}

export class RawStomp {
  constructor(server, { token, via = 'query', protocols = ALL_PROTOCOLS, wsHeaders = {} } = {}) {
    let url = server.wsUrl;
    const headers = { ...wsHeaders };
    if (token && via === 'query') url += `?access_token=${encodeURIComponent(token)}`;
    if (token && via === 'header') headers.Authorization = `Bearer ${token}`;
    this.token = token;
    this.via = via;
    this.frames = new Collector('frames');
    this.heartbeats = [];
    this.buffer = '';
    this.closeEvent = null;
    this.ws = new WebSocket(url, protocols, { headers });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {});
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeEvent = { code, reason: reason.toString() };
        resolve(this.closeEvent);
      });
    });
    this.ws.on('message', (data) => this.onData(data.toString('utf8')));
  }

  onData(chunk) {
    this.buffer += chunk;
    for (;;) {
      // heart-beats: bare EOLs between frames
      const m = /^(\r?\n)+/.exec(this.buffer);
      if (m) {
        this.heartbeats.push(Date.now());
        this.buffer = this.buffer.slice(m[0].length);
      }
      const nul = this.buffer.indexOf('\0');
      if (nul < 0) return;
      const raw = this.buffer.slice(0, nul);
      this.buffer = this.buffer.slice(nul + 1);
      const sep = raw.search(/\r?\n\r?\n/);
      const head = sep < 0 ? raw : raw.slice(0, sep);
      const text = sep < 0 ? '' : raw.slice(sep).replace(/^\r?\n\r?\n/, '');
      const [command, ...lines] = head.split(/\r?\n/);
      const headers = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = unescapeHeader(line.slice(0, i));
        if (!(k in headers)) headers[k] = unescapeHeader(line.slice(i + 1));
      }
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      this.frames.push({ command, headers, text, body, at: Date.now() });
    }
  }

  get protocol() {
    return this.ws.protocol;
  }

  sendRaw(text) {
    this.ws.send(text);
  }

  frame(command, headers = {}, body = '') {
    this.ws.send(encodeFrame(command, headers, body));
  }

  /** Wait for the next frame (after index `from`) with this command. */
  async next(command, { from = 0, timeout = WAIT_MS } = {}) {
    const items = await this.frames.waitFor(
      (fs) => fs.slice(from).some((f) => f.command === command),
      timeout,
      `${command} frame`,
    );
    return items.slice(from).find((f) => f.command === command);
  }

  /** Open, send CONNECT (with the token if via 'connect') and wait for CONNECTED or ERROR. */
  async connect({ heartBeat = '0,0', headers = {}, timeout = WAIT_MS } = {}) {
    await withTimeout(this.opened, timeout, 'websocket open');
    const h = { 'accept-version': '1.2,1.1,1.0', 'heart-beat': heartBeat, ...headers };
    if (this.token && this.via === 'connect') h.Authorization = `Bearer ${this.token}`;
    const from = this.frames.items.length;
    this.frame('CONNECT', h);
    await this.frames.waitFor((fs) => fs.slice(from).some((f) => f.command === 'CONNECTED' || f.command === 'ERROR'), timeout, 'CONNECTED or ERROR');
    const f = this.frames.items.slice(from).find((x) => x.command === 'CONNECTED' || x.command === 'ERROR');
    if (f.command === 'ERROR') throw Object.assign(new Error(`ERROR: ${f.headers.message} ${f.text}`), { frame: f });
    return f;
  }

  /** SUBSCRIBE with a receipt and wait for it. */
  async subscribe(destination, id, headers = {}, timeout = WAIT_MS) {
    const receipt = `r-${id}`;
    const from = this.frames.items.length;
    this.frame('SUBSCRIBE', { destination, id, receipt, ...headers });
    await this.frames.waitFor(
      (fs) => fs.slice(from).some((f) => (f.command === 'RECEIPT' && f.headers['receipt-id'] === receipt) || f.command === 'ERROR'),
      timeout,
      `RECEIPT ${receipt}`,
    );
    const err = this.frames.items.slice(from).find((f) => f.command === 'ERROR');
    if (err) throw Object.assign(new Error(`ERROR: ${err.headers.message} ${err.text}`), { frame: err });
  }

  waitClosed(timeout = WAIT_MS) {
    return withTimeout(this.closed, timeout, 'the socket to close').catch(() => null);
  }

  messages() {
    return this.frames.items.filter((f) => f.command === 'MESSAGE');
  }

  close() {
    try {
      this.ws.terminate();
    } catch {
      /* ignore */
    }
  }
}

export async function openRaw(server, opts = {}, connectOpts = {}) {
  const c = new RawStomp(server, opts);
  try {
    await c.connect(connectOpts);
  } catch (e) {
    c.close();
    throw e;
  }
  return c;
}

/**
 * A WebSocket handshake that the server is expected to refuse with an HTTP answer instead of
 * `101`. Resolves with { status, headers, text, json }; rejects if the socket opens.
 */
export function refusedUpgrade(server, { token, via = 'header', protocols = ALL_PROTOCOLS } = {}) {
  let url = server.wsUrl;
  const headers = {};
  if (token && via === 'query') url += `?access_token=${encodeURIComponent(token)}`;
  if (token && via === 'header') headers.Authorization = `Bearer ${token}`;
  const ws = new WebSocket(url, protocols, { headers });
  return withTimeout(new Promise((resolve, reject) => {
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the WebSocket upgrade was accepted'));
    });
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
  }), WAIT_MS, 'the refused upgrade answer');
}
