// Sessions that survive what browsers and clusters do to them:
// - a hidden tab (timers throttled to one wake-up per 30 s) keeps one session, counted in
//   WebSocket handshakes, while a page whose heart-beats run on page timers churns;
// - two server instances: kill -9 the one in use mid-stream; the widget moves to the other
//   and resumes with `since`: every notification exactly once.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  emulateHiddenTab,
  event,
  freePort,
  launchBrowser,
  mintToken,
  NotifyServer,
  screenshot,
  sleep,
  startStaticServer,
  until,
} from './support/harness.mjs'

let browser
let site

before(async () => {
  site = await startStaticServer()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await site?.close()
})

const connection = (page) => page.locator('notify-bell .nb-root').getAttribute('data-connection')
const badge = async (page) => {
  const b = page.locator('notify-bell .nb-badge')
  return (await b.count()) ? (await b.textContent()).trim() : ''
}

/** Opens the plain page with WebSocket handshakes to `/notify` counted. */
async function openCounted(query, { hidden = false } = {}) {
  const context = await browser.newContext()
  const page = await context.newPage()
  if (hidden) await emulateHiddenTab(page, { everyMs: 30_000 })
  const sockets = []
  page.on('websocket', (ws) => {
    if (ws.url().includes('/notify')) sockets.push({ url: ws.url(), at: Date.now() })
  })
  await page.goto(`${site.origin}/plain.html?${new URLSearchParams({ cancel: '1', ...query })}`)
  await until('live', async () => (await connection(page)) === 'live')
  return { context, page, sockets }
}

describe('hidden tab', () => {
  let server
  before(async () => {
    server = new NotifyServer({ port: await freePort(), allowedOrigins: site.origin, name: 'hidden' })
    await server.start()
  })
  after(() => server?.stop())

  test('keeps one session for 75 s hidden (heart-beats from a Worker); page-timer heart-beats churn', async () => {
    const worker = await openCounted({ server: server.url, token: mintToken('hidden-w') }, { hidden: true })
    const control = await openCounted({ server: server.url, token: mintToken('hidden-c'), noworker: '1' }, { hidden: true })
    assert.equal(worker.sockets.length, 1)
    assert.equal(control.sockets.length, 1)
    assert.ok(worker.sockets.every((s) => !s.url.includes('access_token')), 'no token in the WebSocket URL')
    const t0 = Date.now()
    for (const p of [worker.page, control.page]) await p.evaluate(() => window.__setHidden(true))
    assert.equal(await worker.page.evaluate(() => document.visibilityState), 'hidden')
    // hidden for 75 s: the server drops a peer silent for 2 x 10 s
    await sleep(60_000)
    await server.publish(event('hidden-w', { title: 'While hidden' }))
    await sleep(15_000)
    const hiddenFor = Date.now() - t0
    const counts = { worker: worker.sockets.length, control: control.sockets.length }
    console.log(`# hidden ${(hiddenFor / 1000).toFixed(0)} s: WebSocket sessions opened: worker heart-beats ${counts.worker}, page-timer heart-beats ${counts.control}`)
    assert.equal(counts.worker, 1, 'the hidden tab kept its one session')
    assert.equal(await connection(worker.page), 'live')
    assert.equal(await badge(worker.page), '1', 'pushed to the hidden tab on its one session')
    assert.ok(counts.control > 1, `the control page (page timers) was dropped and reconnected (${counts.control} sessions): the emulated throttling bites`)
    // visible again: both live, the worker tab still on its first session
    for (const p of [worker.page, control.page]) await p.evaluate(() => window.__setHidden(false))
    await until('control live again', async () => (await connection(control.page)) === 'live', 20_000)
    assert.equal(worker.sockets.length, 1)
    await screenshot(worker.page, 'hidden-tab-after')
    await worker.context.close()
    await control.context.close()
  })
})

describe('two server instances', () => {
  let a
  let b
  before(async () => {
    a = new NotifyServer({ port: await freePort(), allowedOrigins: site.origin, name: 'primary' })
    b = new NotifyServer({ port: await freePort(), allowedOrigins: site.origin, name: 'secondary' })
    await Promise.all([a.start(), b.start()])
  })
  after(async () => {
    await a?.stop()
    await b?.stop()
  })

  test('kill -9 of the primary mid-stream: the widget moves to the secondary and resumes; each notification exactly once', async () => {
    const user = 'failover'
    const { context, page, sockets } = await openCounted({ servers: `${a.url} ${b.url}`, token: mintToken(user) })
    assert.ok(sockets[0].url.startsWith(a.url.replace('http', 'ws')), 'starts on the primary')
    // Each event goes to both instances, as the cluster's fan-out group delivers it to every
    // instance (here each has its own memory store; ids are stable per event and audience).
    const accepted = []
    let publishing = true
    let n = 0
    const publisher = (async () => {
      while (publishing) {
        const ev = event(user, { title: `F${++n}` })
        await Promise.allSettled([a.publish(ev), b.publish(ev)]).then((r) => {
          if (r.some((x) => x.status === 'fulfilled')) accepted.push(ev.title)
        })
        await sleep(120)
      }
    })()
    await until('a few live from the primary', async () => (await page.evaluate(() => document.querySelector('notify-bell').client.state.items.length)) >= 5)
    const killedAt = Date.now()
    await a.kill()
    await until('live on the secondary', async () => (await connection(page)) === 'live' && sockets.length >= 2, 20_000)
    const movedMs = Date.now() - killedAt
    const onSecondary = sockets.at(-1).url.startsWith(b.url.replace('http', 'ws'))
    await sleep(2000)
    publishing = false
    await publisher
    await until(`all ${accepted.length} listed`, async () => (await page.evaluate(() => document.querySelector('notify-bell').client.state.items.length)) >= accepted.length, 20_000)
    await sleep(1000)
    const titles = await page.evaluate(() => document.querySelector('notify-bell').client.state.items.map((x) => x.title))
    const dupes = titles.filter((t, i) => titles.indexOf(t) !== i)
    console.log(`# fail-over: live on the secondary ${movedMs} ms after kill -9 of the primary; ${accepted.length} published, ${titles.length} listed, ${dupes.length} duplicates; ${sockets.length} sessions`)
    assert.ok(onSecondary, 'the new session is on the secondary')
    assert.deepEqual(dupes, [], 'no notification twice')
    assert.deepEqual([...titles].sort(), [...accepted].sort(), 'every notification exactly once')
    assert.equal(await badge(page), String(accepted.length))
    await context.close()
  })
})
