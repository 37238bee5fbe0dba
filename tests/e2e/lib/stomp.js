// A real STOMP client: @stomp/stompjs over the `ws` package, the way a browser widget uses it.
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { Collector, WAIT_MS, uid, withTimeout } from './util.js';

export const ALL_PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

/** Parse a MESSAGE frame from stompjs into { headers, text, body }. */
function toMessage(frame) {
  let body;
  try {
    body = JSON.parse(frame.body);
  } catch {
    body = undefined;
  }
  return { headers: { ...frame.headers }, text: frame.body, body };
}

/**
 * One stompjs session. `via` says where the token goes: 'query' (?access_token=),
 * 'header' (handshake Authorization), 'connect' (CONNECT frame Authorization), or 'none'.
 */
export class StompSession {
  constructor(server, { token, via = 'query', connectHeaders = {}, heartbeat = [10000, 10000], protocols = ALL_PROTOCOLS, wsHeaders = {}, debug = false } = {}) {
    this.server = server;
    this.errors = new Collector('ERROR frames');
    this.unhandled = new Collector('unhandled frames');
    this.receiptsMissing = [];
    let url = server.wsUrl;
    const headers = { ...wsHeaders };
    const stompHeaders = { ...connectHeaders };
    if (token && via === 'query') url += `?access_token=${encodeURIComponent(token)}`;
    if (token && via === 'header') headers.Authorization = `Bearer ${token}`;
    if (token && via === 'connect') stompHeaders.Authorization = `Bearer ${token}`;
    this.url = url;
    this.closeEvent = null;
    this.closed = new Promise((resolve) => {
      this._resolveClosed = resolve;
    });
    this.connectedFrame = null;
    this.connected = new Promise((resolve, reject) => {
      this._resolveConnected = resolve;
      this._rejectConnected = reject;
    });
    this.connected.catch(() => {});
    this.client = new Client({
      webSocketFactory: () => {
        this.ws = new WebSocket(url, protocols, { headers });
        return this.ws;
      },
      connectHeaders: stompHeaders,
      heartbeatIncoming: heartbeat[1],
      heartbeatOutgoing: heartbeat[0],
      reconnectDelay: 0,
      debug: debug ? (m) => console.log('[stompjs]', m) : () => {},
      onConnect: (frame) => {
        this.connectedFrame = frame;
        this._resolveConnected(frame);
      },
      onStompError: (frame) => {
        this.errors.push({ command: 'ERROR', headers: { ...frame.headers }, text: frame.body });
        this._rejectConnected(Object.assign(new Error(`ERROR frame: ${frame.headers.message} ${frame.body}`), { frame }));
      },
      onWebSocketError: (e) => {
        this.wsError = e;
        const m = /Unexpected server response: (\d+)/.exec(String((e && e.message) || (e && e.error && e.error.message) || ''));
        if (m) this.handshakeStatus = Number(m[1]);
      },
      onWebSocketClose: (evt) => {
        this.closeEvent = { code: evt.code, reason: evt.reason && evt.reason.toString(), wasClean: evt.wasClean };
        this._rejectConnected(new Error(`websocket closed before CONNECTED (code ${evt.code}${this.handshakeStatus ? `, handshake HTTP ${this.handshakeStatus}` : ''})`));
        this._resolveClosed(this.closeEvent);
      },
      onUnhandledMessage: (frame) => this.unhandled.push(toMessage(frame)),
      onUnhandledReceipt: (frame) => this.unhandled.push({ command: 'RECEIPT', headers: { ...frame.headers } }),
      onUnhandledFrame: (frame) => this.unhandled.push({ command: frame.command, headers: { ...frame.headers } }),
    });
  }

  /** Activate and wait for CONNECTED; throws on ERROR or close. */
  async connect(timeout = WAIT_MS) {
    this.client.activate();
    await withTimeout(this.connected, timeout, `CONNECTED from ${this.url}`);
    return this;
  }

  /**
   * Activate and report what happened instead of throwing: resolves with
   * { connected, error, close } once the socket is closed or the bound runs out.
   */
  async attempt(timeout = WAIT_MS) {
    this.client.activate();
    const first = await withTimeout(
      Promise.race([
        this.connected.then(() => 'connected', () => 'refused'),
        this.errors.waitFor(1, timeout + 1000).then(() => 'error', () => 'none'),
        this.closed.then(() => 'closed'),
      ]),
      timeout,
      'CONNECTED, ERROR or close',
    ).catch(() => 'timeout');
    let close = this.closeEvent;
    if (!close) {
      close = await withTimeout(this.closed, timeout, 'the server to close the socket').catch(() => null);
    }
    return { first, connected: !!this.connectedFrame, error: this.errors.items[0] || null, close };
  }

  /** Wait for the socket to close; resolves with the close event or null on timeout. */
  waitClosed(timeout = WAIT_MS) {
    return withTimeout(this.closed, timeout, 'the socket to close').catch(() => null);
  }

  /** Run `fn(receiptId)` and wait for the RECEIPT. */
  async withReceipt(fn, timeout = WAIT_MS) {
    const id = uid('rcpt');
    const got = new Promise((resolve) => this.client.watchForReceipt(id, (frame) => resolve({ headers: { ...frame.headers } })));
    fn(id);
    return withTimeout(got, timeout, `RECEIPT ${id}`);
  }

  /**
   * SUBSCRIBE and collect MESSAGE frames. By default asks for a receipt and
   * waits for it (so a publish after this call is not racing the SUBSCRIBE);
   * a missing receipt is recorded in `receiptsMissing` rather than thrown.
   */
  async subscribe(destination, headers = {}, { receipt = true, receiptTimeout = 5000 } = {}) {
    const messages = new Collector(`MESSAGEs on ${destination}`);
    const id = headers.id || uid('sub');
    const h = { ...headers, id };
    let sub;
    if (receipt) {
      try {
        await this.withReceipt((rid) => {
          sub = this.client.subscribe(destination, (f) => messages.push(toMessage(f)), { ...h, receipt: rid });
        }, receiptTimeout);
      } catch (e) {
        this.receiptsMissing.push(`${destination}: ${e.message}`);
      }
    } else {
      sub = this.client.subscribe(destination, (f) => messages.push(toMessage(f)), h);
    }
    return { id, destination, messages, unsubscribe: (uh) => sub.unsubscribe(uh) };
  }

  send(destination, body, headers = {}) {
    this.client.publish({ destination, body: typeof body === 'string' ? body : JSON.stringify(body), headers });
  }

  /** DISCONNECT (with receipt, as stompjs does) and close; never hangs. */
  async close(timeout = 3000) {
    try {
      await withTimeout(this.client.deactivate(), timeout, 'deactivate');
    } catch {
      try {
        await this.client.deactivate({ force: true });
      } catch {
        /* ignore */
      }
      if (this.ws) this.ws.terminate();
    }
  }
}

/** Connect a stompjs session (throws if not CONNECTED). */
export async function openStomp(server, opts) {
  const s = new StompSession(server, opts);
  try {
    await s.connect(opts && opts.timeout);
  } catch (e) {
    await s.close().catch(() => {});
    throw e;
  }
  return s;
}

/** Parse a STOMP heart-beat header "x,y" into numbers. */
export function parseHeartBeat(v) {
  const [x, y] = String(v || '0,0').split(',').map((n) => parseInt(n.trim(), 10));
  return [x || 0, y || 0];
}

/**
 * The intervals STOMP 1.2 derives from the client's CONNECT offer [cx, cy]
 * and the server's CONNECTED answer [sx, sy]: { clientToServer, serverToClient } in ms (0 = none).
 */
export function negotiate([cx, cy], [sx, sy]) {
  return {
    clientToServer: cx === 0 || sy === 0 ? 0 : Math.max(cx, sy),
    serverToClient: sx === 0 || cy === 0 ? 0 : Math.max(sx, cy),
  };
}
