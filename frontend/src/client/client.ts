import { Backoff, type BackoffOptions } from './backoff'
import { tokenSubject } from './jwt'
import { normalizeBase, RestApi, websocketUrl, NotifyRequestError, type FetchLike } from './rest'
import { NotificationStore } from './store'
import { broadcastChannelFactory, channelName, TabSync, type ChannelFactory, type TabMessage } from './tabsync'
import { TokenManager } from './token'
import { stompConnection, type Connection, type ConnectionFactory } from './transport'
import type {
  ConnectionState,
  NewNotificationEvent,
  Notification,
  NotificationSource,
  NotifyError,
  NotifyState,
  TokenProvider,
} from './types'

export interface NotifyClientOptions {
  /** Base URL of the notify server (`https://notify.example.com`); empty or absent: same origin. */
  server?: string | null
  /** A JWT. With `tokenProvider` too, it is the first token and the provider refreshes it. */
  token?: string | null
  /** Asked for a token before the current one expires (JWT `exp`) and after an auth error. */
  tokenProvider?: TokenProvider | null
  /** Inbox page size (default 20). */
  pageSize?: number
  /** Reconnect backoff (default 1 s doubling to 30 s, ±50 % jitter). */
  reconnect?: BackoffOptions
  /** After this many failed reconnects in a row the state shows `offline` (still retrying). Default 6. */
  offlineAfterAttempts?: number
  /** STOMP heart-beat in ms (default 10000). */
  heartbeatMs?: number
  /** Give up a connection attempt after this long (default 10000 ms). */
  connectTimeoutMs?: number
  /** A connection that stays up this long resets the backoff (default 10000 ms). */
  healthyAfterMs?: number
  /** Keep tabs of the same user in sync through BroadcastChannel (default true). */
  tabSync?: boolean
  /** Injection points (tests, non-browser hosts). */
  fetch?: FetchLike
  connectionFactory?: ConnectionFactory
  channelFactory?: ChannelFactory
  /** Object receiving `online`/`offline`/`pageshow` (default window); `document` for visibility. */
  window?: Pick<Window, 'addEventListener' | 'removeEventListener'> | null
  document?: Pick<Document, 'addEventListener' | 'removeEventListener' | 'visibilityState'> | null
}

type EventMap = {
  notification: NewNotificationEvent
  connection: ConnectionState
  error: NotifyError
  change: NotifyState
}

type Handler<T> = (value: T) => void

/** The framework-free client: state, live updates and actions for one user's notifications. */
export interface NotifyClient {
  /** The current state (a new object after every change). */
  readonly state: NotifyState
  /** The user (`sub` of the token), once known. */
  readonly user: string | null
  /** Loads the inbox and connects. Safe to call twice. */
  start(): Promise<void>
  /** Disconnects and stops all timers; `start()` again resumes. */
  stop(): void
  /** Calls `fn` with the state now and after every change; returns an unsubscribe function. */
  subscribe(fn: (state: NotifyState) => void): () => void
  /** `notification`: a notification this client had not seen arrived live (or from another tab). */
  on<K extends keyof EventMap>(event: K, fn: Handler<EventMap[K]>): () => void
  /** Reloads the newest page and the unread count from REST. */
  refresh(): Promise<void>
  /** Loads the next older page (`before` cursor). */
  loadMore(): Promise<void>
  markRead(id: string | readonly string[]): Promise<void>
  markAllRead(): Promise<void>
  setToken(token: string | null | undefined): void
  setTokenProvider(provider: TokenProvider | null | undefined): void
  /** Reconnect now (skipping any backoff wait) if not connected. */
  reconnect(): void
}

const AUTH_ERROR = /unauthori|authenticat|token|expired|jwt|\b401\b|forbidden|credential/i

export function createNotifyClient(options: NotifyClientOptions = {}): NotifyClient {
  return new NotifyClientImpl(options)
}

class NotifyClientImpl implements NotifyClient {
  private readonly opts: NotifyClientOptions
  private readonly base: string
  private readonly server: string | null
  private readonly tokens: TokenManager
  private readonly rest: RestApi
  private readonly store = new NotificationStore()
  private readonly backoff: Backoff
  private readonly tabs: TabSync
  private readonly connect_: ConnectionFactory
  private readonly win: NotifyClientOptions['window']
  private readonly doc: NotifyClientOptions['document']

  private listeners: { [K in keyof EventMap]: Set<Handler<EventMap[K]>> } = {
    notification: new Set(),
    connection: new Set(),
    error: new Set(),
    change: new Set(),
  }

  private _user: string | null = null
  private started = false
  private conn: Connection | null = null
  private attempt = 0
  private connecting = false
  private everLive = false
  private connection: ConnectionState = 'idle'
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private healthyTimer: ReturnType<typeof setTimeout> | null = null
  private resyncTimer: ReturnType<typeof setTimeout> | null = null
  private hiddenAt: number | null = null
  private authRejected = false

  private loading = false
  private loadingMore = false
  private loaded = false
  private error: NotifyError | null = null
  private refreshing: Promise<void> | null = null
  private refreshAgain = false

  /** Bumped when a read change starts and when it settles; a page fetched across a bump has a stale count. */
  private mutationSeq = 0
  private inflightMutations = 0
  private resyncAfterMutations = false

  private snapshot: NotifyState

  constructor(opts: NotifyClientOptions) {
    this.opts = opts
    this.server = opts.server || null
    this.base = normalizeBase(this.server)
    this.tokens = new TokenManager({
      token: opts.token,
      provider: opts.tokenProvider,
      onToken: (t) => this.onTokenChanged(t),
    })
    const f: FetchLike = opts.fetch ?? ((input, init) => fetch(input, init))
    this.rest = new RestApi(this.base, this.tokens, f)
    this.backoff = new Backoff(opts.reconnect)
    this.connect_ = opts.connectionFactory ?? stompConnection
    this.tabs = new TabSync(
      opts.tabSync === false ? () => null : (opts.channelFactory ?? broadcastChannelFactory),
      (m) => this.onTabMessage(m),
    )
    this.win = opts.window !== undefined ? opts.window : typeof window !== 'undefined' ? window : null
    this.doc = opts.document !== undefined ? opts.document : typeof document !== 'undefined' ? document : null
    this.setUser(tokenSubject(opts.token))
    this.snapshot = this.buildSnapshot()
  }

  // ---- public API ------------------------------------------------------------------------

  get state(): NotifyState {
    return this.snapshot
  }

  get user(): string | null {
    return this._user
  }

  subscribe(fn: (state: NotifyState) => void): () => void {
    fn(this.snapshot)
    return this.on('change', fn)
  }

  on<K extends keyof EventMap>(event: K, fn: Handler<EventMap[K]>): () => void {
    const set = this.listeners[event] as Set<Handler<EventMap[K]>>
    set.add(fn)
    return () => set.delete(fn)
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.attachWindow()
    try {
      this.setUser(tokenSubject(await this.tokens.get()))
    } catch {
      /* the provider failed; refresh/connect below report and retry */
    }
    await this.refresh()
    if (!this.started) return
    void this.connect()
  }

  stop(): void {
    if (!this.started) return
    this.started = false
    this.detachWindow()
    this.dropConnection()
    this.clearTimer('retryTimer')
    this.clearTimer('resyncTimer')
    this.tabs.leave()
    this._user = null
    this.everLive = false
    this.setConnection('idle')
  }

  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true
      return this.refreshing
    }
    const run = async (): Promise<void> => {
      const seq = this.mutationSeq
      if (!this.loaded) {
        this.loading = true
        this.emitChange()
      }
      try {
        const sentAt = this.store.mark()
        const page = await this.rest.page({ limit: this.pageSize })
        const trusted = seq === this.mutationSeq && this.inflightMutations === 0
        this.store.applyFirstPage(page, trusted, sentAt)
        if (!trusted) this.wantResyncAfterMutations()
        this.loaded = true
        this.error = null
      } catch (e) {
        this.fail(e)
      } finally {
        this.loading = false
        this.emitChange()
      }
    }
    const p = (async () => {
      try {
        await run()
        while (this.refreshAgain && this.started) {
          this.refreshAgain = false
          await run()
        }
      } finally {
        this.refreshing = null
        this.refreshAgain = false
      }
    })()
    this.refreshing = p
    return p
  }

  async loadMore(): Promise<void> {
    if (this.loadingMore || !this.store.hasMore || !this.store.olderCursor) return
    this.loadingMore = true
    this.emitChange()
    try {
      const page = await this.rest.page({ limit: this.pageSize, before: this.store.olderCursor })
      this.store.applyOlderPage(page)
    } catch (e) {
      this.fail(e)
    } finally {
      this.loadingMore = false
      this.emitChange()
    }
  }

  async markRead(idOrIds: string | readonly string[]): Promise<void> {
    const ids = typeof idOrIds === 'string' ? [idOrIds] : [...idOrIds]
    const unknown = new Set(this.store.unknownIds(ids))
    const changed = this.store.markRead(ids)
    const toSend = ids.filter((id) => changed.includes(id) || unknown.has(id))
    if (toSend.length === 0) return
    this.emitChange()
    this.tabs.post({ t: 'read', ids: toSend })
    this.beginMutation()
    let failed: string[] = []
    try {
      const results = await Promise.allSettled(toSend.map((id) => this.rest.markRead(id)))
      failed = toSend.filter((_, i) => results[i]!.status === 'rejected')
      const firstError = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed.length) {
        this.store.revertRead(failed)
        this.fail(firstError?.reason, false)
      }
    } finally {
      this.tabs.post({ t: 'read-done', ids: toSend, ok: failed.length === 0 })
      this.endMutation()
      this.emitChange()
    }
  }

  async markAllRead(): Promise<void> {
    const { cutoff, previous, changed } = this.store.markAllRead()
    this.emitChange()
    this.tabs.post({ t: 'read-all', cutoff })
    this.beginMutation()
    let ok = false
    try {
      await this.rest.markAllRead()
      ok = true
    } catch (e) {
      this.store.revertReadAll(previous, changed)
      this.fail(e, false)
    } finally {
      this.tabs.post({ t: 'read-all-done', ok })
      // The server may have marked notifications this client has not received yet: recount.
      this.resyncAfterMutations = true
      this.endMutation()
      this.emitChange()
    }
  }

  setToken(token: string | null | undefined): void {
    this.tokens.setToken(token)
    this.kickIfRejected()
  }

  setTokenProvider(provider: TokenProvider | null | undefined): void {
    this.tokens.setProvider(provider)
    this.kickIfRejected()
  }

  reconnect(): void {
    if (!this.started || this.conn || this.connecting) return
    this.clearTimer('retryTimer')
    this.backoff.reset()
    void this.connect()
  }

  // ---- connection --------------------------------------------------------------------------

  private get pageSize(): number {
    return Math.min(200, Math.max(1, this.opts.pageSize ?? 20))
  }

  private async connect(): Promise<void> {
    if (!this.started || this.conn || this.connecting) return
    this.clearTimer('retryTimer')
    const myAttempt = ++this.attempt
    this.connecting = true
    if (this.connection !== 'offline') this.setConnection(this.everLive ? 'reconnecting' : 'connecting')
    let token: string | null
    try {
      token = await this.tokens.get()
    } catch (e) {
      this.connecting = false
      if (myAttempt !== this.attempt) return
      this.fail(e, false)
      this.scheduleReconnect()
      return
    }
    this.connecting = false
    if (!this.started || myAttempt !== this.attempt || this.conn) return
    this.setUser(tokenSubject(token))
    const since = this.store.lastCursor
    const resyncWhenUp = this.everLive || !this.loaded || since == null
    let authError = false
    this.conn = this.connect_(
      {
        url: websocketUrl(this.server, token),
        token,
        since,
        heartbeatMs: this.opts.heartbeatMs ?? 10_000,
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 10_000,
      },
      {
        onConnected: () => {
          if (myAttempt !== this.attempt) return
          this.everLive = true
          this.authRejected = false
          this.setConnection('live')
          this.clearTimer('healthyTimer')
          this.healthyTimer = setTimeout(() => {
            this.healthyTimer = null
            this.backoff.reset()
          }, this.opts.healthyAfterMs ?? 10_000)
          // Read state and counts may have changed while disconnected, and with no cursor
          // there is a window between the page load and the subscription: close it.
          if (resyncWhenUp) void this.refresh()
        },
        onNotification: (n) => {
          if (myAttempt !== this.attempt) return
          this.store.noteCursor(n.cursor)
          this.ingest(n, 'live')
        },
        onStompError: (message, body) => {
          if (myAttempt !== this.attempt) return
          if (AUTH_ERROR.test(message) || AUTH_ERROR.test(body)) {
            authError = true
            this.tokens.invalidate()
            this.emit('error', { kind: 'unauthorized', message: message || 'unauthorized' })
          } else {
            // A server that does not know our resume point (e.g. restarted with an empty
            // store) may refuse it: resubscribe without `since`; the REST resync covers the gap.
            if (since && /since|cursor/i.test(message)) this.store.lastCursor = null
            this.emit('error', { kind: 'protocol', message: message || 'STOMP error' })
          }
        },
        onClosed: () => {
          if (myAttempt !== this.attempt) return
          this.conn = null
          this.clearTimer('healthyTimer')
          if (!this.started) return
          // A rejected fixed token shows `offline`; retries go on with the backoff (the
          // message may have been misread), and a new token reconnects at once.
          if (authError && !this.tokens.hasProvider) this.authRejected = true
          this.scheduleReconnect()
        },
      },
    )
  }

  private scheduleReconnect(): void {
    if (!this.started || this.retryTimer || this.conn) return
    const delay = this.backoff.next()
    const browserOffline = typeof navigator !== 'undefined' && navigator.onLine === false
    const giveUpShowing = this.backoff.attempts > (this.opts.offlineAfterAttempts ?? 6)
    this.setConnection(browserOffline || giveUpShowing || this.authRejected ? 'offline' : 'reconnecting')
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      void this.connect()
    }, delay)
  }

  private dropConnection(): void {
    this.attempt++
    this.connecting = false
    this.clearTimer('healthyTimer')
    const c = this.conn
    this.conn = null
    c?.close()
  }

  /** After a token was rejected, a new token (or provider) is tried at once. */
  private kickIfRejected(): void {
    const wasRejected = this.authRejected
    this.authRejected = false
    if (wasRejected && this.started && !this.conn && !this.connecting) this.reconnect()
  }

  private onTokenChanged(token: string | null): void {
    const sub = tokenSubject(token)
    if (this._user != null && sub != null && sub !== this._user) {
      // Another user: forget everything of the previous one and start over.
      this.store.clear()
      this.loaded = false
      this.setUser(sub)
      this.emitChange()
      if (this.started) {
        this.dropConnection()
        this.clearTimer('retryTimer')
        this.backoff.reset()
        void this.refresh().then(() => this.connect())
      }
      return
    }
    this.setUser(sub)
  }

  private setUser(sub: string | null): void {
    if (sub == null || sub === this._user) return
    this._user = sub
    this.tabs.join(channelName(this.base, sub))
  }

  // ---- incoming ----------------------------------------------------------------------------

  private ingest(n: Notification, source: NotificationSource): void {
    const isNew = this.store.ingest(n)
    if (isNew && source === 'live') this.tabs.post({ t: 'n', n })
    this.emitChange()
    if (isNew && !this.store.get(n.id)?.read) this.emit('notification', { notification: this.store.get(n.id)!, source })
  }

  private onTabMessage(m: TabMessage): void {
    if (!this.started) return
    switch (m.t) {
      case 'n':
        this.ingest(m.n, 'tab')
        break
      case 'read':
        if (this.store.markRead(m.ids).length) this.emitChange()
        break
      case 'read-done':
        if (!m.ok) {
          this.store.revertRead(m.ids)
          this.emitChange()
          this.scheduleResync()
        } else if (this.store.unknownIds(m.ids).length) {
          // Marked read elsewhere but not known here (older than our pages, or not yet
          // received): the server's count is the only truth for those.
          this.scheduleResync()
        }
        break
      case 'read-all':
        this.store.markAllRead(m.cutoff)
        this.emitChange()
        break
      case 'read-all-done':
        this.scheduleResync()
        break
    }
  }

  // ---- resync --------------------------------------------------------------------------------

  private scheduleResync(delay = 150): void {
    if (!this.started) return
    if (this.inflightMutations > 0) {
      this.resyncAfterMutations = true
      return
    }
    this.clearTimer('resyncTimer')
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null
      void this.refresh()
    }, delay)
  }

  private wantResyncAfterMutations(): void {
    this.resyncAfterMutations = true
    if (this.inflightMutations === 0) this.flushResyncAfterMutations()
  }

  private flushResyncAfterMutations(): void {
    if (!this.resyncAfterMutations) return
    this.resyncAfterMutations = false
    this.scheduleResync(0)
  }

  private beginMutation(): void {
    this.mutationSeq++
    this.inflightMutations++
  }

  private endMutation(): void {
    this.mutationSeq++
    this.inflightMutations--
    if (this.inflightMutations === 0) this.flushResyncAfterMutations()
  }

  // ---- browser events ---------------------------------------------------------------------

  private readonly onOnline = () => {
    if (!this.started) return
    if (this.conn) this.scheduleResync(0)
    else this.reconnect()
  }

  private readonly onOffline = () => {
    if (this.started && this.connection !== 'live') this.setConnection('offline')
  }

  private readonly onVisibility = () => {
    if (!this.started || !this.doc) return
    if (this.doc.visibilityState === 'hidden') {
      this.hiddenAt = Date.now()
      return
    }
    const wasHiddenFor = this.hiddenAt == null ? 0 : Date.now() - this.hiddenAt
    this.hiddenAt = null
    if (!this.conn) this.reconnect()
    else if (wasHiddenFor > 2000) this.scheduleResync(0)
  }

  private readonly onPageShow = (e: Event) => {
    if ((e as PageTransitionEvent).persisted) this.onOnline()
  }

  private attachWindow(): void {
    this.win?.addEventListener('online', this.onOnline)
    this.win?.addEventListener('offline', this.onOffline)
    this.win?.addEventListener('pageshow', this.onPageShow)
    this.doc?.addEventListener('visibilitychange', this.onVisibility)
  }

  private detachWindow(): void {
    this.win?.removeEventListener('online', this.onOnline)
    this.win?.removeEventListener('offline', this.onOffline)
    this.win?.removeEventListener('pageshow', this.onPageShow)
    this.doc?.removeEventListener('visibilitychange', this.onVisibility)
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private clearTimer(name: 'retryTimer' | 'healthyTimer' | 'resyncTimer'): void {
    const t = this[name]
    if (t) clearTimeout(t)
    this[name] = null
  }

  private fail(e: unknown, asLoadError = true): void {
    const err: NotifyError =
      e instanceof NotifyRequestError
        ? { kind: e.kind, status: e.status, message: e.message }
        : { kind: 'network', message: e instanceof Error ? e.message : String(e) }
    if (asLoadError) this.error = err
    this.emit('error', err)
  }

  private setConnection(s: ConnectionState): void {
    if (s === this.connection) return
    this.connection = s
    this.emitChange()
    this.emit('connection', s)
  }

  private buildSnapshot(): NotifyState {
    return Object.freeze({
      items: this.store.items,
      unreadCount: this.store.unreadCount,
      connection: this.connection,
      loading: this.loading,
      loadingMore: this.loadingMore,
      hasMore: this.store.hasMore,
      error: this.error,
      loaded: this.loaded,
    })
  }

  private emitChange(): void {
    this.snapshot = this.buildSnapshot()
    this.emit('change', this.snapshot)
  }

  private emit<K extends keyof EventMap>(event: K, value: EventMap[K]): void {
    for (const fn of [...this.listeners[event]] as Handler<EventMap[K]>[]) {
      try {
        fn(value)
      } catch (e) {
        console.error('[notify] listener failed', e)
      }
    }
  }
}
