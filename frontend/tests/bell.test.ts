import { mount, type VueWrapper } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createNotifyClient, type NotifyClient, type NotifyClientOptions } from '../src/client/client'
import NotifyBell from '../src/components/NotifyBell.vue'
// Transformed up front, so the bell's on-demand import of the panel resolves at once.
import '../src/components/NotifySettings.vue'
import { FakeBackend, tokenFor } from './helpers'

const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms)
let wrappers: VueWrapper[] = []
let clients: NotifyClient[] = []

async function setup(be: FakeBackend, props: Record<string, unknown> = {}, opts: Partial<NotifyClientOptions> = {}) {
  const client = createNotifyClient({
    server: 'http://notify.test',
    token: tokenFor('alice'),
    fetch: be.fetch,
    connectionFactory: be.factory,
    tabSync: false,
    window: null,
    document: null,
    ...opts,
  })
  clients.push(client)
  await client.start()
  await tick()
  const w = mount(NotifyBell, { props: { client, locale: 'en', ...props }, attachTo: document.body })
  wrappers.push(w)
  await tick()
  return { client, w }
}

beforeEach(() => {
  vi.useFakeTimers()
  vi.setSystemTime(new Date('2026-01-01T00:10:00Z'))
})
afterEach(() => {
  for (const w of wrappers) w.unmount()
  for (const c of clients) c.stop()
  wrappers = []
  clients = []
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('<NotifyBell>', () => {
  it('shows the unread badge and an accessible label', async () => {
    const be = new FakeBackend()
    be.store()
    be.store()
    const { w } = await setup(be)
    expect(w.find('.nb-badge').text()).toBe('2')
    expect(w.find('.nb-bell').attributes('aria-label')).toBe('Notifications, 2 unread')
    expect(w.find('.nb-bell').attributes('aria-expanded')).toBe('false')
    expect(w.find('.nb-root').attributes('data-connection')).toBe('live')
  })

  it('caps the badge at 99+', async () => {
    const be = new FakeBackend()
    for (let i = 0; i < 150; i++) be.store()
    const { w } = await setup(be)
    expect(w.find('.nb-badge').text()).toBe('99+')
  })

  it('hides the badge at zero', async () => {
    const { w } = await setup(new FakeBackend())
    expect(w.find('.nb-badge').exists()).toBe(false)
    expect(w.find('.nb-bell').attributes('aria-label')).toBe('Notifications')
  })

  it('opens a dropdown listing newest first with unread styling, relative times, and focus on the first item', async () => {
    const be = new FakeBackend()
    be.store({ title: 'Older' })
    be.store({ title: 'Newer', priority: 'high' })
    be.read.add('n1')
    const { w } = await setup(be)
    await w.find('.nb-bell').trigger('click')
    await tick()
    expect(w.find('.nb-bell').attributes('aria-expanded')).toBe('true')
    const panel = w.find('.nb-panel')
    expect(panel.isVisible()).toBe(true)
    expect(panel.attributes('role')).toBe('dialog')
    const items = w.findAll('.nb-item')
    expect(items.map((i) => i.find('.nb-item-title').text())).toEqual(['Unread: ImportantNewer', 'Older'])
    expect(items[0]!.classes()).toContain('nb-unread')
    expect(items[1]!.classes()).not.toContain('nb-unread')
    expect(items[0]!.find('time').text()).toBe('10 minutes ago')
    expect(document.activeElement).toBe(items[0]!.element)
  })

  it('Escape closes the panel and returns focus to the bell', async () => {
    const be = new FakeBackend()
    be.store()
    const { w } = await setup(be)
    await w.find('.nb-bell').trigger('click')
    await tick()
    await w.find('.nb-item').trigger('keydown', { key: 'Escape' })
    await tick()
    expect(w.find('.nb-bell').attributes('aria-expanded')).toBe('false')
    expect(document.activeElement).toBe(w.find('.nb-bell').element)
  })

  it('arrow keys move between notifications', async () => {
    const be = new FakeBackend()
    be.store()
    be.store()
    be.store()
    const { w } = await setup(be)
    await w.find('.nb-bell').trigger('click')
    await tick()
    const items = w.findAll('.nb-item')
    await items[0]!.trigger('keydown', { key: 'ArrowDown' })
    expect(document.activeElement).toBe(items[1]!.element)
    await items[1]!.trigger('keydown', { key: 'End' })
    expect(document.activeElement).toBe(items[2]!.element)
    await items[2]!.trigger('keydown', { key: 'Home' })
    expect(document.activeElement).toBe(items[0]!.element)
  })

  it('a click marks read and dispatches a cancelable notify-click; preventDefault keeps the host in charge', async () => {
    const be = new FakeBackend()
    be.store({ link: '/purchases/42' })
    const { w, client } = await setup(be)
    const assign = vi.spyOn(window.location, 'assign').mockImplementation(() => {})
    const got: CustomEvent[] = []
    w.element.addEventListener('notify-click', (e: Event) => {
      got.push(e as CustomEvent)
      e.preventDefault()
    })
    await w.find('.nb-bell').trigger('click')
    await tick()
    await w.find('.nb-item').trigger('click')
    await tick()
    expect(got).toHaveLength(1)
    expect(got[0]!.cancelable).toBe(true)
    expect(got[0]!.detail.notification.id).toBe('n1')
    expect(got[0]!.detail.link).toBe(new URL('/purchases/42', location.href).href)
    expect(assign).not.toHaveBeenCalled()
    expect(client.state.unreadCount).toBe(0)
    expect(be.read.has('n1')).toBe(true)
    expect(w.find('.nb-badge').exists()).toBe(false)
  })

  it('follows the link when nobody cancels', async () => {
    const be = new FakeBackend()
    be.store({ link: '/purchases/42' })
    const { w } = await setup(be)
    const assign = vi.spyOn(window.location, 'assign').mockImplementation(() => {})
    await w.find('.nb-bell').trigger('click')
    await tick()
    await w.find('.nb-item').trigger('click')
    expect(assign).toHaveBeenCalledWith(new URL('/purchases/42', location.href).href)
  })

  it('never follows javascript: links', async () => {
    const be = new FakeBackend()
    be.store({ link: 'javascript:alert(1)' })
    const { w } = await setup(be)
    const assign = vi.spyOn(window.location, 'assign').mockImplementation(() => {})
    await w.find('.nb-bell').trigger('click')
    await tick()
    await w.find('.nb-item').trigger('click')
    expect(assign).not.toHaveBeenCalled()
  })

  it('opens off-site links in a new tab without opener, and refuses origins off the allow-list', async () => {
    const be = new FakeBackend()
    be.store({ link: 'https://docs.example/a' })
    be.store({ link: 'https://evil.example/b' })
    be.store({ link: '//evil.example/c' })
    const { w } = await setup(be, {}, { linkOrigins: 'https://docs.example' })
    const assign = vi.spyOn(window.location, 'assign').mockImplementation(() => {})
    const open = vi.spyOn(window, 'open').mockImplementation(() => null)
    const links: unknown[] = []
    w.element.addEventListener('notify-click', (e: Event) => links.push((e as CustomEvent).detail.link))
    for (const id of ['n1', 'n2', 'n3']) {
      await w.find('.nb-bell').trigger('click')
      await tick()
      await w.find(`.nb-item[data-id="${id}"]`).trigger('click')
      await tick()
      if (w.find('.nb-bell').attributes('aria-expanded') === 'true') await w.find('.nb-bell').trigger('click')
    }
    expect(links).toEqual(['https://docs.example/a', null, null])
    expect(open).toHaveBeenCalledTimes(1)
    expect(open).toHaveBeenCalledWith('https://docs.example/a', '_blank', 'noopener,noreferrer')
    expect(assign).not.toHaveBeenCalled()
  })

  it('settings: the gear opens the panel, which loads, saves, and shows the server\'s field error', async () => {
    const be = new FakeBackend()
    be.prefs = { muted_types: ['marketing.*'], tz: 'Asia/Seoul', quiet_hours: null, email: { enabled: true, min_priority: 'normal', after_s: 900 }, digest: { enabled: false, at: '09:00' } }
    const { w } = await setup(be)
    await w.find('.nb-bell').trigger('click')
    await tick()
    const gear = w.find('.nb-settings-btn')
    expect(gear.attributes('aria-label')).toBe('Notification settings')
    await gear.trigger('click')
    for (let i = 0; i < 50 && !w.find('.nb-settings form[aria-busy="false"]').exists(); i++) {
      await vi.dynamicImportSettled() // the panel is loaded on demand
      await tick(10)
    }
    expect(w.find('.nb-panel').attributes('aria-labelledby')).toBe(w.find('.nb-settings h2').attributes('id'))
    expect(document.activeElement).toBe(w.find('.nb-settings h2').element)
    const muted = w.find('textarea')
    expect((muted.element as HTMLTextAreaElement).value).toBe('marketing.*')
    expect(w.find(`label[for="${muted.attributes('id')}"]`).text()).toBe('Muted types')
    expect((w.find('input[type="number"]').element as HTMLInputElement).value).toBe('15')
    await muted.setValue('marketing.*\nsocial.like')
    await w.find('.nb-fieldset input[type="checkbox"]').setValue(true) // quiet hours on
    await w.find('form').trigger('submit')
    await tick()
    expect(be.prefs).toMatchObject({ muted_types: ['marketing.*', 'social.like'], quiet_hours: { from: '22:00', to: '07:00' }, email: { after_s: 900 } })
    expect(w.find('[role="status"].nb-save-state').text()).toBe('Saved')
    // the server refuses a field: it is marked invalid, described, announced and focused
    const tz = w.find('select')
    await tz.setValue('UTC')
    be.prefsReject = { field: 'quiet_hours.to', message: 'must differ from quiet_hours.from' }
    await w.find('form').trigger('submit')
    await tick()
    const to = w.findAll('input[type="time"]')[1]!
    expect(to.attributes('aria-invalid')).toBe('true')
    const err = w.find(`#${to.attributes('aria-describedby')}`)
    expect(err.text()).toBe('must differ from quiet_hours.from')
    expect(w.find('[role="alert"]').text()).toContain('must differ from quiet_hours.from')
    expect(document.activeElement).toBe(to.element)
    // back to the inbox, focus on the gear
    await w.find('.nb-back').trigger('click')
    await tick()
    expect(w.find('.nb-inbox').exists()).toBe(true)
    expect(document.activeElement).toBe(w.find('.nb-settings-btn').element)
  })

  it('no toasts during quiet hours (in the user\'s time zone); the badge still counts', async () => {
    const be = new FakeBackend()
    // 2026-01-01T00:10Z is 09:10 in Seoul
    be.prefs = { muted_types: [], tz: 'Asia/Seoul', quiet_hours: { from: '09:00', to: '10:00' }, email: { enabled: false, min_priority: 'high', after_s: 600 }, digest: { enabled: false, at: '09:00' } }
    const { w, client } = await setup(be, {}, { loadPreferences: true })
    be.publish({ title: 'Quiet one' })
    await tick(50)
    expect(w.find('.nb-toast').exists()).toBe(false)
    expect(w.find('.nb-badge').text()).toBe('1')
    await client.savePreferences({ ...client.preferences!, quiet_hours: null })
    be.publish({ title: 'Loud one' })
    await tick(50)
    expect(w.find('.nb-toast').text()).toContain('Loud one')
  })

  it('mark all read clears the badge', async () => {
    const be = new FakeBackend()
    be.store()
    be.store()
    const { w } = await setup(be)
    await w.find('.nb-bell').trigger('click')
    await tick()
    await w.find('.nb-mark-all').trigger('click')
    await tick(10)
    expect(w.find('.nb-badge').exists()).toBe(false)
    expect(w.find('.nb-mark-all').attributes('disabled')).toBeDefined()
  })

  it('shows empty and error states', async () => {
    const { w } = await setup(new FakeBackend())
    await w.find('.nb-bell').trigger('click')
    await tick()
    expect(w.find('.nb-empty').text()).toBe('No notifications yet')
    const be = new FakeBackend()
    be.down = true
    const { w: w2 } = await setup(be)
    await w2.find('.nb-bell').trigger('click')
    await tick()
    expect(w2.find('.nb-error').text()).toContain('Could not load notifications')
    be.down = false
    be.store()
    await w2.find('.nb-retry').trigger('click')
    await tick()
    expect(w2.findAll('.nb-item')).toHaveLength(1)
  })

  it('shows the connection state', async () => {
    const be = new FakeBackend()
    const { w } = await setup(be)
    await w.find('.nb-bell').trigger('click')
    await tick()
    expect(w.find('.nb-conn').text()).toBe('Live')
    be.down = true
    be.killAll()
    await tick()
    expect(w.find('.nb-conn').text()).toBe('Reconnecting…')
    expect(w.find('.nb-root').attributes('data-connection')).toBe('reconnecting')
  })

  it('load more pages back', async () => {
    const be = new FakeBackend()
    for (let i = 0; i < 25; i++) be.store()
    const { w } = await setup(be)
    await w.find('.nb-bell').trigger('click')
    await tick()
    expect(w.findAll('.nb-item')).toHaveLength(20)
    await w.find('.nb-more').trigger('click')
    await tick()
    expect(w.findAll('.nb-item')).toHaveLength(25)
    expect(w.find('.nb-more').exists()).toBe(false)
  })

  it('speaks Korean', async () => {
    const be = new FakeBackend()
    be.store()
    const { w } = await setup(be, { locale: 'ko' })
    expect(w.find('.nb-bell').attributes('aria-label')).toBe('알림, 읽지 않은 알림: 1')
    await w.find('.nb-bell').trigger('click')
    await tick()
    expect(w.find('.nb-title').text()).toBe('알림')
    expect(w.find('.nb-mark-all').text()).toBe('모두 읽음으로 표시')
    expect(w.find('.nb-conn').text()).toBe('실시간')
    expect(w.find('time').text()).toBe('10분 전')
  })

  it('toasts new notifications, announces them politely, and keeps high priority until dismissed', async () => {
    const be = new FakeBackend()
    const { w } = await setup(be, { toastDuration: 5000 })
    be.publish({ title: 'Normal one' })
    be.publish({ title: 'Urgent one', priority: 'high' })
    await tick()
    expect(w.findAll('.nb-toast')).toHaveLength(2)
    await tick(500)
    expect(w.find('[aria-live="polite"]').text()).toBe('2 new notifications')
    await tick(5000)
    const left = w.findAll('.nb-toast')
    expect(left).toHaveLength(1)
    expect(left[0]!.text()).toContain('Urgent one')
    await tick(60_000)
    expect(w.findAll('.nb-toast')).toHaveLength(1)
    await w.find('.nb-toast-close').trigger('click')
    expect(w.findAll('.nb-toast')).toHaveLength(0)
  })

  it('announces a single new notification by title', async () => {
    const be = new FakeBackend()
    const { w } = await setup(be)
    be.publish({ title: 'Purchase approved' })
    await tick(500)
    expect(w.find('[aria-live="polite"]').text()).toBe('New notification: Purchase approved')
  })

  it('no-toasts turns toasts off', async () => {
    const be = new FakeBackend()
    const { w } = await setup(be, { noToasts: true })
    be.publish()
    await tick()
    expect(w.findAll('.nb-toast')).toHaveLength(0)
    expect(w.find('.nb-badge').text()).toBe('1')
  })
})
