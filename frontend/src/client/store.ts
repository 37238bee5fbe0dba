import type { Notification, NotificationPage } from './types'

function timeOf(n: Notification): number {
  const t = Date.parse(n.created_at)
  return Number.isNaN(t) ? 0 : t
}

/** Newest first: by created_at, then cursor, then id (all descending). */
export function compareNewestFirst(a: Notification, b: Notification): number {
  const d = timeOf(b) - timeOf(a)
  if (d !== 0) return d
  if (a.cursor && b.cursor && a.cursor !== b.cursor) return a.cursor < b.cursor ? 1 : -1
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0
}

/**
 * The client's view of one user's inbox: de-duplicated by id, read state only ever goes from
 * unread to read, the unread count is kept from the server's count plus what arrived since.
 * Pure and synchronous; the client wires it to the network.
 */
export class NotificationStore {
  private byId = new Map<string, Notification>()
  private sortedCache: Notification[] | null = null
  /** Ids marked read here or in another tab (kept even before the notification is known). */
  private readIds = new Set<string>()
  /** Everything created at or before this time was marked read by "mark all read". */
  private readAllCutoff: number | null = null
  /** Local arrival order of each notification (see `mark` and `applyFirstPage`). */
  private arrival = new Map<string, number>()
  private arrivals = 0

  unreadCount = 0
  /** Last cursor seen on the live stream (or, before any, the newest cursor of the first page). */
  lastCursor: string | null = null
  /** `before` cursor for the next older page. */
  olderCursor: string | null = null
  /** Whether an older page exists (unknown counts as false until the first page is loaded). */
  hasMore = false
  private pagedOnce = false

  get items(): Notification[] {
    if (!this.sortedCache) this.sortedCache = [...this.byId.values()].sort(compareNewestFirst)
    return this.sortedCache
  }

  get size(): number {
    return this.byId.size
  }

  has(id: string): boolean {
    return this.byId.has(id)
  }

  get(id: string): Notification | undefined {
    return this.byId.get(id)
  }

  private isLocallyRead(n: Notification): boolean {
    return this.readIds.has(n.id) || (this.readAllCutoff != null && timeOf(n) <= this.readAllCutoff)
  }

  /**
   * A mark in the local arrival order. Take it when a page request is sent and hand it to
   * `applyFirstPage`: what arrived after it may be missing from that page.
   */
  mark(): number {
    return this.arrivals
  }

  /** Remember a cursor seen on the live stream (in stream order, so the last one is the newest). */
  noteCursor(cursor: string | null | undefined): void {
    if (cursor) this.lastCursor = cursor
  }

  /**
   * Adds a notification. Returns true when it is new (not seen before by id); a new unread one
   * increments the unread count. A known one only merges its read state.
   */
  ingest(n: Notification): boolean {
    const existing = this.byId.get(n.id)
    if (existing) {
      if (n.read && !existing.read) {
        this.byId.set(n.id, { ...existing, read: true })
        this.unreadCount = Math.max(0, this.unreadCount - 1)
        this.sortedCache = null
      }
      return false
    }
    const read = !!n.read || this.isLocallyRead(n)
    this.byId.set(n.id, { ...n, read })
    this.arrival.set(n.id, ++this.arrivals)
    this.sortedCache = null
    if (!read) this.unreadCount++
    return true
  }

  /**
   * Merges the newest page from REST. When `trustCount` is set (no local read change was in
   * flight while it was fetched), the unread count is taken from the server, corrected for
   * what this client knows better: notifications marked read here that the page still shows
   * unread, and unread ones that arrived here after the request was sent (`sentAt`, from
   * `mark()`) and are not in the page. An unread one that arrived before and is not in the
   * page is either older than the page (the server's count has it) or gone from the server
   * (e.g. a restarted server with a memory store): either way it is not added.
   */
  applyFirstPage(page: NotificationPage, trustCount: boolean, sentAt: number = this.arrivals): void {
    const pageIds = new Set(page.items.map((n) => n.id))
    if (trustCount) {
      let count = page.unread_count
      for (const item of page.items) {
        if (!item.read && (this.isLocallyRead(item) || this.byId.get(item.id)?.read)) count--
      }
      for (const local of this.byId.values()) {
        if (local.read || pageIds.has(local.id)) continue
        if ((this.arrival.get(local.id) ?? 0) > sentAt) count++
      }
      this.unreadCount = Math.max(0, count)
    }
    for (const item of page.items) this.mergeQuiet(item)
    if (!this.pagedOnce) {
      this.pagedOnce = true
      this.olderCursor = page.next_cursor
      this.hasMore = page.next_cursor != null
    }
    if (this.lastCursor == null && page.items.length > 0) {
      const newest = [...page.items].sort(compareNewestFirst)[0]!
      if (newest.cursor) this.lastCursor = newest.cursor
    }
    this.sortedCache = null
  }

  /** Merges an older page ("load more"); the server's count already includes these. */
  applyOlderPage(page: NotificationPage): void {
    for (const item of page.items) this.mergeQuiet(item)
    this.olderCursor = page.next_cursor
    this.hasMore = page.next_cursor != null
    this.sortedCache = null
  }

  /** Adds or merges without touching the unread count (the page's count covers it). */
  private mergeQuiet(item: Notification): void {
    const existing = this.byId.get(item.id)
    const read = !!item.read || !!existing?.read || this.isLocallyRead(item)
    this.byId.set(item.id, { ...(existing ?? {}), ...item, read })
    if (!existing) this.arrival.set(item.id, ++this.arrivals)
  }

  /**
   * Marks ids read locally. Returns the ids that were known and unread (the count dropped by
   * that many). Unknown ids are remembered so they arrive read.
   */
  markRead(ids: readonly string[]): string[] {
    const changed: string[] = []
    for (const id of ids) {
      this.readIds.add(id)
      const n = this.byId.get(id)
      if (n && !n.read) {
        this.byId.set(id, { ...n, read: true })
        changed.push(id)
      }
    }
    if (changed.length) {
      this.unreadCount = Math.max(0, this.unreadCount - changed.length)
      this.sortedCache = null
    }
    return changed
  }

  /** Undo a local mark-read whose request failed. */
  revertRead(ids: readonly string[]): void {
    for (const id of ids) {
      this.readIds.delete(id)
      const n = this.byId.get(id)
      if (n && n.read) {
        this.byId.set(id, { ...n, read: false })
        this.unreadCount++
        this.sortedCache = null
      }
    }
  }

  /**
   * Marks everything known read. Returns the cutoff used (epoch ms): notifications created at
   * or before it that arrive later arrive read.
   */
  markAllRead(cutoff?: number): { cutoff: number; previous: number | null; changed: string[] } {
    const previous = this.readAllCutoff
    let c = cutoff
    if (c == null) {
      c = -Infinity
      for (const n of this.byId.values()) c = Math.max(c, timeOf(n))
      if (c === -Infinity) c = Date.now()
    }
    this.readAllCutoff = Math.max(previous ?? -Infinity, c)
    let stillUnread = 0
    const changed: string[] = []
    for (const [id, n] of this.byId) {
      if (n.read) continue
      if (timeOf(n) <= this.readAllCutoff) {
        this.byId.set(id, { ...n, read: true })
        changed.push(id)
      } else stillUnread++
    }
    this.unreadCount = stillUnread
    this.sortedCache = null
    return { cutoff: c, previous, changed }
  }

  /** Undo a "mark all read" whose request failed. */
  revertReadAll(previous: number | null, changed: readonly string[]): void {
    this.readAllCutoff = previous
    this.revertRead(changed)
  }

  /** Ids given to `markRead` that this store has never seen. */
  unknownIds(ids: readonly string[]): string[] {
    return ids.filter((id) => !this.byId.has(id))
  }

  clear(): void {
    this.byId.clear()
    this.arrival.clear()
    this.sortedCache = null
    this.readIds.clear()
    this.readAllCutoff = null
    this.unreadCount = 0
    this.lastCursor = null
    this.olderCursor = null
    this.hasMore = false
    this.pagedOnce = false
  }
}
