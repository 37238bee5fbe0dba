// Browser test of the ES module package (dist/es): Vue plugin + <NotifyBell> + useNotify, and
// the framework-free createNotifyClient, loaded with an import map (Vue from node_modules).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { event, freePort, launchBrowser, mintToken, NotifyServer, screenshot, startStaticServer, until, watchPage } from './support/harness.mjs'

let browser, site, server

before(async () => {
  site = await startStaticServer()
  server = new NotifyServer({ port: await freePort(), allowedOrigins: site.origin, name: 'vue' })
  await server.start()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  await site?.close()
})

test('Vue plugin, components, useNotify and createNotifyClient from the ES build', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems = watchPage(page, 'vue')
  const token = mintToken('victor')
  await page.goto(`${site.origin}/vue-app.html?${new URLSearchParams({ server: server.url, token })}`)
  await until('vue bell live', async () => (await page.locator('.nb-root').getAttribute('data-connection')) === 'live')
  await until('headless client live', async () => (await page.title()) === '(0) live')
  await server.publish(event('victor', { title: 'From Vue', link: '/x' }))
  await until('badge 1', async () => (await page.locator('.nb-badge').count()) === 1 && (await page.locator('.nb-badge').textContent()) === '1')
  await until('composable', async () => (await page.locator('#custom-count').textContent()) === '1/live')
  await until('headless got it', async () => (await page.evaluate(() => window.headless)).includes('From Vue'))
  assert.equal(await page.title(), '(1) live')
  await page.locator('.nb-bell').click()
  await page.locator('.nb-item').first().click()
  await until('read', async () => (await page.locator('.nb-badge').count()) === 0)
  assert.equal((await page.evaluate(() => window.vueClicks)).length, 1, 'Vue listener got notify-click and cancelled')
  assert.equal(new URL(page.url()).pathname, '/vue-app.html')
  // the headless client in the same tab hears about the read through the tab channel
  await until('headless count follows', async () => (await page.title()) === '(0) live')
  await screenshot(page, 'vue-app')
  assert.deepEqual(problems, [])
  await context.close()
})
