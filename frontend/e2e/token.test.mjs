// tokenProvider property: asked again after the server refuses a token (auth ERROR / 401) and
// before short-lived tokens expire; nothing published meanwhile is lost.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { event, freePort, launchBrowser, mintToken, NotifyServer, sleep, startStaticServer, until } from './support/harness.mjs'

let browser, site, server

before(async () => {
  site = await startStaticServer()
  server = new NotifyServer({ port: await freePort(), allowedOrigins: site.origin, name: 'token' })
  await server.start()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  await site?.close()
})

test('tokenProvider: refused token replaced, short-lived tokens refreshed before exp, nothing lost', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const ttl = 8
  await page.goto(`${site.origin}/provider.html?${new URLSearchParams({ server: server.url, user: 'tina', ttl: String(ttl) })}`)
  const root = page.locator('notify-bell .nb-root')
  await until('live with a good token', async () => (await root.getAttribute('data-connection')) === 'live', 20_000)
  assert.ok((await page.evaluate(() => window.providerCalls)) >= 2, 'asked again after the refused token')
  const titles = []
  const t0 = Date.now()
  // publish across more than two token lifetimes
  while (Date.now() - t0 < ttl * 2.5 * 1000) {
    const ev = event('tina', { title: `T${titles.length + 1}` })
    await server.publish(ev)
    titles.push(ev.title)
    await sleep(1000)
  }
  const calls = await page.evaluate(() => window.providerCalls)
  assert.ok(calls >= 4, `provider asked before each expiry (calls: ${calls})`)
  const good = mintToken('tina')
  await until('badge counts every event', async () => {
    const b = page.locator('notify-bell .nb-badge')
    return (await b.count()) && (await b.textContent()).trim() === String(titles.length)
  }, 20_000)
  assert.equal(await server.unreadCount(good), titles.length)
  await until('still live', async () => (await root.getAttribute('data-connection')) === 'live', 20_000)
  await context.close()
})
