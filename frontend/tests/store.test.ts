import { describe, expect, it } from 'vitest'
import { NotificationStore } from '../src/client/store'
import { notif } from './helpers'

const page = (items: ReturnType<typeof notif>[], unread: number, next: string | null = null) => ({
  items,
  unread_count: unread,
  next_cursor: next,
})

describe('NotificationStore', () => {
  it('de-duplicates by id and counts each unread notification once', () => {
    const s = new NotificationStore()
    expect(s.ingest(notif(1))).toBe(true)
    expect(s.ingest(notif(1))).toBe(false)
    expect(s.ingest({ ...notif(1), title: 'changed' })).toBe(false)
    expect(s.ingest(notif(2))).toBe(true)
    expect(s.unreadCount).toBe(2)
    expect(s.items.map((n) => n.id)).toEqual(['n2', 'n1'])
  })

  it('sorts newest first across ingest order and precision', () => {
    const s = new NotificationStore()
    s.ingest(notif(3, { created_at: '2026-01-01T00:00:00.500Z' }))
    s.ingest(notif(1, { created_at: '2026-01-01T00:00:00Z' }))
    s.ingest(notif(2, { created_at: '2026-01-01T00:00:01Z' }))
    expect(s.items.map((n) => n.id)).toEqual(['n2', 'n3', 'n1'])
  })

  it('keeps the last stream cursor, and seeds it from the first page only when none was seen', () => {
    const s = new NotificationStore()
    s.applyFirstPage(page([notif(5), notif(4)], 2, 'c000004'), true)
    expect(s.lastCursor).toBe('c000005')
    expect(s.olderCursor).toBe('c000004')
    expect(s.hasMore).toBe(true)
    s.noteCursor('c000007')
    s.applyFirstPage(page([notif(9)], 1), true)
    expect(s.lastCursor).toBe('c000007')
    s.noteCursor(undefined)
    expect(s.lastCursor).toBe('c000007')
  })

  it('takes the count from a page but keeps live arrivals after the request and local reads', () => {
    const s = new NotificationStore()
    s.applyFirstPage(page([notif(2), notif(1)], 5), true)
    expect(s.unreadCount).toBe(5)
    s.markRead(['n1'])
    expect(s.unreadCount).toBe(4)
    const sent = s.mark() // the next page request goes out
    s.ingest(notif(3)) // arrives live while the request is in flight
    expect(s.unreadCount).toBe(5)
    // that page was made before n3 was stored and before the read reached the server
    s.applyFirstPage(page([notif(2), notif(1)], 5), true, sent)
    expect(s.unreadCount).toBe(5) // 5 - n1 (read here) + n3 (arrived after the request) = 5
    expect(s.get('n1')?.read).toBe(true)
    // fresh page containing everything
    s.applyFirstPage(page([notif(3), notif(2), { ...notif(1), read: true }], 5), true, s.mark())
    expect(s.unreadCount).toBe(5)
  })

  it('does not count notifications the server no longer has (restarted with an empty store)', () => {
    const s = new NotificationStore()
    s.ingest(notif(1))
    s.ingest(notif(2))
    expect(s.unreadCount).toBe(2)
    const sent = s.mark()
    s.applyFirstPage(page([], 0), true, sent)
    expect(s.unreadCount).toBe(0)
    expect(s.size).toBe(2) // still listed
    const sent2 = s.mark()
    s.ingest(notif(3)) // new server, arrives during the next request
    s.applyFirstPage(page([], 0), true, sent2)
    expect(s.unreadCount).toBe(1)
  })

  it('does not count a notification twice when it comes from the page and the stream', () => {
    const s = new NotificationStore()
    s.applyFirstPage(page([notif(1)], 1), true)
    expect(s.ingest(notif(1))).toBe(false)
    expect(s.unreadCount).toBe(1)
    s.ingest(notif(2))
    s.applyFirstPage(page([notif(2), notif(1)], 2), true, 0)
    expect(s.unreadCount).toBe(2)
  })

  it('ignores the count of an untrusted page but merges its items', () => {
    const s = new NotificationStore()
    s.ingest(notif(1))
    s.applyFirstPage(page([notif(2), notif(1)], 9), false)
    expect(s.unreadCount).toBe(1)
    expect(s.size).toBe(2)
  })

  it('read state only goes from unread to read', () => {
    const s = new NotificationStore()
    s.ingest(notif(1))
    s.markRead(['n1'])
    s.applyFirstPage(page([notif(1)], 1), true)
    expect(s.get('n1')?.read).toBe(true)
    expect(s.unreadCount).toBe(0)
    s.ingest({ ...notif(1), read: false })
    expect(s.unreadCount).toBe(0)
  })

  it('remembers reads of unknown ids so they arrive read', () => {
    const s = new NotificationStore()
    expect(s.markRead(['n7'])).toEqual([])
    expect(s.ingest(notif(7))).toBe(true)
    expect(s.get('n7')?.read).toBe(true)
    expect(s.unreadCount).toBe(0)
  })

  it('mark all read covers what arrives later but was created before', () => {
    const s = new NotificationStore()
    s.ingest(notif(5))
    s.ingest(notif(3))
    const { changed, previous } = s.markAllRead()
    expect(changed.sort()).toEqual(['n3', 'n5'])
    expect(s.unreadCount).toBe(0)
    s.ingest(notif(4)) // older than the cutoff, e.g. replayed
    expect(s.unreadCount).toBe(0)
    s.ingest(notif(6))
    expect(s.unreadCount).toBe(1)
    s.revertReadAll(previous, changed)
    expect(s.unreadCount).toBe(3)
  })

  it('mark all read from another tab keeps newer ones unread', () => {
    const s = new NotificationStore()
    s.ingest(notif(1))
    s.ingest(notif(2))
    s.ingest(notif(3))
    s.markAllRead(Date.parse(notif(2).created_at))
    expect(s.unreadCount).toBe(1)
    expect(s.items.filter((n) => !n.read).map((n) => n.id)).toEqual(['n3'])
  })

  it('pages back with the before cursor', () => {
    const s = new NotificationStore()
    s.applyFirstPage(page([notif(4), notif(3)], 4, 'c000003'), true)
    s.applyOlderPage(page([notif(2), notif(1)], 4, null))
    expect(s.hasMore).toBe(false)
    expect(s.items.map((n) => n.id)).toEqual(['n4', 'n3', 'n2', 'n1'])
    expect(s.unreadCount).toBe(4)
  })

  it('reverts a failed mark-read', () => {
    const s = new NotificationStore()
    s.ingest(notif(1))
    s.markRead(['n1'])
    s.revertRead(['n1'])
    expect(s.unreadCount).toBe(1)
    expect(s.get('n1')?.read).toBe(false)
  })
})
