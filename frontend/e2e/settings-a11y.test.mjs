// The settings panel (contract section 5a) and accessibility: axe-core (WCAG 2 A/AA) finds
// nothing on the closed bell, the open inbox and the panel; the panel works from the keyboard,
// saves to the server and shows its 400 field errors; no toasts during quiet hours.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  axeViolations,
  event,
  freePort,
  launchBrowser,
  mintToken,
  screenshot,
  sleep,
  startServerWithPreferences,
  startStaticServer,
  until,
  watchPage,
} from './support/harness.mjs'

let browser
let site
let server

before(async () => {
  site = await startStaticServer()
  server = await startServerWithPreferences({ port: await freePort(), allowedOrigins: site.origin, name: 'settings' })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  await site?.close()
})

async function openPage(user, { locale = 'en' } = {}) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems = watchPage(page, user)
  const token = mintToken(user)
  await page.goto(`${site.origin}/plain.html?${new URLSearchParams({ server: server.url, token, locale, cancel: '1' })}`)
  await until(`${user}: live`, async () => (await page.locator('notify-bell .nb-root').getAttribute('data-connection')) === 'live')
  return { context, page, token, problems }
}

const shadowActive = (page) =>
  page.evaluate(() => {
    const a = document.querySelector('notify-bell').shadowRoot.activeElement
    return a ? { tag: a.tagName.toLowerCase(), text: a.textContent.trim(), label: a.getAttribute('aria-label'), id: a.id } : null
  })

function assertNoViolations(violations, where) {
  assert.deepEqual(violations, [], `axe-core (WCAG 2 A/AA) on ${where}:\n${JSON.stringify(violations, null, 2)}`)
}

describe('accessibility (axe-core, WCAG 2 A/AA)', () => {
  for (const locale of ['en', 'ko']) {
    test(`${locale}: closed bell, open inbox with unread and read items, settings panel: no violations`, async () => {
      const user = `axe-${locale}`
      const { context, page, token, problems } = await openPage(user, { locale })
      await server.publish([
        event(user, { title: 'Read one', message: 'Already seen' }),
        event(user, { title: 'Unread one', message: 'Your request #42 was approved' }),
        event(user, { title: 'Urgent', message: 'Server room temperature high', priority: 'high' }),
      ])
      await until('badge 3', async () => (await page.locator('notify-bell .nb-badge').textContent())?.trim() === '3')
      // one read, so both row styles are checked
      const first = (await server.api('/api/notifications?limit=3', token)).items.find((n) => n.title === 'Read one')
      await page.evaluate((id) => document.querySelector('notify-bell').client.markRead(id), first.id)
      await until('badge 2', async () => (await page.locator('notify-bell .nb-badge').textContent())?.trim() === '2')
      // toasts are out of the way for the closed-bell check
      while (await page.locator('notify-bell .nb-toast-close').count()) await page.locator('notify-bell .nb-toast-close').first().click()
      assertNoViolations(await axeViolations(page), 'the closed bell')

      await page.locator('notify-bell .nb-bell').click()
      await page.locator('notify-bell .nb-item').first().waitFor()
      await until('3 items', async () => (await page.locator('notify-bell .nb-item').count()) === 3)
      await screenshot(page, `axe-inbox-${locale}`)
      assertNoViolations(await axeViolations(page), 'the open inbox')

      await page.locator('notify-bell .nb-settings-btn').click()
      await page.locator('notify-bell .nb-settings form[aria-busy="false"]').waitFor()
      await page.locator('notify-bell .nb-settings input[type="checkbox"]').first().check() // enables more inputs
      await screenshot(page, `axe-settings-${locale}`)
      assertNoViolations(await axeViolations(page), 'the settings panel')
      assert.deepEqual(problems, [])
      await context.close()
    })
  }
})

describe('settings panel', () => {
  test('keyboard only: open, edit, save to the server; a refused field is marked, described and focused', async () => {
    const { context, page, token, problems } = await openPage('pat')
    // keyboard: focus the bell, open, reach the gear
    await page.locator('notify-bell .nb-bell').focus()
    await page.keyboard.press('Enter')
    await page.locator('notify-bell .nb-panel').waitFor({ state: 'visible' })
    await page.locator('notify-bell .nb-settings-btn').focus()
    assert.equal((await shadowActive(page)).label, 'Notification settings')
    await page.keyboard.press('Enter')
    await page.locator('notify-bell .nb-settings form[aria-busy="false"]').waitFor()
    // focus moves to the panel's heading, which labels the dialog
    const active = await shadowActive(page)
    assert.equal(active.tag, 'h2')
    assert.equal(active.text, 'Settings')
    assert.equal(await page.locator('notify-bell .nb-panel').getAttribute('aria-labelledby'), active.id)
    // Tab order: back button comes before the heading; from the heading, Tab reaches the muted types
    await page.keyboard.press('Tab')
    assert.equal((await shadowActive(page)).tag, 'textarea')
    await page.keyboard.type('marketing.*')
    await page.keyboard.press('Enter')
    await page.keyboard.type('social.like')
    await page.keyboard.press('Tab') // time zone
    assert.equal((await shadowActive(page)).tag, 'select')
    await page.locator('notify-bell .nb-settings select').first().selectOption('Asia/Seoul')
    await page.keyboard.press('Tab') // quiet hours checkbox
    await page.keyboard.press('Space')
    await page.keyboard.press('Tab') // from (a native time input; its segments differ by browser locale)
    assert.equal((await shadowActive(page)).tag, 'input')
    await page.locator('notify-bell .nb-settings input[type="time"]').nth(0).fill('23:00')
    await page.locator('notify-bell .nb-settings input[type="time"]').nth(1).fill('06:30')
    await page.locator('notify-bell .nb-save').focus()
    await page.keyboard.press('Enter')
    await until('saved', async () => (await page.locator('notify-bell .nb-save-state').textContent()).trim() === 'Saved')
    const stored = await server.api('/api/preferences', token)
    assert.deepEqual(stored.muted_types, ['marketing.*', 'social.like'])
    assert.equal(stored.tz, 'Asia/Seoul')
    assert.deepEqual(stored.quiet_hours, { from: '23:00', to: '06:30' })
    // the server refuses quiet hours that start and end at once: its 400 names quiet_hours.to
    const to = page.locator('notify-bell .nb-settings input[type="time"]').nth(1)
    await to.fill('23:00')
    await page.locator('notify-bell .nb-save').click()
    await until('field error', async () => (await to.getAttribute('aria-invalid')) === 'true')
    const described = await to.getAttribute('aria-describedby')
    const message = await page.locator(`notify-bell [id="${described}"]`).textContent()
    assert.match(message, /differ|from/i)
    assert.match(await page.locator('notify-bell .nb-settings [role="alert"]').textContent(), /differ|from/i)
    assert.equal((await shadowActive(page)).id, await to.getAttribute('id'), 'focus on the refused field')
    await screenshot(page, 'settings-field-error')
    assert.deepEqual((await server.api('/api/preferences', token)).quiet_hours, { from: '23:00', to: '06:30' }, 'nothing stored')
    // Escape closes the dialog and returns focus to the bell
    await page.keyboard.press('Escape')
    await page.locator('notify-bell .nb-panel').waitFor({ state: 'hidden' })
    assert.equal((await shadowActive(page)).tag, 'button')
    assert.deepEqual(problems.filter((p) => !/status of 400/.test(p)), [])
    await context.close()
  })

  test('in Korean', async () => {
    const { context, page } = await openPage('min', { locale: 'ko' })
    await page.locator('notify-bell .nb-bell').click()
    await page.locator('notify-bell .nb-settings-btn').click()
    await page.locator('notify-bell .nb-settings form[aria-busy="false"]').waitFor()
    assert.equal((await page.locator('notify-bell .nb-settings h2').textContent()).trim(), '설정')
    assert.equal((await page.locator('notify-bell .nb-settings legend').first().textContent()).trim(), '방해 금지 시간')
    assert.equal(await page.locator('notify-bell .nb-back').getAttribute('aria-label'), '알림 목록으로 돌아가기')
    await context.close()
  })
})

describe('quiet hours', () => {
  /** Quiet hours around now, in Seoul time (not the browser's zone: the user's). */
  function quietAroundNow(inside) {
    const seoul = (ms) => new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Seoul', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ms)
    const now = Date.now()
    return inside ? { from: seoul(now - 3600_000), to: seoul(now + 3600_000) } : { from: seoul(now + 3600_000), to: seoul(now + 7200_000) }
  }

  for (const inside of [true, false]) {
    test(inside ? 'inside them: badge and inbox update, no toast' : 'outside them: toasts as usual', async () => {
      const user = inside ? 'quiet-in' : 'quiet-out'
      const token = mintToken(user)
      await server.api('/api/preferences', token, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tz: 'Asia/Seoul', quiet_hours: quietAroundNow(inside) }),
      })
      const { context, page } = await openPage(user)
      await until('preferences loaded', () => page.evaluate(() => document.querySelector('notify-bell').client.preferences != null))
      await server.publish(event(user, { title: 'At night' }))
      await until('badge 1', async () => (await page.locator('notify-bell .nb-badge').textContent())?.trim() === '1')
      await sleep(500)
      assert.equal(await page.locator('notify-bell .nb-toast').count(), inside ? 0 : 1)
      await context.close()
    })
  }
})
