import { Backoff, type BackoffOptions } from './backoff'
import { tokenSubject } from './jwt'
import type { TokenManager } from './token'
import type { Connection, ConnectionFactory } from './transport'
import type { ConnectionState, Notification, NotifyError } from './types'

/**
 * Recognises an authentication failure in a STOMP ERROR frame. The server's messages are not
 * standardised, so this errs on the side of asking the token provider again.
 */
const AUTH_ERROR = /unauthori|authenticat|token|expired|jwt|\b401\b|forbidden|credential/i

/** How a `LiveConnection` reaches the rest of the client. */
export interface LiveConnectionHooks {
  /** Where to resume (SUBSCRIBE `since`): the last cursor seen, or null. */
  since(): string | null
  /** The server refused our resume point: forget it (the REST resync covers the gap). */
  forgetSince(): void
  /** The token belongs to this user (its `sub`). */
  user(sub: string | null): void
  /** CONNECTED and subscribed; `first`: no session was live before; `since`: where it resumed. */
  live(info: { first: boolean; since: string | null }): void
  notification(n: Notification): void
  state(s: ConnectionState): void
  error(e: NotifyError): void
  /** The server the client now talks to changed (REST follows the socket). */
  serverChanged(index: number): void
}

export interface LiveConnectionOptions {
  /** WebSocket URLs to try, primary first (already http→ws mapped, without credentials). */
  urls: readonly string[]
  tokens: TokenManager
  factory: ConnectionFactory
  reconnect?: BackoffOptions
  offlineAfterAttempts?: number
  heartbeatMs?: number
  connectTimeoutMs?: number
  healthyAfterMs?: number
  /** Resolves whether heart-beats may run in a Worker (see `transport.workerHeartbeatsUsable`). */
  heartbeatInWorker?: () => Promise<boolean>
  /** Delay before trying the next server after one failed (default: up to 500 ms, random). */
  failoverDelayMs?: () => number
}

/**
 * The live half of the client: one STOMP session at a time, reconnects with backoff, moves to
 * the next server of the list when one fails, and tells the inbox where it resumed. Knows
 * nothing about notifications beyond handing them on.
 */
export class LiveConnection {
  private readonly opts: LiveConnectionOptions
  private readonly backoff: Backoff
  private conn: Connection | null = null
  private attempt = 0
  private connecting = false
  private everLive = false
  private current: ConnectionState = 'idle'
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private healthyTimer: ReturnType<typeof setTimeout> | null = null
  private authRejected = false
  private running = false
  /** Index into `urls` of the server in use. */
  private index = 0
  /** Servers that failed in a row since the last one that worked (or since the backoff last waited). */
  private failedInRound = 0

  constructor(
    opts: LiveConnectionOptions,
    private readonly hooks: LiveConnectionHooks,
  ) {
    if (opts.urls.length === 0) throw new Error('LiveConnection: no server URL')
    this.opts = opts
    this.backoff = new Backoff(opts.reconnect)
  }

  get state(): ConnectionState {
    return this.current
  }

  /** True while a session is open or being opened. */
  get active(): boolean {
    return this.conn != null || this.connecting
  }

  /** Index of the server in use. */
  get serverIndex(): number {
    return this.index
  }

  start(): void {
    this.running = true
    void this.connect()
  }

  /** Closes the session and stops every timer; `start()` again connects anew. */
  stop(): void {
    this.running = false
    this.drop()
    this.clear('retryTimer')
    this.everLive = false
    this.set('idle')
  }

  /**
   * Closes the session and forgets its history (another user); the state stays as it is until
   * `resume()` connects again with a fresh backoff.
   */
  reset(): void {
    this.drop()
    this.clear('retryTimer')
    this.backoff.reset()
    this.everLive = false
  }

  /** Connects after `reset()`, if running. */
  resume(): void {
    if (this.running) void this.connect()
  }

  /** Reconnect now (skipping any backoff wait) if not connected. */
  reconnect(): void {
    if (!this.running || this.active) return
    this.clear('retryTimer')
    this.backoff.reset()
    void this.connect()
  }

  /** After a token was rejected, a new token (or provider) is tried at once. */
  tokenReplaced(): void {
    const wasRejected = this.authRejected
    this.authRejected = false
    if (wasRejected) this.reconnect()
  }

  /** The browser says it is offline: show it unless a session is still up. */
  browserOffline(): void {
    if (this.running && this.current !== 'live') this.set('offline')
  }

  private async connect(): Promise<void> {
    if (!this.running || this.active) return
    this.clear('retryTimer')
    const myAttempt = ++this.attempt
    this.connecting = true
    if (this.current !== 'offline') this.set(this.everLive ? 'reconnecting' : 'connecting')
    let token: string | null
    let inWorker = false
    try {
      token = await this.opts.tokens.get()
      inWorker = (await this.opts.heartbeatInWorker?.()) ?? false
    } catch (e) {
      this.connecting = false
      if (myAttempt !== this.attempt) return
      this.hooks.error({ kind: 'network', message: e instanceof Error ? e.message : String(e) })
      this.scheduleReconnect(false)
      return
    }
    this.connecting = false
    if (!this.running || myAttempt !== this.attempt || this.conn) return
    this.hooks.user(tokenSubject(token))
    const since = this.hooks.since()
    const first = !this.everLive
    let authError = false
    let wasLive = false
    this.conn = this.opts.factory(
      {
        url: this.opts.urls[this.index]!,
        token,
        since,
        heartbeatMs: this.opts.heartbeatMs ?? 10_000,
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 10_000,
        heartbeatInWorker: inWorker,
      },
      {
        onConnected: () => {
          if (myAttempt !== this.attempt) return
          wasLive = true
          this.everLive = true
          this.authRejected = false
          this.failedInRound = 0
          this.set('live')
          this.clear('healthyTimer')
          this.healthyTimer = setTimeout(() => {
            this.healthyTimer = null
            this.backoff.reset()
          }, this.opts.healthyAfterMs ?? 10_000)
          this.hooks.live({ first, since })
        },
        onNotification: (n) => {
          if (myAttempt === this.attempt) this.hooks.notification(n)
        },
        onStompError: (message, body) => {
          if (myAttempt !== this.attempt) return
          if (AUTH_ERROR.test(message) || AUTH_ERROR.test(body)) {
            authError = true
            this.opts.tokens.invalidate()
            this.hooks.error({ kind: 'unauthorized', message: message || 'unauthorized' })
          } else {
            // A server that does not know our resume point (e.g. restarted with an empty
            // store) may refuse it: resubscribe without `since`; the REST resync covers the gap.
            if (since && /since|cursor/i.test(message)) this.hooks.forgetSince()
            this.hooks.error({ kind: 'protocol', message: message || 'STOMP error' })
          }
        },
        onClosed: () => {
          if (myAttempt !== this.attempt) return
          this.conn = null
          this.clear('healthyTimer')
          if (!this.running) return
          // A rejected fixed token shows `offline`; retries go on with the backoff (the
          // message may have been misread), and a new token reconnects at once.
          if (authError && !this.opts.tokens.hasProvider) this.authRejected = true
          this.scheduleReconnect(!authError || wasLive)
        },
      },
    )
  }

  /**
   * Waits before the next attempt. With several servers, a failed one is left for the next at
   * once (a dead instance's clients move to a survivor within a moment); only when every
   * server has failed in a row does the backoff wait.
   */
  private scheduleReconnect(serverFailed: boolean): void {
    if (!this.running || this.retryTimer || this.conn) return
    const n = this.opts.urls.length
    let delay: number
    if (serverFailed && n > 1) {
      this.failedInRound++
      this.index = (this.index + 1) % n
      this.hooks.serverChanged(this.index)
      if (this.failedInRound < n) {
        delay = this.opts.failoverDelayMs?.() ?? Math.random() * 500
      } else {
        this.failedInRound = 0
        delay = this.backoff.next()
      }
    } else {
      delay = this.backoff.next()
    }
    const browserOffline = typeof navigator !== 'undefined' && navigator.onLine === false
    const giveUpShowing = this.backoff.attempts > (this.opts.offlineAfterAttempts ?? 6)
    this.set(browserOffline || giveUpShowing || this.authRejected ? 'offline' : 'reconnecting')
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      void this.connect()
    }, delay)
  }

  private drop(): void {
    this.attempt++
    this.connecting = false
    this.clear('healthyTimer')
    const c = this.conn
    this.conn = null
    c?.close()
  }

  private set(s: ConnectionState): void {
    if (s === this.current) return
    this.current = s
    this.hooks.state(s)
  }

  private clear(name: 'retryTimer' | 'healthyTimer'): void {
    const t = this[name]
    if (t) clearTimeout(t)
    this[name] = null
  }
}
