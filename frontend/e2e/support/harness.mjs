// Browser-test harness: the notify server process, a static page server, JWTs, publishing,
// Chromium through playwright-core (Debian's /usr/bin/chromium; never a downloaded browser).
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const FRONTEND = resolve(here, '../..')
export const REPO = resolve(FRONTEND, '..')
export const ARTIFACTS = join(FRONTEND, 'test-artifacts')
export const SECRET = 'test-secret-at-least-32-bytes-long!' // the server refuses shorter HS256 secrets
export const PUBLISH_KEY = 'test-key'
export const WAIT_MS = Number(process.env.NOTIFY_E2E_WAIT_MS ?? 15000)
mkdirSync(ARTIFACTS, { recursive: true })

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms))
}

/** Polls `fn` until it returns a truthy value (returned) or the time is up (throws with `what`). */
export async function until(what, fn, timeoutMs = WAIT_MS, everyMs = 100) {
  const end = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      last = await fn()
      if (last) return last
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`)
    await sleep(everyMs)
  }
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createNetServer()
    s.unref()
    s.on('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })
}

/** HS256 JWT with `sub`, `groups`, `exp`. */
export function mintToken(sub, { groups = [], ttlSec = 3600, secret = SECRET } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const head = b64({ alg: 'HS256', typ: 'JWT' })
  const body = b64({ sub, groups, exp: Math.floor(Date.now() / 1000) + ttlSec, iat: Math.floor(Date.now() / 1000) })
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

/**
 * The notify server: target/release/examples/server (or NOTIFY_E2E_SERVER=<path>, or
 * NOTIFY_E2E_SERVER=mock for the node stand-in), on a fixed port so it can be restarted.
 */
export class NotifyServer {
  constructor({ port, allowedOrigins = '', name = 'server', demo = false, mock = false }) {
    this.demo = demo
    /** Force the node stand-in (for endpoints the Rust server does not have yet). */
    this.mock = mock
    this.port = port
    this.url = `http://127.0.0.1:${port}`
    this.allowedOrigins = allowedOrigins
    this.name = name
    this.proc = null
    this.starts = 0
  }

  command() {
    const choice = this.mock ? 'mock' : process.env.NOTIFY_E2E_SERVER
    if (choice === 'mock') return [process.execPath, [join(here, 'mock-server.mjs')]]
    const bin = choice || join(REPO, 'target/release/examples/server')
    if (!existsSync(bin)) {
      throw new Error(`${bin} not found: build it with \`cargo build --release --example server\` in ${REPO}`)
    }
    return [bin, []]
  }

  async start() {
    const [cmd, args] = this.command()
    this.starts++
    const log = createWriteStream(join(ARTIFACTS, `${this.name}-${this.port}-${this.starts}.log`))
    const env = {
      ...process.env,
      NOTIFY_LISTEN: `127.0.0.1:${this.port}`,
      NOTIFY_JWT_SECRET: SECRET,
      NOTIFY_PUBLISH_KEY: PUBLISH_KEY,
      RUST_LOG: process.env.RUST_LOG ?? 'info',
    }
    if (this.demo) {
      // demo mode: no secret and no key configured; the server serves /demo
      delete env.NOTIFY_JWT_SECRET
      delete env.NOTIFY_PUBLISH_KEY
      delete env.NOTIFY_JWT_PUBLIC_KEY_FILE
    }
    if (this.allowedOrigins) env.NOTIFY_ALLOWED_ORIGINS = this.allowedOrigins
    delete env.NOTIFY_KAFKA_BROKERS
    delete env.NOTIFY_MONGO_URI
    // Optional persistent store (e.g. FerretDB from scripts/ferretdb.sh): then a restart keeps
    // the inbox and the widget's `since` resume is served from the store.
    if (process.env.NOTIFY_E2E_MONGO_URI) {
      env.NOTIFY_MONGO_URI = process.env.NOTIFY_E2E_MONGO_URI
      env.NOTIFY_MONGO_DB = `e2e_widget_${this.port}`
    }
    const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    proc.stdout.pipe(log)
    proc.stderr.pipe(log)
    this.proc = proc
    let exited = null
    proc.on('exit', (code, sig) => (exited = { code, sig }))
    await until(`${this.name} ready on ${this.url}`, async () => {
      if (exited) throw new Error(`server exited early (${JSON.stringify(exited)}); see test-artifacts/`)
      const r = await fetch(`${this.url}/health/ready`).catch(() => null)
      return r && r.status === 200
    })
  }

  /** kill -9: the instance dies mid-stream, closing nothing cleanly. */
  async kill() {
    const p = this.proc
    if (!p || p.exitCode != null || p.signalCode != null) return
    const gone = new Promise((r) => p.once('exit', r))
    p.kill('SIGKILL')
    await gone
    this.proc = null
  }

  /** SIGTERM and wait for exit (SIGKILL after 10 s). */
  async stop() {
    const p = this.proc
    if (!p || p.exitCode != null || p.signalCode != null) return
    const gone = new Promise((r) => p.once('exit', r))
    p.kill('SIGTERM')
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000)
    await gone
    clearTimeout(t)
    this.proc = null
  }

  async publish(events) {
    const r = await fetch(`${this.url}/api/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': PUBLISH_KEY },
      body: JSON.stringify(events),
    })
    if (r.status !== 202) throw new Error(`publish: HTTP ${r.status} ${await r.text()}`)
    return r.json()
  }

  async api(path, token, init = {}) {
    const r = await fetch(`${this.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
    })
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`)
    return r.status === 204 ? null : r.json()
  }

  async unreadCount(token) {
    return (await this.api('/api/notifications/unread-count', token)).unread_count
  }
}

let eventSeq = 0
/** A contract event (section 1) for one user. */
export function event(user, over = {}) {
  const n = ++eventSeq
  return {
    id: `e2e-${process.pid}-${Date.now()}-${n}`,
    type: 'test.event',
    recipients: { users: [user] },
    title: `Event ${n}`,
    message: `Message for event ${n}`,
    link: `/things/${n}`,
    priority: 'normal',
    ...over,
  }
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css' }

/**
 * Serves test pages (e2e/pages/), the built widget from disk (/notify-bell.js →
 * examples/assets/notify-bell.js) and the ES build (/es/ → dist/es/, /vue.js → Vue's browser build).
 */
export async function startStaticServer() {
  const port = await freePort()
  const tokenRequests = []
  const routes = {
    '/notify-bell.js': join(REPO, 'examples/assets/notify-bell.js'),
    '/vue.js': join(FRONTEND, 'node_modules/vue/dist/vue.esm-browser.prod.js'),
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (url.pathname === '/token') {
      // the host application's token endpoint: ?user=&ttl=<s>&bad=1 (signed with a wrong secret)
      tokenRequests.push(Object.fromEntries(url.searchParams))
      const token = mintToken(url.searchParams.get('user') ?? 'anon', {
        ttlSec: Number(url.searchParams.get('ttl') ?? 3600),
        secret: url.searchParams.get('bad') ? 'wrong-secret' : SECRET,
      })
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' })
      return res.end(token)
    }
    let file = routes[url.pathname]
    if (!file && url.pathname.startsWith('/es/')) file = join(FRONTEND, 'dist/es', url.pathname.slice(4))
    if (!file && url.pathname.startsWith('/stompjs/')) file = join(FRONTEND, 'node_modules/@stomp/stompjs/esm6', url.pathname.slice(9))
    if (!file) file = join(here, '../pages', url.pathname === '/' ? 'index.html' : url.pathname)
    if (!file.startsWith(FRONTEND) && !file.startsWith(join(REPO, 'examples'))) return res.writeHead(403).end()
    try {
      let body = readFileSync(file)
      if (extname(file) === '.html') {
        // %Q:name% → the HTML-escaped query parameter, so pages carry real static attributes
        const esc = (v) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
        body = body.toString().replace(/%Q:(\w+)%/g, (_, k) => esc(url.searchParams.get(k) ?? ''))
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' })
      res.end(body)
    } catch {
      res.writeHead(404).end('not found')
    }
  })
  await new Promise((r) => server.listen(port, '127.0.0.1', r))
  return {
    origin: `http://127.0.0.1:${port}`,
    tokenRequests,
    close: () => new Promise((r) => server.close(r)),
  }
}

/** Debian's Chromium via playwright-core. */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core')
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
  if (!existsSync(executablePath)) throw new Error(`${executablePath} missing: run scripts/chromium.sh (apt-get install -y chromium)`)
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--no-first-run'],
  })
}

/**
 * The real server if it serves `GET /api/preferences` (contract section 5a), else the node
 * stand-in, which implements it per the contract (until the Rust endpoints are on main).
 */
export async function startServerWithPreferences(opts) {
  const real = new NotifyServer(opts)
  await real.start()
  const r = await fetch(`${real.url}/api/preferences`, { headers: { authorization: `Bearer ${mintToken('probe')}` } }).catch(() => null)
  if (r && r.status === 200) return real
  await real.stop()
  console.log(`# ${opts.name}: the server has no /api/preferences (HTTP ${r?.status}); using e2e/support/mock-server.mjs`)
  const mock = new NotifyServer({ ...opts, mock: true })
  await mock.start()
  return mock
}

/** axe-core (WCAG 2 A and AA rules) over the page, shadow roots included; returns the violations. */
export async function axeViolations(page, context = 'notify-bell') {
  const src = join(FRONTEND, 'node_modules/axe-core/axe.min.js')
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.addScriptTag({ path: src })
  return page.evaluate(async (ctx) => {
    const r = await window.axe.run(ctx ? { include: [[ctx]] } : document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      resultTypes: ['violations'],
    })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(' ')} :: ${n.failureSummary}`) }))
  }, context)
}

/**
 * Makes a page behave as a hidden tab does in Chrome: `document.visibilityState` is `hidden`
 * and main-thread timers fire only at aligned wake-ups (Chrome's intensive throttling: once a
 * minute after five minutes hidden; `everyMs` here). Worker timers are left alone, as in the
 * browser. Headless Chromium keeps every page visible (no window is ever occluded), so the
 * test installs the browser's policy itself; call before the page's scripts run.
 */
export async function emulateHiddenTab(page, { everyMs = 30_000 } = {}) {
  await page.addInitScript((every) => {
    const real = { setTimeout: window.setTimeout.bind(window), setInterval: window.setInterval.bind(window), clearTimeout: window.clearTimeout.bind(window), clearInterval: window.clearInterval.bind(window) }
    let hidden = false
    const pending = new Map() // timer id -> callback held back until the next wake-up
    let wake = null
    const runPending = () => {
      const due = [...pending.values()]
      pending.clear()
      for (const run of due) {
        try {
          run()
        } catch (err) {
          console.error(err)
        }
      }
    }
    const scheduleWake = () => {
      if (wake != null) return
      const now = Date.now()
      wake = real.setTimeout(() => {
        wake = null
        runPending()
      }, Math.ceil((now + 1) / every) * every - now)
    }
    // Every timer is a real one whose callback, while hidden, waits for the aligned wake-up;
    // an interval that ticked several times meanwhile runs once (as Chrome's throttling does).
    const wrap = (idBox, fn, args) => () => {
      if (!hidden) return fn(...args)
      pending.set(idBox.id, () => fn(...args))
      scheduleWake()
    }
    window.setTimeout = (fn, ms = 0, ...args) => {
      if (typeof fn !== 'function') return real.setTimeout(fn, ms)
      const box = {}
      box.id = real.setTimeout(wrap(box, fn, args), ms)
      return box.id
    }
    window.setInterval = (fn, ms = 0, ...args) => {
      if (typeof fn !== 'function') return real.setInterval(fn, ms)
      const box = {}
      box.id = real.setInterval(wrap(box, fn, args), ms)
      return box.id
    }
    window.clearTimeout = (id) => {
      pending.delete(id)
      real.clearTimeout(id)
    }
    window.clearInterval = (id) => {
      pending.delete(id)
      real.clearInterval(id)
    }
    Object.defineProperty(Document.prototype, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') })
    Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => hidden })
    window.__setHidden = (h) => {
      hidden = h
      document.dispatchEvent(new Event('visibilitychange'))
      if (!h) runPending()
    }
  }, everyMs)
}

/** Collects console errors and page errors of a page, for assertions and debugging. */
export function watchPage(page, label) {
  const problems = []
  page.on('pageerror', (e) => problems.push(`[${label}] pageerror: ${e.message}`))
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    // A server without protocol section 6 answers the widget's preferences request with 404
    // (the widget then has no quiet hours); the browser logs that, the widget does not.
    if (/^Failed to load resource/.test(m.text()) && /\/api\/preferences$/.test(m.location()?.url ?? '')) return
    problems.push(`[${label}] console.error: ${m.text()}`)
  })
  return problems
}

export async function screenshot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) })
}
