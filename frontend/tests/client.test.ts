import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createNotifyClient, serverList, type NotifyClient, type NotifyClientOptions } from '../src/client/client'
import type { NewNotificationEvent } from '../src/client/types'
import { channelBus, FakeBackend, tokenFor } from './helpers'

const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms)

let clients: NotifyClient[] = []
function make(be: FakeBackend, opts: Partial<NotifyClientOptions> = {}): NotifyClient {
  const c = createNotifyClient({
    server: 'http://notify.test',
    token: tokenFor('alice'),
    fetch: be.fetch,
    connectionFactory: be.factory,
    tabSync: false,
    window: null,
    document: null,
    reconnect: { baseMs: 1000, maxMs: 30000, jitter: 0 },
    loadPreferences: false,
    ...opts,
  })
  clients.push(c)
  return c
}

function newEvents(c: NotifyClient): NewNotificationEvent[] {
  const seen: NewNotificationEvent[] = []
  c.on('notification', (e) => seen.push(e))
  return seen
}

beforeEach(() => {
  vi.useFakeTimers()
  vi.setSystemTime(new Date('2026-01-01T00:10:00Z'))
})
afterEach(() => {
  for (const c of clients) c.stop()
  clients = []
  vi.useRealTimers()
})

describe('createNotifyClient', () => {
  it('loads the inbox from REST, then subscribes with since = newest cursor', async () => {
    const be = new FakeBackend()
    be.store()
    be.store()
    be.read.add('n1')
    const c = make(be)
    const states: string[] = []
    c.on('connection', (s) => states.push(s))
    await c.start()
    await tick()
    expect(be.requests[0]).toMatchObject({ method: 'GET', url: '/api/notifications?limit=20' })
    expect(be.requests[0]!.auth).toMatch(/^Bearer /)
    expect(c.state.items.map((n) => n.id)).toEqual(['n2', 'n1'])
    expect(c.state.unreadCount).toBe(1)
    expect(c.state.loaded).toBe(true)
    expect(be.lastConn!.params.since).toBe('c000002')
    // no token in any URL: REST sends `Authorization`, STOMP the CONNECT header (params.token)
    expect(be.lastConn!.params.url).toBe('ws://notify.test/notify')
    expect(be.lastConn!.params.token).toBeTruthy()
    expect(be.requests.every((r) => !r.url.includes('access_token'))).toBe(true)
    expect(states).toEqual(['connecting', 'live'])
  })

  it('counts a live notification once, however often it is delivered', async () => {
    const be = new FakeBackend()
    const c = make(be)
    const seen = newEvents(c)
    await c.start()
    await tick()
    const n = be.publish()
    be.lastConn!.handlers.onNotification({ ...n })
    be.lastConn!.handlers.onNotification({ ...n })
    expect(c.state.unreadCount).toBe(1)
    expect(c.state.items).toHaveLength(1)
    expect(seen).toHaveLength(1)
    expect(seen[0]!.source).toBe('live')
  })

  it('with an empty inbox, resyncs after subscribing so nothing between load and subscribe is lost', async () => {
    const be = new FakeBackend()
    const c = make(be)
    const startP = c.start()
    await startP
    // stored after the first page load, before the subscription: no cursor to resume from
    be.store()
    await tick()
    await tick()
    expect(be.requests.filter((r) => r.method === 'GET')).toHaveLength(2)
    expect(c.state.items.map((n) => n.id)).toEqual(['n1'])
    expect(c.state.unreadCount).toBe(1)
  })

  it('reconnects with backoff and resumes from the last cursor: every missed notification exactly once', async () => {
    const be = new FakeBackend()
    be.store()
    const attemptsAt: number[] = []
    let t0 = 0
    const c = make(be, {
      healthyAfterMs: 60_000,
      connectionFactory: (p, h) => {
        attemptsAt.push(Date.now() - t0)
        return be.factory(p, h)
      },
    })
    const seen = newEvents(c)
    await c.start()
    await tick()
    be.publish()
    be.publish()
    expect(c.state.unreadCount).toBe(3)
    // server goes away; events keep being stored
    be.down = true
    be.killAll()
    expect(c.state.connection).toBe('reconnecting')
    be.store()
    be.store()
    attemptsAt.length = 0
    t0 = Date.now()
    // comes back after a few failed attempts (1 s, 2 s, 4 s with jitter 0)
    await tick(1000)
    await tick(2000)
    expect(c.state.connection).toBe('reconnecting')
    be.down = false
    be.store()
    await tick(4000)
    await tick()
    expect(attemptsAt).toEqual([1000, 3000, 7000])
    expect(c.state.connection).toBe('live')
    expect(be.lastConn!.params.since).toBe('c000003')
    const ids = c.state.items.map((n) => n.id)
    expect(ids).toEqual(['n6', 'n5', 'n4', 'n3', 'n2', 'n1'])
    expect(new Set(ids).size).toBe(ids.length)
    expect(c.state.unreadCount).toBe(6)
    expect(seen.map((e) => e.notification.id)).toEqual(['n2', 'n3', 'n4', 'n5', 'n6'])
    // the resync after reconnect (REST) does not double count
    await tick(100)
    expect(c.state.unreadCount).toBe(6)
    expect(be.unread()).toBe(6)
  })

  it('after a restart with an empty store: nothing lost (page catches what since skips), count = server', async () => {
    const be = new FakeBackend()
    const c = make(be)
    await c.start()
    await tick()
    be.publish({ id: 'old-1' })
    be.publish({ id: 'old-2' })
    be.publish({ id: 'old-3' })
    expect(c.state.unreadCount).toBe(3)
    be.down = true
    be.killAll()
    // the new server forgot everything and its cursors start again from 1
    be.items = []
    be.seq = 0
    await tick(1000)
    be.down = false
    be.store({ id: 'new-1' })
    be.store({ id: 'new-2' })
    await tick(2000)
    await tick()
    expect(c.state.connection).toBe('live')
    expect(be.lastConn!.params.since).toBe('c000003') // the old cursor: skips new-1, new-2
    await tick(100)
    expect(c.state.items.map((n) => n.id).sort()).toEqual(['new-1', 'new-2', 'old-1', 'old-2', 'old-3'])
    expect(c.state.unreadCount).toBe(2)
    expect(be.unread()).toBe(2)
    be.publish({ id: 'new-3' })
    expect(c.state.unreadCount).toBe(3)
  })

  it('a resumed stream that repeats already-seen notifications shows and counts them once', async () => {
    const be = new FakeBackend()
    const c = make(be)
    await c.start()
    await tick()
    be.publish()
    be.publish()
    const conn = be.lastConn!
    // the server replays from an older point than necessary (allowed: "may repeat, never go missing")
    conn.handlers.onNotification(be.view(be.items[0]!))
    conn.handlers.onNotification(be.view(be.items[1]!))
    expect(c.state.items).toHaveLength(2)
    expect(c.state.unreadCount).toBe(2)
  })

  it('resets the backoff after a healthy connection, not on every connect', async () => {
    const be = new FakeBackend()
    const c = make(be, { healthyAfterMs: 10_000 })
    await c.start()
    await tick()
    const conns = () => be.conns.length
    be.killAll() // attempt 1 after 1 s
    await tick(1000)
    await tick()
    expect(conns()).toBe(2)
    be.killAll() // connected only briefly: next wait is 2 s
    await tick(1000)
    expect(conns()).toBe(2)
    await tick(1000)
    await tick()
    expect(conns()).toBe(3)
    await tick(10_000) // healthy now
    be.killAll()
    await tick(1000)
    await tick()
    expect(conns()).toBe(4)
  })

  it('shows offline after many failures and reconnects at once when the browser comes online', async () => {
    const be = new FakeBackend()
    const win = new EventTarget()
    const c = make(be, { window: win as unknown as Window, offlineAfterAttempts: 2 })
    await c.start()
    await tick()
    be.down = true
    be.killAll()
    await tick(1000)
    await tick(2000)
    await tick(4000)
    expect(c.state.connection).toBe('offline')
    const before = be.conns.length
    be.down = false
    win.dispatchEvent(new Event('online'))
    await tick()
    expect(be.conns.length).toBe(before + 1)
    expect(c.state.connection).toBe('live')
  })

  it('reconnects when a hidden tab becomes visible', async () => {
    const be = new FakeBackend()
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' as DocumentVisibilityState })
    const c = make(be, { document: doc as unknown as Document, reconnect: { baseMs: 60_000, jitter: 0 } })
    await c.start()
    await tick()
    doc.visibilityState = 'hidden'
    doc.dispatchEvent(new Event('visibilitychange'))
    be.killAll()
    be.store()
    doc.visibilityState = 'visible'
    doc.dispatchEvent(new Event('visibilitychange'))
    await tick()
    await tick()
    expect(c.state.connection).toBe('live')
    expect(c.state.items.map((n) => n.id)).toEqual(['n1'])
  })

  it('asks the token provider again after an auth ERROR and reconnects with the new token', async () => {
    const be = new FakeBackend()
    let issued = 0
    const good = new Set<string>()
    be.isValid = (t) => !!t && good.has(t)
    const provider = vi.fn(async () => {
      const t = tokenFor('alice') + `.${++issued}`
      good.add(t)
      return t
    })
    const c = make(be, { token: null, tokenProvider: provider })
    await c.start()
    await tick()
    expect(c.state.connection).toBe('live')
    expect(provider).toHaveBeenCalledTimes(1)
    // the server revokes it
    good.clear()
    const conn = be.lastConn!
    conn.handlers.onStompError('token expired', '')
    conn.drop()
    await tick(1000)
    await tick()
    expect(provider).toHaveBeenCalledTimes(2)
    expect(c.state.connection).toBe('live')
    expect(be.lastConn!.params.token).toMatch(/\.2$/)
    expect(be.lastConn!.params.url).not.toContain('access_token')
  })

  it('refreshes the token before exp so reconnects and REST use a valid one', async () => {
    const be = new FakeBackend()
    const provider = vi.fn(async () => tokenFor('alice', 120))
    const c = make(be, { token: null, tokenProvider: provider })
    await c.start()
    await tick()
    expect(provider).toHaveBeenCalledTimes(1)
    await tick(91_000)
    expect(provider).toHaveBeenCalledTimes(2)
  })

  it('retries a REST call once with a fresh token after 401', async () => {
    const be = new FakeBackend()
    const valid = new Set<string>()
    be.isValid = (t) => !!t && valid.has(t)
    const first = tokenFor('alice') + '.old'
    const fresh = tokenFor('alice') + '.new'
    valid.add(fresh)
    const c = make(be, { token: first, tokenProvider: async () => fresh })
    await c.start()
    await tick()
    expect(be.requests.slice(0, 2).map((r) => r.auth)).toEqual([`Bearer ${first}`, `Bearer ${fresh}`])
    expect(c.state.error).toBeNull()
    expect(c.state.connection).toBe('live')
  })

  it('shows a rejected fixed token as offline, backs off, and reconnects at once with a new token', async () => {
    const be = new FakeBackend()
    be.isValid = (t) => t === 'good'
    const c = make(be, { token: 'bad' })
    await c.start()
    await tick()
    expect(c.state.error?.kind).toBe('unauthorized')
    expect(c.state.connection).toBe('offline')
    const n = be.conns.length
    await tick(7_000) // 1 s + 2 s + 4 s
    expect(be.conns.length).toBe(n + 3)
    expect(c.state.connection).toBe('offline')
    c.setToken('good')
    await tick()
    expect(c.state.connection).toBe('live')
    expect(be.conns.length).toBe(n + 4)
  })

  it('marks read optimistically, posts, and reverts when the server fails', async () => {
    const be = new FakeBackend()
    be.store()
    be.store()
    const c = make(be)
    await c.start()
    await tick()
    const p = c.markRead('n1')
    expect(c.state.unreadCount).toBe(1)
    await p
    expect(be.requests.at(-1)).toMatchObject({ method: 'POST', url: '/api/notifications/n1/read' })
    expect(be.read.has('n1')).toBe(true)
    be.failReads = true
    await c.markRead('n2')
    expect(c.state.unreadCount).toBe(1)
    expect(c.state.items.find((n) => n.id === 'n2')!.read).toBe(false)
    // marking an already-read one sends nothing
    const count = be.requests.length
    await c.markRead('n1')
    expect(be.requests.length).toBe(count)
  })

  it('mark all read posts read-all and recounts', async () => {
    const be = new FakeBackend()
    for (let i = 0; i < 25; i++) be.store()
    const c = make(be)
    await c.start()
    await tick()
    expect(c.state.unreadCount).toBe(25)
    expect(c.state.items).toHaveLength(20)
    await c.markAllRead()
    expect(c.state.unreadCount).toBe(0)
    expect(be.requests.some((r) => r.url === '/api/notifications/read-all' && r.method === 'POST')).toBe(true)
    await tick(10)
    expect(c.state.unreadCount).toBe(0)
    expect(c.state.items.every((n) => n.read)).toBe(true)
  })

  it('does not take a count fetched while a mark-read was in flight', async () => {
    const be = new FakeBackend()
    be.store()
    be.store()
    const c = make(be)
    await c.start()
    await tick()
    let release!: () => void
    be.hold = new Promise<void>((r) => (release = r))
    const refresh = c.refresh() // GET starts first
    const mark = c.markRead('n2') // then the POST
    be.hold = null
    release()
    await refresh
    await mark
    await tick(10)
    expect(c.state.unreadCount).toBe(1)
    expect(be.unread()).toBe(1)
  })

  it('loads older pages with the before cursor', async () => {
    const be = new FakeBackend()
    for (let i = 0; i < 45; i++) be.store()
    const c = make(be)
    await c.start()
    await tick()
    expect(c.state.hasMore).toBe(true)
    await c.loadMore()
    expect(be.requests.at(-1)!.url).toBe('/api/notifications?limit=20&before=c000026')
    await c.loadMore()
    expect(c.state.items).toHaveLength(45)
    expect(c.state.hasMore).toBe(false)
    expect(c.state.unreadCount).toBe(45)
    expect(c.state.items[0]!.id).toBe('n45')
    expect(c.state.items[44]!.id).toBe('n1')
  })

  it('shows a load error and recovers on refresh', async () => {
    const be = new FakeBackend()
    be.down = true
    const c = make(be)
    await c.start()
    expect(c.state.error?.kind).toBe('network')
    expect(c.state.loaded).toBe(false)
    be.down = false
    be.store()
    await tick(1000)
    await tick()
    expect(c.state.connection).toBe('live')
    expect(c.state.error).toBeNull()
    expect(c.state.items).toHaveLength(1)
  })

  it('switching to another user forgets the previous inbox', async () => {
    const be = new FakeBackend()
    be.store()
    const c = make(be)
    await c.start()
    await tick()
    expect(c.user).toBe('alice')
    expect(c.state.items).toHaveLength(1)
    be.items = []
    c.setToken(tokenFor('bob'))
    await tick()
    await tick()
    expect(c.user).toBe('bob')
    expect(c.state.items).toHaveLength(0)
    expect(c.state.connection).toBe('live')
  })
})

describe('several tabs', () => {
  async function twoTabs(be: FakeBackend) {
    const bus = channelBus()
    const a = make(be, { tabSync: true, channelFactory: bus })
    const b = make(be, { tabSync: true, channelFactory: bus })
    await a.start()
    await b.start()
    await tick()
    return { a, b }
  }

  it('a notification received by both tabs (and relayed between them) is counted once in each', async () => {
    const be = new FakeBackend()
    const { a, b } = await twoTabs(be)
    const seenA = newEvents(a)
    const seenB = newEvents(b)
    be.publish()
    await tick()
    expect(a.state.unreadCount).toBe(1)
    expect(b.state.unreadCount).toBe(1)
    expect(seenA).toHaveLength(1)
    expect(seenB).toHaveLength(1)
  })

  it('a tab that missed a push gets it from the other tab', async () => {
    const be = new FakeBackend()
    const { a, b } = await twoTabs(be)
    const n = be.store()
    be.conns.find((x) => x.connected)!.handlers.onNotification(n) // only the first tab's socket
    await tick()
    expect(a.state.unreadCount + b.state.unreadCount).toBe(2)
    expect(a.state.items.map((x) => x.id)).toEqual(['n1'])
    expect(b.state.items.map((x) => x.id)).toEqual(['n1'])
  })

  it('read state and counts follow across tabs', async () => {
    const be = new FakeBackend()
    be.store()
    be.store()
    be.store()
    const { a, b } = await twoTabs(be)
    expect(b.state.unreadCount).toBe(3)
    await a.markRead('n2')
    await tick(500)
    expect(a.state.unreadCount).toBe(2)
    expect(b.state.unreadCount).toBe(2)
    expect(b.state.items.find((n) => n.id === 'n2')!.read).toBe(true)
    await b.markAllRead()
    await tick(500)
    expect(a.state.unreadCount).toBe(0)
    expect(b.state.unreadCount).toBe(0)
    be.publish()
    await tick(500)
    expect(a.state.unreadCount).toBe(1)
    expect(b.state.unreadCount).toBe(1)
  })

  it('a read in another tab of a notification this tab never loaded is recounted from the server', async () => {
    const be = new FakeBackend()
    for (let i = 0; i < 30; i++) be.store()
    const { a, b } = await twoTabs(be)
    await a.loadMore()
    await a.markRead('n3') // b only has the newest 20
    await tick(500)
    expect(a.state.unreadCount).toBe(29)
    expect(b.state.unreadCount).toBe(29)
  })

  it('tabs of different users do not share', async () => {
    const be = new FakeBackend()
    be.store()
    const bus = channelBus()
    const a = make(be, { tabSync: true, channelFactory: bus })
    const b = make(be, { tabSync: true, channelFactory: bus, token: tokenFor('bob') })
    await a.start()
    await b.start()
    await tick()
    await a.markRead('n1')
    await tick(500)
    expect(b.state.items.find((n) => n.id === 'n1')!.read).toBe(false)
  })
})

describe('several servers (primary/secondary)', () => {
  /** Two instances over one shared store, as in a cluster: same ids and cursors on both. */
  function cluster() {
    const a = new FakeBackend()
    const b = new FakeBackend()
    b.items = a.items
    b.read = a.read
    const pick = (url: string) => (new URL(url).host === 'a.test' ? a : b)
    return {
      a,
      b,
      opts: {
        servers: ['http://a.test', 'http://b.test'],
        fetch: (u: string, init?: RequestInit) => pick(u).fetch(u, init),
        connectionFactory: ((p, h) => pick(p.url).factory(p, h)) as NotifyClientOptions['connectionFactory'],
      } satisfies Partial<NotifyClientOptions>,
    }
  }

  it('moves to the next server at once when the one in use dies, resuming with since: no gap, no repeat', async () => {
    const { a, b, opts } = cluster()
    a.store()
    const c = make(a, { ...opts, reconnect: { baseMs: 30_000, jitter: 0 } })
    const seen = newEvents(c)
    await c.start()
    await tick()
    expect(c.state.connection).toBe('live')
    expect(a.live).toHaveLength(1)
    a.publish()
    expect(c.server).toBe('http://a.test/')
    // instance A dies; B keeps storing (and would push) meanwhile
    a.down = true
    a.killAll()
    a.store() // the shared store keeps filling (B's consumer stores them)
    a.store()
    await tick(600) // well under the 30 s backoff: the fail-over does not wait for it
    expect(c.state.connection).toBe('live')
    expect(b.live).toHaveLength(1)
    expect(b.lastConn!.params.url).toBe('ws://b.test/notify')
    expect(b.lastConn!.params.since).toBe('c000002')
    expect(c.server).toBe('http://b.test/')
    await tick()
    expect(c.state.items.map((n) => n.id)).toEqual(['n4', 'n3', 'n2', 'n1'])
    expect(c.state.unreadCount).toBe(4)
    expect(seen.map((e) => e.notification.id)).toEqual(['n2', 'n3', 'n4'])
    // REST follows the socket to B
    await c.markRead('n4')
    expect(b.requests.at(-1)).toMatchObject({ method: 'POST', url: '/api/notifications/n4/read' })
  })

  it('waits with the backoff only after every server failed in a row', async () => {
    const { a, b, opts } = cluster()
    const urls: string[] = []
    const c = make(a, {
      ...opts,
      reconnect: { baseMs: 5_000, jitter: 0 },
      connectionFactory: (p, h) => {
        urls.push(new URL(p.url).host)
        return opts.connectionFactory!(p, h)
      },
    })
    await c.start()
    await tick()
    a.down = true
    b.down = true
    a.killAll()
    await tick(600) // a died -> b at once (fails)
    expect(urls).toEqual(['a.test', 'b.test'])
    await tick(4000)
    expect(urls).toHaveLength(2) // both failed: backoff 5 s before the next round
    b.down = false
    await tick(1700) // next round: a (still down), then b at once
    expect(urls).toEqual(['a.test', 'b.test', 'a.test', 'b.test'])
    expect(c.state.connection).toBe('live')
  })

  it('serverList reads arrays and attribute strings', () => {
    expect(serverList({ servers: 'https://a.example, https://b.example' as never })).toEqual(['https://a.example', 'https://b.example'])
    expect(serverList({ server: 'https://x.example', servers: [] })).toEqual(['https://x.example'])
    expect(serverList({})).toEqual([''])
  })
})

describe('preferences', () => {
  it('loads at start, reports quiet hours in the user\'s zone, saves, and surfaces 400 field errors', async () => {
    const be = new FakeBackend()
    be.prefs = { muted_types: [], tz: 'Asia/Seoul', quiet_hours: { from: '22:00', to: '07:00' }, email: { enabled: false, min_priority: 'high', after_s: 600 }, digest: { enabled: false, at: '09:00' } }
    const c = make(be, { loadPreferences: true })
    await c.start()
    await tick()
    expect(be.requests.some((r) => r.method === 'GET' && r.url === '/api/preferences')).toBe(true)
    expect(c.preferences?.tz).toBe('Asia/Seoul')
    expect(c.isQuietNow(Date.parse('2026-11-29T14:30:00Z'))).toBe(true) // 23:30 KST
    expect(c.isQuietNow(Date.parse('2026-11-29T03:00:00Z'))).toBe(false) // 12:00 KST
    const saved = await c.savePreferences({ ...c.preferences!, muted_types: ['marketing.*'], quiet_hours: null })
    expect(saved.muted_types).toEqual(['marketing.*'])
    expect(c.preferences?.quiet_hours).toBeNull()
    const put = be.requests.at(-1)!
    expect(put).toMatchObject({ method: 'PUT', url: '/api/preferences' })
    await expect(c.savePreferences({ ...saved, tz: 'Mars/Olympus' })).rejects.toMatchObject({ status: 400, field: 'tz', code: 'invalid_input' })
    expect(c.preferences?.tz).toBe('Asia/Seoul')
  })
})
