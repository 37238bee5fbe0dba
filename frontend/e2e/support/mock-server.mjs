// A small stand-in for the Rust example server (contract sections 2, 3, 5): in-memory store,
// REST, STOMP 1.2 over WebSocket with `since` resume, HS256 JWTs. Only a development aid for
// the browser tests (NOTIFY_E2E_SERVER=mock); the real tests run against
// target/release/examples/server.
//
//   node e2e/support/mock-server.mjs   (env: NOTIFY_LISTEN, NOTIFY_JWT_SECRET, NOTIFY_PUBLISH_KEY)
import { createHmac, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocketServer } from 'ws'

const here = dirname(fileURLToPath(import.meta.url))
const [host, port] = (process.env.NOTIFY_LISTEN ?? '127.0.0.1:8080').split(':')
const secret = process.env.NOTIFY_JWT_SECRET ?? 'notify-demo-secret'
const publishKey = process.env.NOTIFY_PUBLISH_KEY ?? 'notify-demo-key'
const origins = (process.env.NOTIFY_ALLOWED_ORIGINS ?? '').split(',').filter(Boolean)

/** @type {{n: object, users: Set<string>|null, groups: string[]}[]} oldest first */
const store = []
const readBy = new Map() // user -> Set(id)
let seq = 0
const sessions = new Set()
const prefs = new Map() // user -> preferences (contract section 5a)

const DEFAULT_PREFS = {
  muted_types: [],
  tz: 'UTC',
  quiet_hours: null,
  email: { enabled: false, min_priority: 'high', after_s: 600 },
  digest: { enabled: false, at: '09:00' },
}

function prefsOf(user) {
  return prefs.get(user) ?? structuredClone(DEFAULT_PREFS)
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d$/

/** Section 5a's validation, answering the field a 400 names as the Rust server does. */
function validatePrefs(v) {
  const bad = (field, message) => ({ error: { field, message } })
  if (!v || typeof v !== 'object' || Array.isArray(v)) return bad(undefined, 'preferences must be a JSON object')
  const out = structuredClone(DEFAULT_PREFS)
  for (const k of Object.keys(v)) if (!(k in DEFAULT_PREFS)) return bad(k, 'unknown field')
  if (v.muted_types != null) {
    if (!Array.isArray(v.muted_types)) return bad('muted_types', 'must be an array of strings')
    if (v.muted_types.length > 64) return bad('muted_types', 'at most 64 entries')
    for (const [i, t] of v.muted_types.entries()) {
      if (typeof t !== 'string' || !/^[A-Za-z0-9_.-]+(\.\*)?$|^\*$/.test(t)) return bad(`muted_types[${i}]`, `${JSON.stringify(t)} is not a type name or prefix glob`)
    }
    out.muted_types = v.muted_types
  }
  if (v.tz != null) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: v.tz })
      if (typeof v.tz !== 'string' || !v.tz) throw new Error()
    } catch {
      return bad('tz', `${JSON.stringify(v.tz)} is not an IANA time zone`)
    }
    out.tz = v.tz
  }
  if (v.quiet_hours != null) {
    const q = v.quiet_hours
    if (typeof q !== 'object') return bad('quiet_hours', 'must be an object')
    if (!TIME.test(q.from ?? '')) return bad('quiet_hours.from', 'must be a time HH:MM')
    if (!TIME.test(q.to ?? '')) return bad('quiet_hours.to', 'must be a time HH:MM')
    if (q.from === q.to) return bad('quiet_hours.to', 'must differ from quiet_hours.from')
    out.quiet_hours = { from: q.from, to: q.to }
  }
  if (v.email != null) {
    const e = v.email
    if (e.enabled != null && typeof e.enabled !== 'boolean') return bad('email.enabled', 'must be a boolean')
    if (e.min_priority != null && !['low', 'normal', 'high'].includes(e.min_priority)) return bad('email.min_priority', 'unknown priority (expected low, normal or high)')
    if (e.after_s != null && !(Number.isInteger(e.after_s) && e.after_s >= 0 && e.after_s <= 604800)) return bad('email.after_s', 'must be an integer from 0 to 604800')
    out.email = { ...out.email, ...e }
  }
  if (v.digest != null) {
    const d = v.digest
    if (d.enabled != null && typeof d.enabled !== 'boolean') return bad('digest.enabled', 'must be a boolean')
    if (d.at != null && !TIME.test(d.at)) return bad('digest.at', 'must be a time HH:MM')
    out.digest = { ...out.digest, ...d }
  }
  return { prefs: out }
}

function verify(token) {
  if (!token) return null
  const [h, p, s] = token.split('.')
  if (!s) return null
  const mac = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')
  if (mac.length !== s.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(s))) return null
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
  if (typeof claims.exp !== 'number' || claims.exp * 1000 < Date.now()) return null
  return { sub: claims.sub, groups: claims.groups ?? [] }
}

function visible(entry, user) {
  if (entry.n.audience.kind === 'broadcast') return true
  if (entry.n.audience.kind === 'user') return entry.n.audience.id === user.sub
  return user.groups.includes(entry.n.audience.id)
}

function view(entry, user) {
  return { ...entry.n, read: readBy.get(user.sub)?.has(entry.n.id) ?? false }
}

function cursorOf(s) {
  return 'c' + String(s).padStart(10, '0')
}

function publish(ev) {
  const out = []
  const targets = [
    ...(ev.recipients?.users ?? []).map((id) => ({ kind: 'user', id })),
    ...(ev.recipients?.groups ?? []).map((id) => ({ kind: 'group', id })),
    ...(ev.recipients?.broadcast ? [{ kind: 'broadcast' }] : []),
  ]
  for (const audience of targets) {
    const id = `n_${ev.id}_${audience.kind}_${audience.id ?? ''}`
    if (store.some((e) => e.n.id === id)) continue
    const s = ++seq
    const n = {
      id,
      event_id: ev.id,
      type: ev.type,
      audience,
      title: ev.title,
      message: ev.message,
      link: ev.link ?? null,
      data: ev.data ?? null,
      priority: ev.priority ?? 'normal',
      created_at: new Date().toISOString(),
      read: false,
      cursor: cursorOf(s),
    }
    const entry = { n }
    store.push(entry)
    out.push(n)
    for (const sess of sessions) if (sess.sub && visible(entry, sess.user)) sess.send(view(entry, sess.user))
  }
  return out.length
}

function cors(req, res) {
  const o = req.headers.origin
  if (o && (origins.includes(o) || origins.includes('*'))) {
    res.setHeader('Access-Control-Allow-Origin', o)
    res.setHeader('Vary', 'Origin')
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Api-Key')
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, OPTIONS')
  }
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(body === undefined ? '' : JSON.stringify(body))
}

const server = createServer(async (req, res) => {
  cors(req, res)
  if (req.method === 'OPTIONS') return res.writeHead(204).end()
  const url = new URL(req.url, 'http://x')
  if (url.pathname === '/health/ready' || url.pathname === '/health/live') return json(res, 200, { status: 'UP' })
  if (url.pathname === '/widget/notify-bell.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' })
    return res.end(readFileSync(resolve(here, '../../../examples/assets/notify-bell.js')))
  }
  if (url.pathname === '/api/events' && req.method === 'POST') {
    if (req.headers['x-api-key'] !== publishKey) return json(res, 401, { error: { code: 'unauthorized', message: 'key' } })
    let body = ''
    for await (const chunk of req) body += chunk
    const evs = [].concat(JSON.parse(body))
    let n = 0
    for (const ev of evs) n += publish(ev) > 0 ? 1 : 0
    return json(res, 202, { accepted: n })
  }
  // Contract section 5: query tokens only where browsers cannot send headers.
  if (url.searchParams.has('access_token') && url.pathname !== '/api/stream')
    return json(res, 401, { error: { code: 'token_in_query', message: 'send the token in the Authorization header' } })
  const auth = req.headers.authorization ?? ''
  const user = verify(auth.startsWith('Bearer ') ? auth.slice(7) : null)
  if (url.pathname.startsWith('/api/') && !user) return json(res, 401, { error: { code: 'unauthorized', message: 'token' } })
  if (url.pathname === '/api/preferences') {
    if (req.method === 'GET') return json(res, 200, prefsOf(user.sub))
    if (req.method !== 'PUT') return json(res, 405, { error: { code: 'method_not_allowed', message: req.method } })
    let body = ''
    for await (const chunk of req) body += chunk
    let value
    try {
      value = JSON.parse(body)
    } catch {
      return json(res, 400, { error: { code: 'invalid_input', message: 'invalid JSON' } })
    }
    const checked = validatePrefs(value)
    if (checked.error) return json(res, 400, { error: { code: 'invalid_input', ...checked.error } })
    prefs.set(user.sub, checked.prefs)
    return json(res, 200, checked.prefs)
  }
  const mine = () => store.filter((e) => visible(e, user))
  if (url.pathname === '/api/notifications' && req.method === 'GET') {
    const limit = Math.min(200, Number(url.searchParams.get('limit') ?? 20))
    const before = url.searchParams.get('before')
    const all = mine().reverse().filter((e) => !before || e.n.cursor < before)
    const page = all.slice(0, limit)
    const unread = mine().filter((e) => !readBy.get(user.sub)?.has(e.n.id)).length
    return json(res, 200, {
      items: page.map((e) => view(e, user)),
      next_cursor: all.length > limit ? page.at(-1).n.cursor : null,
      unread_count: unread,
    })
  }
  if (url.pathname === '/api/notifications/unread-count') {
    return json(res, 200, { unread_count: mine().filter((e) => !readBy.get(user.sub)?.has(e.n.id)).length })
  }
  const m = url.pathname.match(/^\/api\/notifications\/([^/]+)\/read$/)
  if (m && req.method === 'POST') {
    const id = decodeURIComponent(m[1])
    if (!mine().some((e) => e.n.id === id)) return json(res, 404, { error: { code: 'not_found', message: id } })
    if (!readBy.has(user.sub)) readBy.set(user.sub, new Set())
    readBy.get(user.sub).add(id)
    return json(res, 204)
  }
  if (url.pathname === '/api/notifications/read-all' && req.method === 'POST') {
    if (!readBy.has(user.sub)) readBy.set(user.sub, new Set())
    for (const e of mine()) readBy.get(user.sub).add(e.n.id)
    return json(res, 204)
  }
  json(res, 404, { error: { code: 'not_found', message: url.pathname } })
})

function frame(command, headers, body = '') {
  return `${command}\n${Object.entries(headers)
    .map(([k, v]) => `${k}:${v}`)
    .join('\n')}\n\n${body}\0`
}

function parseFrame(text) {
  const [head, ...rest] = text.split('\n\n')
  const [command, ...lines] = head.replace(/^\n+/, '').split('\n')
  const headers = {}
  for (const l of lines) {
    const i = l.indexOf(':')
    if (i > 0 && !(l.slice(0, i) in headers)) headers[l.slice(0, i)] = l.slice(i + 1)
  }
  return { command, headers, body: rest.join('\n\n').replace(/\0$/, '') }
}

const wss = new WebSocketServer({ server, path: '/notify', handleProtocols: (p) => (p.has('v12.stomp') ? 'v12.stomp' : false) })
wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://x')
  const sess = { user: null, sub: null, send: () => {} }
  sessions.add(sess)
  ws.on('close', () => {
    sessions.delete(sess)
    clearInterval(sess.pinger)
    clearInterval(sess.ponger)
  })
  ws.on('message', (data) => {
    sess.lastSeen = Date.now()
    for (const part of data.toString().split('\0')) {
      if (!part.trim()) continue
      const f = parseFrame(part)
      if (f.command === 'CONNECT' || f.command === 'STOMP') {
        const a = f.headers.Authorization ?? f.headers.authorization ?? ''
        sess.user = verify(url.searchParams.get('access_token')) ?? verify(a.startsWith('Bearer ') ? a.slice(7) : '')
        if (!sess.user) {
          ws.send(frame('ERROR', { message: 'invalid or expired token' }))
          return ws.close()
        }
        // Heart-beats as STOMP 1.2 says: the server offers 10000,10000; a peer silent for
        // longer than twice the agreed interval is dropped (contract section 3).
        const [cx, cy] = (f.headers['heart-beat'] ?? '0,0').split(',').map(Number)
        const out = cy > 0 ? Math.max(cy, 10_000) : 0
        const inn = cx > 0 ? Math.max(cx, 10_000) : 0
        if (out) sess.pinger = setInterval(() => ws.readyState === 1 && ws.send('\n'), out)
        if (inn) {
          sess.lastSeen = Date.now()
          sess.ponger = setInterval(() => {
            if (Date.now() - sess.lastSeen > 2 * inn) {
              console.log(`dropping ${sess.user.sub}: silent for ${Date.now() - sess.lastSeen} ms`)
              ws.terminate()
            }
          }, 1000)
        }
        ws.send(frame('CONNECTED', { version: '1.2', 'heart-beat': `${out},${inn}` }))
      } else if (f.command === 'SUBSCRIBE') {
        if (f.headers.destination !== '/user/queue/notifications') {
          ws.send(frame('ERROR', { message: `no such destination ${f.headers.destination}` }))
          return ws.close()
        }
        const subId = f.headers.id
        sess.send = (n) =>
          ws.send(
            frame(
              'MESSAGE',
              {
                destination: '/user/queue/notifications',
                subscription: subId,
                'message-id': n.id,
                'content-type': 'application/json',
              },
              JSON.stringify(n),
            ),
          )
        const since = f.headers.since
        if (since) for (const e of store) if (e.n.cursor > since && visible(e, sess.user)) sess.send(view(e, sess.user))
        sess.sub = subId
      } else if (f.command === 'DISCONNECT') {
        if (f.headers.receipt) ws.send(frame('RECEIPT', { 'receipt-id': f.headers.receipt }))
        ws.close()
      }
    }
  })
})

server.listen(Number(port), host, () => console.log(`mock notify server on http://${host}:${port}`))
const stop = () => {
  for (const c of wss.clients) c.terminate()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 500)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
