// The example server's own /demo page (demo mode) loads the widget with
// <script src="/widget/notify-bell.js"> and uses <notify-bell server="" token="…">.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { freePort, launchBrowser, NotifyServer, screenshot, until, watchPage } from './support/harness.mjs'

let browser, server

before(async () => {
  server = new NotifyServer({ port: await freePort(), name: 'demo', demo: true })
  await server.start()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

test('the /demo page: bell goes live, counts a published event, click marks it read, user switch', async (t) => {
  const r = await fetch(`${server.url}/demo`)
  if (r.status === 404) return t.skip('this server has no /demo page')
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems = watchPage(page, 'demo')
  await page.goto(`${server.url}/demo`)
  const root = page.locator('notify-bell .nb-root')
  await until('bell live', async () => (await root.getAttribute('data-connection')) === 'live')
  const badge = async () => {
    const b = page.locator('notify-bell .nb-badge')
    return (await b.count()) ? (await b.textContent()).trim() : ''
  }
  const before = Number((await badge()) || 0)
  await page.locator('#title').fill('Demo approval')
  await page.locator('#publish button[type=submit]').click()
  await until('badge counts it', async () => Number((await badge()) || 0) === before + 1)
  await page.locator('notify-bell .nb-bell').click()
  await page.locator('notify-bell .nb-item', { hasText: 'Demo approval' }).first().waitFor()
  await screenshot(page, 'demo-page')
  await page.locator('notify-bell .nb-item', { hasText: 'Demo approval' }).first().click()
  await until('count drops', async () => Number((await badge()) || 0) === before)
  // switching user replaces the element: bob has his own (empty) inbox
  await page.locator('#user').selectOption({ label: 'bob' })
  await until('bob live', async () => (await page.locator('notify-bell .nb-root').getAttribute('data-connection')) === 'live')
  assert.equal(await badge(), '')
  assert.deepEqual(problems.filter((p) => !p.includes('404 (Not Found)')), [], 'no page errors (a missing favicon aside)')
  await context.close()
})
