import type { ConnectionFactory, ConnectionHandlers, ConnectionParams } from '../src/client/transport'
import type { ChannelFactory, ChannelLike } from '../src/client/tabsync'
import type { Notification } from '../src/client/types'

function b64url(s: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s))).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
}

/** An unsigned-looking JWT (the client never verifies signatures). */
export function jwt(claims: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}.sig`
}

export function tokenFor(sub: string, expInSec = 3600, nowMs = Date.now()): string {
  return jwt({ sub, groups: [], exp: Math.floor(nowMs / 1000) + expInSec })
}

export function notif(seq: number, over: Partial<Notification> = {}): Notification {
  return {
    id: `n${seq}`,
    type: 'test.event',
    title: `Title ${seq}`,
    message: `Message ${seq}`,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    read: false,
    cursor: `c${String(seq).padStart(6, '0')}`,
    priority: 'normal',
    ...over,
  }
}

export class FakeConn {
  closed = false
  connected = false
  constructor(
    readonly params: ConnectionParams,
    readonly handlers: ConnectionHandlers,
  ) {}
  close() {
    this.closed = true
  }
  /** The server drops the socket. */
  drop() {
    if (this.closed) return
    this.closed = true
    this.connected = false
    this.handlers.onClosed({ code: 1006 })
  }
}

/**
 * An in-memory notify server: REST via `fetch`, STOMP via `factory`, with since-replay,
 * read state, auth and outages.
 */
export class FakeBackend {
  items: Notification[] = [] // oldest first
  read = new Set<string>()
  conns: FakeConn[] = []
  down = false
  seq = 0
  requests: { method: string; url: string; auth: string | null }[] = []
  isValid: (token: string | null) => boolean = (t) => !!t
  /** Hold REST answers until released (to provoke races). */
  hold: Promise<void> | null = null
  failReads = false
  /** Stored preferences (contract section 5a); null: never saved. */
  prefs: Record<string, unknown> | null = null
  /** Refuse the next preference writes with a 400 naming this field. */
  prefsReject: { field: string; message: string } | null = null

  publish(over: Partial<Notification> = {}, seq = ++this.seq): Notification {
    this.seq = Math.max(this.seq, seq)
    const n = notif(seq, over)
    this.items.push(n)
    for (const c of this.conns) if (c.connected) c.handlers.onNotification({ ...n, read: false })
    return n
  }

  /** Store without pushing (published while the client was away). */
  store(over: Partial<Notification> = {}): Notification {
    const n = notif(++this.seq, over)
    this.items.push(n)
    return n
  }

  view(n: Notification): Notification {
    return { ...n, read: this.read.has(n.id) }
  }

  unread(): number {
    return this.items.filter((n) => !this.read.has(n.id)).length
  }

  get live(): FakeConn[] {
    return this.conns.filter((c) => c.connected)
  }

  get lastConn(): FakeConn | undefined {
    return this.conns[this.conns.length - 1]
  }

  factory: ConnectionFactory = (params, handlers) => {
    const c = new FakeConn(params, handlers)
    this.conns.push(c)
    queueMicrotask(() => {
      if (c.closed) return
      if (this.down) return c.drop()
      if (!this.isValid(params.token)) {
        handlers.onStompError('invalid token', '')
        return c.drop()
      }
      c.connected = true
      handlers.onConnected()
      if (params.since) {
        for (const n of this.items) if (n.cursor! > params.since) handlers.onNotification(this.view(n))
      }
    })
    return c
  }

  killAll() {
    for (const c of [...this.conns]) c.drop()
  }

  fetch = async (input: string, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input)
    const method = (init.method ?? 'GET').toUpperCase()
    const headers = (init.headers ?? {}) as Record<string, string>
    const auth = headers.Authorization ?? null
    this.requests.push({ method, url: url.pathname + url.search, auth })
    if (this.hold) await this.hold
    if (this.down) throw new TypeError('Failed to fetch')
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : null
    if (!this.isValid(token)) return json(401, { error: { code: 'unauthorized', message: 'bad token' } })
    if (method === 'GET' && url.pathname === '/api/notifications') {
      const limit = Number(url.searchParams.get('limit') ?? 20)
      const before = url.searchParams.get('before')
      const newestFirst = [...this.items].reverse().filter((n) => !before || n.cursor! < before)
      const page = newestFirst.slice(0, limit)
      const next = newestFirst.length > limit ? page[page.length - 1]!.cursor! : null
      return json(200, { items: page.map((n) => this.view(n)), next_cursor: next, unread_count: this.unread() })
    }
    const m = url.pathname.match(/^\/api\/notifications\/([^/]+)\/read$/)
    if (method === 'POST' && m) {
      if (this.failReads) return json(503, { error: { code: 'unavailable', message: 'try later' } })
      const id = decodeURIComponent(m[1]!)
      if (!this.items.some((n) => n.id === id)) return json(404, { error: { code: 'not_found', message: 'no' } })
      this.read.add(id)
      return new Response(null, { status: 204 })
    }
    if (url.pathname === '/api/preferences') {
      if (method === 'GET') return json(200, this.prefs ?? {})
      if (this.prefsReject) return json(400, { error: { code: 'invalid_input', ...this.prefsReject } })
      const body = JSON.parse(String(init.body ?? '{}'))
      if (typeof body.tz !== 'string' || !body.tz.includes('/') && body.tz !== 'UTC' || body.tz.startsWith('Mars/'))
        return json(400, { error: { code: 'invalid_input', message: 'not an IANA time zone', field: 'tz' } })
      this.prefs = body
      return json(200, body)
    }
    if (method === 'POST' && url.pathname === '/api/notifications/read-all') {
      for (const n of this.items) this.read.add(n.id)
      return new Response(null, { status: 204 })
    }
    return json(404, { error: { code: 'not_found', message: url.pathname } })
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
}

/** A BroadcastChannel stand-in: channels with the same name deliver to each other (async). */
export function channelBus(): ChannelFactory {
  const rooms = new Map<string, Set<ChannelLike>>()
  return (name) => {
    const room = rooms.get(name) ?? new Set<ChannelLike>()
    rooms.set(name, room)
    const ch: ChannelLike = {
      onmessage: null,
      postMessage(msg) {
        const data = structuredClone(msg)
        for (const other of room) if (other !== ch) queueMicrotask(() => other.onmessage?.({ data }))
      },
      close() {
        room.delete(ch)
      },
    }
    room.add(ch)
    return ch
  }
}

/** Let queued microtasks and resolved fetches run (real timers only). */
export async function flush(times = 10): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve()
  await new Promise((r) => setTimeout(r, 0))
}
