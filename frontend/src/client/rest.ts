import { parsePreferences, type Preferences } from './preferences'
import type { TokenManager } from './token'
import type { NotificationPage, NotifyError } from './types'

/** An HTTP or network failure, with a `kind` the UI can show. */
export class NotifyRequestError extends Error implements NotifyError {
  readonly kind: NotifyError['kind']
  readonly status?: number
  /** The contract's error `code` (`token_in_query`, `rate_limited`…), when the server sent one. */
  readonly code?: string
  /** The input field a 400 names (`quiet_hours.from`, `muted_types[2]`…). */
  readonly field?: string
  constructor(kind: NotifyError['kind'], message: string, status?: number, detail: { code?: string; field?: string } = {}) {
    super(message)
    this.name = 'NotifyRequestError'
    this.kind = kind
    this.status = status
    this.code = detail.code
    this.field = detail.field
  }
}

/** `base` with a trailing slash, so relative paths keep any path prefix of the server URL. */
export function normalizeBase(server: string | null | undefined): string {
  let base = (server ?? '').trim()
  if (!base) base = typeof location !== 'undefined' ? location.origin : 'http://localhost'
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(base)) {
    base = new URL(base, typeof location !== 'undefined' ? location.href : 'http://localhost/').href
  }
  return base.endsWith('/') ? base : base + '/'
}

/**
 * WebSocket URL of the STOMP endpoint: http→ws, https→wss, path `notify`. No token in it: the
 * client authenticates with the CONNECT frame's `Authorization` header, so the token never
 * lands in proxy or server access logs (contract section 3 accepts either).
 */
export function websocketUrl(server: string | null | undefined): string {
  const u = new URL('notify', normalizeBase(server))
  if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol === 'http:') u.protocol = 'ws:'
  return u.href
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

/**
 * The REST calls of contract sections 5 and 5a, with `Authorization: Bearer` (never a query
 * token: the server refuses those outside `/notify` and `/api/stream`) and one retry after a 401.
 */
export class RestApi {
  constructor(
    /** The base URL of the server in use (it changes when the client fails over). */
    private readonly base: () => string,
    private readonly tokens: TokenManager,
    private readonly fetchImpl: FetchLike,
  ) {}

  private async request(path: string, init: RequestInit = {}, retried = false): Promise<Response> {
    const token = await this.tokens.get()
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (init.body != null) headers['Content-Type'] = 'application/json'
    if (token) headers.Authorization = `Bearer ${token}`
    let res: Response
    try {
      const signal = typeof AbortSignal !== 'undefined' && AbortSignal.timeout ? AbortSignal.timeout(15_000) : undefined
      res = await this.fetchImpl(new URL(path, this.base()).href, { ...init, headers, credentials: 'omit', signal })
    } catch (e) {
      throw new NotifyRequestError('network', e instanceof Error ? e.message : String(e))
    }
    if (res.status === 401) {
      this.tokens.invalidate()
      if (!retried && this.tokens.hasProvider) return this.request(path, init, true)
      const e = await errorBody(res)
      throw new NotifyRequestError('unauthorized', e.message, 401, e)
    }
    if (!res.ok) {
      const e = await errorBody(res)
      throw new NotifyRequestError('http', e.message, res.status, e)
    }
    return res
  }

  private async json(path: string, init: RequestInit = {}): Promise<unknown> {
    const res = await this.request(path, init)
    try {
      return await res.json()
    } catch {
      throw new NotifyRequestError('protocol', `invalid JSON from /${path}`)
    }
  }

  /** `GET /api/preferences` (defaults when the user never saved any). */
  async preferences(): Promise<Preferences> {
    return parsePreferences(await this.json('api/preferences'))
  }

  /** `PUT /api/preferences`: the stored object, or a 400 `NotifyRequestError` naming the field. */
  async savePreferences(prefs: Preferences): Promise<Preferences> {
    return parsePreferences(await this.json('api/preferences', { method: 'PUT', body: JSON.stringify(prefs) }))
  }

  async page(opts: { limit: number; before?: string | null }): Promise<NotificationPage> {
    const q = new URLSearchParams({ limit: String(opts.limit) })
    if (opts.before) q.set('before', opts.before)
    const res = await this.request(`api/notifications?${q}`)
    let body: unknown
    try {
      body = await res.json()
    } catch {
      throw new NotifyRequestError('protocol', 'invalid JSON from /api/notifications')
    }
    const b = body as Partial<NotificationPage> | null
    if (!b || !Array.isArray(b.items)) throw new NotifyRequestError('protocol', 'unexpected /api/notifications answer')
    return {
      items: b.items,
      next_cursor: typeof b.next_cursor === 'string' && b.next_cursor ? b.next_cursor : null,
      unread_count: typeof b.unread_count === 'number' ? b.unread_count : b.items.filter((n) => !n.read).length,
    }
  }

  async markRead(id: string): Promise<void> {
    try {
      await this.request(`api/notifications/${encodeURIComponent(id)}/read`, { method: 'POST', keepalive: true })
    } catch (e) {
      // 404: the user cannot see it (or it expired) — nothing left to mark.
      if (e instanceof NotifyRequestError && e.status === 404) return
      throw e
    }
  }

  async markAllRead(): Promise<void> {
    await this.request('api/notifications/read-all', { method: 'POST', keepalive: true })
  }
}

/** The contract's error body `{"error":{"code","message","field"}}`, as far as it is there. */
async function errorBody(res: Response): Promise<{ message: string; code?: string; field?: string }> {
  const out: { message: string; code?: string; field?: string } = { message: `HTTP ${res.status}` }
  try {
    const e = (await res.json())?.error
    if (typeof e?.message === 'string') out.message = e.message
    if (typeof e?.code === 'string') out.code = e.code
    if (typeof e?.field === 'string') out.field = e.field
  } catch {
    /* not JSON */
  }
  return out
}
