import type { TokenManager } from './token'
import type { NotificationPage, NotifyError } from './types'

/** An HTTP or network failure, with a `kind` the UI can show. */
export class NotifyRequestError extends Error implements NotifyError {
  readonly kind: NotifyError['kind']
  readonly status?: number
  constructor(kind: NotifyError['kind'], message: string, status?: number) {
    super(message)
    this.name = 'NotifyRequestError'
    this.kind = kind
    this.status = status
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

/** WebSocket URL of the STOMP endpoint: http→ws, https→wss, path `notify`, token as `access_token`. */
export function websocketUrl(server: string | null | undefined, token: string | null): string {
  const u = new URL('notify', normalizeBase(server))
  if (u.protocol === 'https:') u.protocol = 'wss:'
  else if (u.protocol === 'http:') u.protocol = 'ws:'
  if (token) u.searchParams.set('access_token', token)
  return u.href
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

/** The REST calls of contract section 5, with `Authorization: Bearer` and one retry after a 401. */
export class RestApi {
  constructor(
    private readonly base: string,
    private readonly tokens: TokenManager,
    private readonly fetchImpl: FetchLike,
  ) {}

  private async request(path: string, init: RequestInit = {}, retried = false): Promise<Response> {
    const token = await this.tokens.get()
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (token) headers.Authorization = `Bearer ${token}`
    let res: Response
    try {
      const signal = typeof AbortSignal !== 'undefined' && AbortSignal.timeout ? AbortSignal.timeout(15_000) : undefined
      res = await this.fetchImpl(new URL(path, this.base).href, { ...init, headers, credentials: 'omit', signal })
    } catch (e) {
      throw new NotifyRequestError('network', e instanceof Error ? e.message : String(e))
    }
    if (res.status === 401) {
      this.tokens.invalidate()
      if (!retried && this.tokens.hasProvider) return this.request(path, init, true)
      throw new NotifyRequestError('unauthorized', await errorMessage(res), 401)
    }
    if (!res.ok) throw new NotifyRequestError('http', await errorMessage(res), res.status)
    return res
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

async function errorMessage(res: Response): Promise<string> {
  try {
    const body = await res.json()
    const m = body?.error?.message
    if (typeof m === 'string') return m
  } catch {
    /* not JSON */
  }
  return `HTTP ${res.status}`
}
