import type { BackoffOptions } from './backoff'
import { LiveConnection } from './connection'
import { Emitter, type Handler } from './emitter'
import { Inbox, toNotifyError } from './inbox'
import { tokenSubject } from './jwt'
import { normalizeOrigins, resolveLink, type ResolvedLink } from './links'
import { inQuietHours, type Preferences } from './preferences'
import { normalizeBase, RestApi, websocketUrl, type FetchLike } from './rest'
import { broadcastChannelFactory, channelName, TabSync, type ChannelFactory } from './tabsync'
import { TokenManager } from './token'
import { stompConnection, workerHeartbeatsUsable, type ConnectionFactory } from './transport'
import type { ConnectionState, NewNotificationEvent, NotifyError, NotifyState, TokenProvider } from './types'

export interface NotifyClientOptions {
  /** Base URL of the notify server (`https://notify.example.com`); empty or absent: same origin. */
  server?: string | null
  /**
   * Several servers, primary first (e.g. two instances behind different names). When the one
   * in use fails, the client moves to the next at once and resumes with `since`; it waits
   * (backoff) only after every server failed in a row. Overrides `server`.
   */
  servers?: readonly string[] | null
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
  /**
   * Send heart-beats from a Worker so that a hidden tab keeps its session (default true; falls
   * back to page timers where the page's CSP forbids `blob:` workers).
   */
  heartbeatWorker?: boolean
  /** Keep tabs of the same user in sync through BroadcastChannel (default true). */
  tabSync?: boolean
  /**
   * Origins (`https://docs.example`) that notification links may lead to besides the page's
   * own. Unset: any http(s) origin, opened in a new tab without opener or referrer. Set (even
   * empty): links to other origins are not followed.
   */
  linkOrigins?: readonly string[] | string | null
  /** Load the user's preferences at start (quiet hours silence toasts). Default true. */
  loadPreferences?: boolean
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
  preferences: Preferences
}

/** The framework-free client: state, live updates and actions for one user's notifications. */
export interface NotifyClient {
  /** The current state (a new object after every change). */
  readonly state: NotifyState
  /** The user (`sub` of the token), once known. */
  readonly user: string | null
  /** The user's preferences, once loaded (`loadPreferences()` or at start). */
  readonly preferences: Preferences | null
  /** The base URL of the server in use (changes on fail-over). */
  readonly server: string
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
  /** `GET /api/preferences`. */
  loadPreferences(): Promise<Preferences>
  /** `PUT /api/preferences`; rejects with a `NotifyRequestError` whose `field` names a refused input. */
  savePreferences(prefs: Preferences): Promise<Preferences>
  /** True while the user's quiet hours (in their time zone) are on: no toasts. */
  isQuietNow(now?: number): boolean
  /** Where a notification's link leads, or null when the widget must not follow it. */
  resolveLink(link: string | null | undefined): ResolvedLink | null
  setToken(token: string | null | undefined): void
  setTokenProvider(provider: TokenProvider | null | undefined): void
  /** Reconnect now (skipping any backoff wait) if not connected. */
  reconnect(): void
}

export function createNotifyClient(options: NotifyClientOptions = {}): NotifyClient {
  return new NotifyClientImpl(options)
}

/** Splits `servers` (array, or a comma/space separated string from an attribute) and falls back to `server`. */
export function serverList(opts: Pick<NotifyClientOptions, 'server' | 'servers'>): string[] {
  const raw = opts.servers as readonly string[] | string | null | undefined
  const list = (typeof raw === 'string' ? raw.split(/[\s,]+/) : (raw ?? [])).map((s) => s.trim()).filter(Boolean)
  return list.length ? list : [opts.server || '']
}

/**
 * Wires the inbox (REST pages, read state, other tabs) to the live connection (STOMP, reconnects,
 * fail-over) and to the page (online, visibility, back/forward cache), and publishes one state.
 */
class NotifyClientImpl implements NotifyClient {
  private readonly opts: NotifyClientOptions
  private readonly bases: string[]
  private readonly tokens: TokenManager
  private readonly rest: RestApi
  private readonly inbox: Inbox
  private readonly live: LiveConnection
  private readonly tabs: TabSync
  private readonly events = new Emitter<EventMap>()
  private readonly win: NotifyClientOptions['window']
  private readonly doc: NotifyClientOptions['document']
  private readonly links: string[] | null

  private _user: string | null = null
  private _preferences: Preferences | null = null
  private started = false
  private serverIndex = 0
  private hiddenAt: number | null = null
  private snapshot: NotifyState

  constructor(opts: NotifyClientOptions) {
    this.opts = opts
    this.bases = serverList(opts).map((s) => normalizeBase(s || null))
    this.links = normalizeOrigins(opts.linkOrigins)
    this.tokens = new TokenManager({
      token: opts.token,
      provider: opts.tokenProvider,
      onToken: (t) => this.onTokenChanged(t),
    })
    const f: FetchLike = opts.fetch ?? ((input, init) => fetch(input, init))
    this.rest = new RestApi(() => this.server, this.tokens, f)
    this.tabs = new TabSync(
      opts.tabSync === false ? () => null : (opts.channelFactory ?? broadcastChannelFactory),
      (m) => this.inbox.onTabMessage(m),
    )
    this.inbox = new Inbox(this.rest, this.tabs, Math.min(200, Math.max(1, opts.pageSize ?? 20)), {
      running: () => this.started,
      changed: () => this.emitChange(),
      arrived: (e) => this.events.emit('notification', e),
      error: (e) => this.events.emit('error', e),
    })
    const useWorker = opts.heartbeatWorker !== false && !opts.connectionFactory
    this.live = new LiveConnection(
      {
        urls: this.bases.map((b) => websocketUrl(b)),
        tokens: this.tokens,
        factory: opts.connectionFactory ?? stompConnection,
        reconnect: opts.reconnect,
        offlineAfterAttempts: opts.offlineAfterAttempts,
        heartbeatMs: opts.heartbeatMs,
        connectTimeoutMs: opts.connectTimeoutMs,
        healthyAfterMs: opts.healthyAfterMs,
        heartbeatInWorker: useWorker ? () => workerHeartbeatsUsable() : undefined,
      },
      {
        since: () => this.inbox.store.lastCursor,
        forgetSince: () => (this.inbox.store.lastCursor = null),
        user: (sub) => this.setUser(sub),
        live: ({ first, since }) => {
          // Read state and counts may have changed while disconnected, and with no cursor
          // there is a window between the page load and the subscription: close it.
          if (!first || !this.inbox.loaded || since == null) void this.inbox.refresh()
        },
        notification: (n) => this.inbox.ingest(n, 'live'),
        state: (s) => {
          this.emitChange()
          this.events.emit('connection', s)
        },
        error: (e) => this.events.emit('error', e),
        serverChanged: (i) => (this.serverIndex = i),
      },
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

  get preferences(): Preferences | null {
    return this._preferences
  }

  get server(): string {
    return this.bases[this.serverIndex] ?? this.bases[0]!
  }

  subscribe(fn: (state: NotifyState) => void): () => void {
    fn(this.snapshot)
    return this.on('change', fn)
  }

  on<K extends keyof EventMap>(event: K, fn: Handler<EventMap[K]>): () => void {
    return this.events.on(event, fn)
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
    if (this.opts.loadPreferences !== false) void this.loadPreferences().catch(() => {})
    await this.inbox.refresh()
    if (!this.started) return
    this.live.start()
  }

  stop(): void {
    if (!this.started) return
    this.started = false
    this.detachWindow()
    this.live.stop()
    this.inbox.stop()
    this.tabs.leave()
    this._user = null
  }

  refresh(): Promise<void> {
    return this.inbox.refresh()
  }

  loadMore(): Promise<void> {
    return this.inbox.loadMore()
  }

  markRead(idOrIds: string | readonly string[]): Promise<void> {
    return this.inbox.markRead(typeof idOrIds === 'string' ? [idOrIds] : [...idOrIds])
  }

  markAllRead(): Promise<void> {
    return this.inbox.markAllRead()
  }

  async loadPreferences(): Promise<Preferences> {
    try {
      return this.setPreferences(await this.rest.preferences())
    } catch (e) {
      this.events.emit('error', toNotifyError(e))
      throw e
    }
  }

  async savePreferences(prefs: Preferences): Promise<Preferences> {
    return this.setPreferences(await this.rest.savePreferences(prefs))
  }

  isQuietNow(now: number = Date.now()): boolean {
    return inQuietHours(this._preferences, now)
  }

  resolveLink(link: string | null | undefined): ResolvedLink | null {
    return resolveLink(link, { allowedOrigins: this.links })
  }

  setToken(token: string | null | undefined): void {
    this.tokens.setToken(token)
    this.live.tokenReplaced()
  }

  setTokenProvider(provider: TokenProvider | null | undefined): void {
    this.tokens.setProvider(provider)
    this.live.tokenReplaced()
  }

  reconnect(): void {
    this.live.reconnect()
  }

  // ---- user and preferences ----------------------------------------------------------------

  private setPreferences(p: Preferences): Preferences {
    this._preferences = p
    this.events.emit('preferences', p)
    return p
  }

  private onTokenChanged(token: string | null): void {
    const sub = tokenSubject(token)
    if (this._user != null && sub != null && sub !== this._user) {
      // Another user: forget everything of the previous one and start over.
      this.inbox.clear()
      this._preferences = null
      this.setUser(sub)
      this.emitChange()
      if (this.started) {
        this.live.reset()
        if (this.opts.loadPreferences !== false) void this.loadPreferences().catch(() => {})
        void this.inbox.refresh().then(() => this.live.resume())
      }
      return
    }
    this.setUser(sub)
  }

  private setUser(sub: string | null): void {
    if (sub == null || sub === this._user) return
    this._user = sub
    // Keyed by the primary server, so tabs that failed over to different servers still share.
    this.tabs.join(channelName(this.bases[0]!, sub))
  }

  // ---- browser events ---------------------------------------------------------------------

  private readonly onOnline = () => {
    if (!this.started) return
    if (this.live.active) this.inbox.scheduleResync(0)
    else this.live.reconnect()
  }

  private readonly onOffline = () => this.live.browserOffline()

  private readonly onVisibility = () => {
    if (!this.started || !this.doc) return
    if (this.doc.visibilityState === 'hidden') {
      this.hiddenAt = Date.now()
      return
    }
    const wasHiddenFor = this.hiddenAt == null ? 0 : Date.now() - this.hiddenAt
    this.hiddenAt = null
    if (!this.live.active) this.live.reconnect()
    else if (wasHiddenFor > 2000) this.inbox.scheduleResync(0)
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

  // ---- state ------------------------------------------------------------------------------

  private buildSnapshot(): NotifyState {
    const store = this.inbox.store
    return Object.freeze({
      items: store.items,
      unreadCount: store.unreadCount,
      connection: this.live.state,
      loading: this.inbox.loading,
      loadingMore: this.inbox.loadingMore,
      hasMore: store.hasMore,
      error: this.inbox.error,
      loaded: this.inbox.loaded,
    })
  }

  private emitChange(): void {
    if (!this.inbox || !this.live) return // during construction
    this.snapshot = this.buildSnapshot()
    this.events.emit('change', this.snapshot)
  }
}
