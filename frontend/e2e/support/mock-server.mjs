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
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
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
  const auth = req.headers.authorization ?? ''
  const user = verify(auth.startsWith('Bearer ') ? auth.slice(7) : url.searchParams.get('access_token'))
  if (url.pathname.startsWith('/api/') && !user) return json(res, 401, { error: { code: 'unauthorized', message: 'token' } })
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
  ws.on('close', () => sessions.delete(sess))
  ws.on('message', (data) => {
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
        ws.send(frame('CONNECTED', { version: '1.2', 'heart-beat': '0,0' }))
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
