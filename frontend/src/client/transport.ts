import { Client, TickerStrategy, type IMessage } from '@stomp/stompjs'
import type { Notification } from './types'

export const USER_QUEUE = '/user/queue/notifications'

export interface ConnectionParams {
  /** ws(s) URL of `/notify` (no credentials in it). */
  url: string
  /** Sent as the CONNECT frame's `Authorization: Bearer` header. */
  token: string | null
  /** Resume after this cursor (SUBSCRIBE header `since`). */
  since: string | null
  heartbeatMs: number
  connectTimeoutMs: number
  /**
   * Send heart-beats from a Worker. Browsers throttle a hidden tab's timers (Chrome: to one
   * wake-up a minute after five minutes hidden), so heart-beats from the page lapse, the server
   * drops the session after twice the interval, and the tab reconnects over and over. Worker
   * timers are not throttled that way.
   */
  heartbeatInWorker?: boolean
}

export interface ConnectionHandlers {
  /** CONNECTED received and the subscription sent. */
  onConnected(): void
  onNotification(n: Notification): void
  /** ERROR frame (the server closes the socket right after). */
  onStompError(message: string, body: string): void
  /** The socket is gone (after an error, a server close, a timeout or a lost network). */
  onClosed(info: { code?: number; reason?: string }): void
}

export interface Connection {
  close(): void
}

export type ConnectionFactory = (params: ConnectionParams, handlers: ConnectionHandlers) => Connection

/** Parses a MESSAGE body; the id falls back to the `message-id` header (= notification id). */
export function parseNotification(body: string, messageId?: string): Notification | null {
  let n: unknown
  try {
    n = JSON.parse(body)
  } catch {
    return null
  }
  if (!n || typeof n !== 'object' || Array.isArray(n)) return null
  const obj = n as Notification
  if (typeof obj.id !== 'string' || !obj.id) {
    if (!messageId) return null
    obj.id = messageId
  }
  if (typeof obj.created_at !== 'string') obj.created_at = new Date().toISOString()
  obj.read = !!obj.read
  return obj
}

/** STOMP 1.2 over WebSocket with @stomp/stompjs: one connection attempt, no internal reconnects. */
export const stompConnection: ConnectionFactory = (params, handlers) => {
  let closed = false
  // Watchdog in case the socket never even opens (e.g. the WebSocket constructor throws inside
  // stompjs' async connect, which would otherwise leave us waiting forever).
  const watchdog = setTimeout(() => {
    if (closed) return
    closed = true
    void client.deactivate()
    handlers.onClosed({ reason: 'connect timeout' })
  }, params.connectTimeoutMs + 2000)
  const client = new Client({
    brokerURL: params.url,
    connectHeaders: params.token ? { Authorization: `Bearer ${params.token}` } : {},
    reconnectDelay: 0,
    heartbeatIncoming: params.heartbeatMs,
    heartbeatOutgoing: params.heartbeatMs,
    heartbeatStrategy: params.heartbeatInWorker ? TickerStrategy.Worker : TickerStrategy.Interval,
    connectionTimeout: params.connectTimeoutMs,
    debug: () => {},
    onConnect: () => {
      clearTimeout(watchdog)
      if (closed) return
      const headers: Record<string, string> = {}
      if (params.since) headers.since = params.since
      client.subscribe(
        USER_QUEUE,
        (msg: IMessage) => {
          if (closed) return
          const n = parseNotification(msg.body, msg.headers['message-id'])
          if (n) handlers.onNotification(n)
        },
        headers,
      )
      handlers.onConnected()
    },
    onStompError: (frame) => {
      if (!closed) handlers.onStompError(frame.headers.message ?? '', frame.body ?? '')
    },
    onWebSocketClose: (evt: CloseEvent) => {
      clearTimeout(watchdog)
      if (closed) return
      closed = true
      void client.deactivate()
      handlers.onClosed({ code: evt?.code, reason: evt?.reason })
    },
  })
  try {
    client.activate()
  } catch (e) {
    clearTimeout(watchdog)
    closed = true
    queueMicrotask(() => handlers.onClosed({ reason: e instanceof Error ? e.message : String(e) }))
  }
  return {
    close() {
      clearTimeout(watchdog)
      if (closed) return
      closed = true
      void client.deactivate()
    },
  }
}

let workerProbe: Promise<boolean> | null = null

/**
 * Whether this page may run stompjs' heart-beat Worker (a `blob:` script). A page whose
 * Content-Security-Policy forbids `blob:` workers gets no error from `new Worker`, only a Worker
 * that never ticks, which would lose every session after 20 s; so a Worker is used only after
 * one has answered here. Asked once per page.
 */
export function workerHeartbeatsUsable(timeoutMs = 1000): Promise<boolean> {
  if (workerProbe) return workerProbe
  workerProbe = new Promise<boolean>((resolve) => {
    if (typeof Worker === 'undefined' || typeof Blob === 'undefined' || typeof URL?.createObjectURL !== 'function') {
      resolve(false)
      return
    }
    let w: Worker | null = null
    let url: string | null = null
    const done = (ok: boolean) => {
      clearTimeout(timer)
      w?.terminate()
      if (url) URL.revokeObjectURL(url)
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    try {
      url = URL.createObjectURL(new Blob(['setTimeout(function(){self.postMessage(1)},0)'], { type: 'text/javascript' }))
      w = new Worker(url)
      w.onmessage = () => done(true)
      w.onerror = () => done(false)
    } catch {
      done(false)
    }
  })
  return workerProbe
}
