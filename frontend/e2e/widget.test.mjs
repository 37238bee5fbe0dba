// Browser tests: the <notify-bell> custom element (examples/assets/notify-bell.js) on a plain
// HTML page, in Debian's Chromium, against the example server.
//   npm run test:browser      (needs target/release/examples/server and /usr/bin/chromium)
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  event,
  freePort,
  launchBrowser,
  mintToken,
  NotifyServer,
  REPO,
  screenshot,
  sleep,
  startStaticServer,
  until,
  watchPage,
} from './support/harness.mjs'

let browser
let site
let server
const problems = []

before(async () => {
  site = await startStaticServer()
  server = new NotifyServer({ port: await freePort(), allowedOrigins: site.origin, name: 'widget' })
  await server.start()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  await site?.close()
})

async function openBell(context, user, { locale = 'en', cancel = true, label = user } = {}) {
  const page = await context.newPage()
  const pageProblems = watchPage(page, label)
  const q = new URLSearchParams({ server: server.url, token: mintToken(user), locale })
  if (cancel) q.set('cancel', '1')
  await page.goto(`${site.origin}/plain.html?${q}`)
  await until(`${label}: widget live`, () => connection(page).then((c) => c === 'live'))
  return { page, problems: pageProblems, token: q.get('token') }
}

const root = (page) => page.locator('notify-bell .nb-root')
const connection = (page) => root(page).getAttribute('data-connection')

async function badge(page) {
  const b = page.locator('notify-bell .nb-badge')
  return (await b.count()) ? (await b.textContent()).trim() : ''
}

async function waitBadge(page, expected, what = 'badge') {
  let seen
  try {
    await until(`${what} = "${expected}"`, async () => (seen = await badge(page)) === expected)
  } catch (e) {
    throw new Error(`${e.message}; badge shows "${seen}"`)
  }
}

async function openPanel(page) {
  const bell = page.locator('notify-bell .nb-bell')
  if ((await bell.getAttribute('aria-expanded')) !== 'true') await bell.click()
  await page.locator('notify-bell .nb-panel').waitFor({ state: 'visible' })
}

async function listedTitles(page) {
  // the title text without the screen-reader "Unread:" prefix and the "Important" tag
  return page.locator('notify-bell .nb-item .nb-item-title').evaluateAll((els) =>
    els.map((e) => {
      const c = e.cloneNode(true)
      c.querySelectorAll('.nb-sr-only, .nb-tag').forEach((x) => x.remove())
      return c.textContent.trim()
    }),
  )
}

describe('notify-bell custom element', () => {
  test('runs on a plain HTML page with no Vue, styles inside its shadow root', async () => {
    const context = await browser.newContext()
    const { page, problems } = await openBell(context, 'plain-user')
    const facts = await page.evaluate(() => {
      const el = document.querySelector('notify-bell')
      const styles = [...(el.shadowRoot?.querySelectorAll('style') ?? [])].map((s) => s.textContent).join('')
      return {
        vueGlobal: typeof window.Vue,
        defined: !!customElements.get('notify-bell'),
        shadow: !!el.shadowRoot,
        styleInShadow: styles.includes('--notify-accent'),
        styleInDocument: [...document.querySelectorAll('style')].some((s) => s.textContent.includes('nb-bell')),
        label: el.shadowRoot.querySelector('.nb-bell').getAttribute('aria-label'),
        accent: getComputedStyle(el.shadowRoot.querySelector('.nb-root')).getPropertyValue('--_accent').trim(),
        clientApi: typeof el.client?.markAllRead === 'function' && el.client.state.connection,
        user: el.client?.user,
      }
    })
    assert.equal(facts.vueGlobal, 'undefined')
    assert.ok(facts.defined)
    assert.ok(facts.shadow)
    assert.ok(facts.styleInShadow, 'styles in the shadow root')
    assert.equal(facts.styleInDocument, false, 'no styles leak into the page')
    assert.equal(facts.label, 'Notifications')
    assert.equal(facts.accent, '#7c3aed', 'themed by a CSS custom property set on the host page')
    assert.equal(facts.clientApi, 'live', 'element.client exposes the NotifyClient')
    assert.equal(facts.user, 'plain-user')
    await screenshot(page, 'plain-empty')
    assert.deepEqual(problems, [])
    await context.close()
  })

  test('a published event is counted, listed, and a click marks it read', async () => {
    const context = await browser.newContext()
    const { page, problems, token } = await openBell(context, 'alice')
    const ev = event('alice', { title: 'Purchase approved', message: 'Your request #42 was approved', link: '/purchases/42' })
    await server.publish(ev)
    await waitBadge(page, '1')
    assert.equal(await page.locator('notify-bell .nb-bell').getAttribute('aria-label'), 'Notifications, 1 unread')
    // toast and screen-reader announcement
    await page.locator('notify-bell .nb-toast').first().waitFor()
    await until('aria-live announcement', async () =>
      (await page.locator('notify-bell [aria-live="polite"]').textContent()).includes('Purchase approved'),
    )
    await screenshot(page, 'alice-badge-toast')
    await openPanel(page)
    assert.deepEqual(await listedTitles(page), ['Purchase approved'])
    const item = page.locator('notify-bell .nb-item').first()
    assert.equal(await item.getAttribute('data-read'), 'false')
    assert.match(await item.locator('time').textContent(), /just now|second|minute/)
    await screenshot(page, 'alice-dropdown')
    await item.click()
    await waitBadge(page, '')
    assert.equal(await item.getAttribute('data-read'), 'true')
    await until('the server knows it is read', async () => (await server.unreadCount(token)) === 0)
    assert.equal((await page.evaluate(() => window.clicks)).length, 1, 'host got a notify-click')
    assert.equal(new URL(page.url()).pathname, '/plain.html', 'host cancelled navigation')
    assert.deepEqual(problems, [])
    await context.close()
  })

  test('without preventDefault a click follows the link', async () => {
    const context = await browser.newContext()
    const { page } = await openBell(context, 'linker', { cancel: false })
    await server.publish(event('linker', { title: 'Go somewhere', link: '/purchases/7' }))
    await waitBadge(page, '1')
    await openPanel(page)
    await Promise.all([page.waitForURL(`${site.origin}/purchases/7`), page.locator('notify-bell .nb-item').first().click()])
    await context.close()
  })

  test('an off-site link opens in a new tab without opener or referrer; link-origins refuses others', async () => {
    const context = await browser.newContext()
    const { page } = await openBell(context, 'offsite', { cancel: false })
    // the same static server under another name: another origin
    const other = site.origin.replace('127.0.0.1', 'localhost')
    await server.publish(event('offsite', { title: 'Docs', link: `${other}/plain.html?from=notification` }))
    await waitBadge(page, '1')
    await openPanel(page)
    const [popup] = await Promise.all([context.waitForEvent('page'), page.locator('notify-bell .nb-item').first().click()])
    await popup.waitForLoadState()
    assert.equal(new URL(popup.url()).origin, other)
    assert.equal(await popup.evaluate(() => window.opener), null, 'no window.opener')
    assert.equal(await popup.evaluate(() => document.referrer), '', 'no referrer')
    assert.equal(new URL(page.url()).pathname, '/plain.html', 'the host page stays')
    // with an allow-list that does not name that origin, the widget does not follow it
    const q = new URLSearchParams({ server: server.url, token: mintToken('offsite'), locale: 'en', linkOrigins: 'https://docs.example' })
    const page2 = await context.newPage()
    await page2.goto(`${site.origin}/plain.html?${q}`)
    await waitBadge(page2, '')
    await server.publish(event('offsite', { title: 'Elsewhere', link: `${other}/plain.html?from=refused` }))
    await waitBadge(page2, '1')
    await openPanel(page2)
    const pagesBefore = context.pages().length
    await page2.locator('notify-bell .nb-item').first().click()
    await sleep(500)
    assert.equal(context.pages().length, pagesBefore, 'no new tab')
    assert.equal(new URL(page2.url()).pathname, '/plain.html')
    const clicks = await page2.evaluate(() => window.clicks)
    assert.equal(clicks.length, 1, 'the host still hears the click (detail.link is null)')
    await context.close()
  })

  test('keyboard: open, arrows, Escape closes and returns focus', async () => {
    const context = await browser.newContext()
    const { page } = await openBell(context, 'keys')
    await server.publish([event('keys', { title: 'K1' }), event('keys', { title: 'K2' })])
    await waitBadge(page, '2')
    await page.locator('notify-bell .nb-bell').focus()
    await page.keyboard.press('Enter')
    await page.locator('notify-bell .nb-panel').waitFor({ state: 'visible' })
    const focused = () => page.evaluate(() => document.querySelector('notify-bell').shadowRoot.activeElement?.textContent ?? '')
    await until('first item focused', async () => (await focused()).includes('K2'))
    await page.keyboard.press('ArrowDown')
    assert.match(await focused(), /K1/)
    await page.keyboard.press('Escape')
    await page.locator('notify-bell .nb-panel').waitFor({ state: 'hidden' })
    assert.equal(
      await page.evaluate(() => document.querySelector('notify-bell').shadowRoot.activeElement?.className),
      'nb-bell',
    )
    await context.close()
  })

  test('Korean from the locale attribute; 99+ badge; load more; mark all read', async () => {
    const context = await browser.newContext()
    const { page, token } = await openBell(context, 'kim', { locale: 'ko' })
    const evs = Array.from({ length: 105 }, (_, i) => event('kim', { title: `알림 ${i + 1}` }))
    await server.publish(evs)
    await waitBadge(page, '99+')
    assert.equal(await page.locator('notify-bell .nb-bell').getAttribute('aria-label'), '알림, 읽지 않은 알림: 99+')
    await openPanel(page)
    assert.equal((await page.locator('notify-bell .nb-title').textContent()).trim(), '알림')
    assert.equal((await page.locator('notify-bell .nb-conn').textContent()).trim(), '실시간')
    // all 105 arrived live; reload so the inbox comes from REST pages
    await page.reload()
    await until('live after reload', () => connection(page).then((c) => c === 'live'))
    await waitBadge(page, '99+')
    await openPanel(page)
    await until('first page', async () => (await page.locator('notify-bell .nb-item').count()) === 20)
    const titles = await listedTitles(page)
    assert.equal(titles[0], '알림 105', 'newest first')
    await page.locator('notify-bell .nb-more').click()
    await until('second page', async () => (await page.locator('notify-bell .nb-item').count()) === 40)
    await screenshot(page, 'kim-ko-loadmore')
    await page.locator('notify-bell .nb-mark-all').click()
    await waitBadge(page, '')
    await until('the server has them all read', async () => (await server.unreadCount(token)) === 0)
    await sleep(500)
    assert.equal(await badge(page), '', 'stays at zero after the recount')
    await context.close()
  })

  test('two tabs of one user stay consistent and never count twice', async () => {
    const context = await browser.newContext()
    const a = await openBell(context, 'dave', { label: 'tab A' })
    const b = await openBell(context, 'dave', { label: 'tab B' })
    await server.publish([event('dave', { title: 'D1' }), event('dave', { title: 'D2' }), event('dave', { title: 'D3' })])
    await waitBadge(a.page, '3', 'tab A badge')
    await waitBadge(b.page, '3', 'tab B badge')
    await sleep(1000)
    assert.equal(await badge(a.page), '3', 'not counted twice in A')
    assert.equal(await badge(b.page), '3', 'not counted twice in B')
    // read one in A: B follows without reload
    await openPanel(a.page)
    await a.page.locator('notify-bell .nb-item').first().click()
    await waitBadge(a.page, '2', 'tab A after click')
    await waitBadge(b.page, '2', 'tab B follows')
    await openPanel(b.page)
    assert.equal(await b.page.locator('notify-bell .nb-item').first().getAttribute('data-read'), 'true')
    // mark all in B: A follows
    await b.page.locator('notify-bell .nb-mark-all').click()
    await waitBadge(b.page, '', 'tab B after mark all')
    await waitBadge(a.page, '', 'tab A follows mark all')
    // a new one shows once in each
    await server.publish(event('dave', { title: 'D4' }))
    await waitBadge(a.page, '1', 'tab A new')
    await waitBadge(b.page, '1', 'tab B new')
    await sleep(800)
    assert.equal(await badge(a.page), '1')
    assert.equal(await badge(b.page), '1')
    await until('server count 1', async () => (await server.unreadCount(a.token)) === 1)
    await screenshot(a.page, 'two-tabs-a')
    await screenshot(b.page, 'two-tabs-b')
    assert.deepEqual([...a.problems, ...b.problems], [])
    await context.close()
  })

  test('the example server serves the built file at /widget/notify-bell.js', async () => {
    const r = await fetch(`${server.url}/widget/notify-bell.js`)
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type') ?? '', /javascript/)
    const served = await r.text()
    const local = readFileSync(join(REPO, 'examples/assets/notify-bell.js'), 'utf8')
    assert.equal(served.length, local.length, 'server embeds the current examples/assets/notify-bell.js (rebuild the server after npm run build)')
    assert.ok(served === local)
  })
})

describe('reconnect', () => {
  test('server stopped and restarted while events are published: every notification shown exactly once', async () => {
    const context = await browser.newContext()
    const { page, token } = await openBell(context, 'carol', { cancel: true })
    const accepted = []
    let publishing = true
    let paused = false
    let n = 0
    // Publisher: one event every 150 ms, retrying each until the server accepts it.
    const publisher = (async () => {
      while (publishing) {
        if (paused) {
          await sleep(20)
          continue
        }
        const ev = event('carol', { title: `C${++n}` })
        for (;;) {
          try {
            await server.publish(ev)
            accepted.push(ev.title)
            break
          } catch {
            await sleep(100)
          }
        }
        await sleep(150)
      }
    })()
    await until('a few delivered live', async () => (await listedTitlesOrOpen(page)).length >= 4)
    // Let what was accepted so far be delivered, then stop the server while the publisher keeps going.
    paused = true
    await sleep(200)
    const before = [...accepted]
    await until('all accepted before the stop delivered', async () => (await listedTitles(page)).length === before.length)
    paused = false
    await server.stop()
    await until('widget notices', async () => ['reconnecting', 'offline'].includes(await connection(page)))
    await screenshot(page, 'carol-reconnecting')
    await sleep(2500) // publisher retries meanwhile
    await server.start()
    await sleep(2500)
    publishing = false
    await publisher
    await until('widget live again', async () => (await connection(page)) === 'live', 40_000)
    await until(
      `all ${accepted.length} notifications listed`,
      async () => (await listedTitles(page)).length >= accepted.length,
      20_000,
    )
    await sleep(1000) // anything duplicated would show up by now
    const titles = await listedTitles(page)
    const counts = new Map()
    for (const t of titles) counts.set(t, (counts.get(t) ?? 0) + 1)
    const dupes = [...counts].filter(([, c]) => c > 1)
    assert.deepEqual(dupes, [], 'no notification twice')
    assert.deepEqual([...titles].sort(), [...accepted].sort(), 'every accepted notification exactly once')
    // The badge agrees with the server (an in-memory store forgets the pre-restart ones).
    const serverUnread = await server.unreadCount(token)
    try {
      await waitBadge(page, serverUnread > 99 ? '99+' : serverUnread ? String(serverUnread) : '', 'badge = server count')
    } catch (e) {
      const st = await page.evaluate(() => {
        const s = document.querySelector('notify-bell').client.state
        return { unread: s.unreadCount, items: s.items.map((n) => `${n.title}:${n.read ? 'r' : 'u'}:${n.created_at}`) }
      })
      const srv = await server.api('/api/notifications?limit=200', token)
      throw new Error(`${e.message}\nwidget: ${JSON.stringify(st)}\nserver: ${JSON.stringify({ unread: srv.unread_count, items: srv.items.map((n) => `${n.title}:${n.read ? 'r' : 'u'}:${n.created_at}:${n.cursor}`) })}`)
    }
    await screenshot(page, 'carol-after-restart')
    await context.close()
  })
})

async function listedTitlesOrOpen(page) {
  await openPanel(page)
  return listedTitles(page)
}
