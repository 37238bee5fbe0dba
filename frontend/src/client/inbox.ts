import { NotifyRequestError, type RestApi } from './rest'
import { NotificationStore } from './store'
import type { TabMessage, TabSync } from './tabsync'
import type { NewNotificationEvent, Notification, NotificationSource, NotifyError } from './types'

/** How an `Inbox` reaches the rest of the client. */
export interface InboxHooks {
  /** Whether the client is running (work that finishes after `stop()` is dropped). */
  running(): boolean
  /** Something in the inbox state changed. */
  changed(): void
  /** A notification this client had not seen arrived, unread. */
  arrived(e: NewNotificationEvent): void
  error(e: NotifyError): void
}

/**
 * The inbox half of the client: the user's notifications, unread count and read state, kept
 * consistent across REST pages, the live stream and other tabs. Knows nothing about sockets.
 */
export class Inbox {
  readonly store = new NotificationStore()
  loading = false
  loadingMore = false
  loaded = false
  error: NotifyError | null = null

  private refreshing: Promise<void> | null = null
  private refreshAgain = false
  private resyncTimer: ReturnType<typeof setTimeout> | null = null
  /** Bumped when a read change starts and when it settles; a page fetched across a bump has a stale count. */
  private mutationSeq = 0
  private inflightMutations = 0
  private resyncAfterMutations = false

  constructor(
    private readonly rest: RestApi,
    private readonly tabs: TabSync,
    private readonly pageSize: number,
    private readonly hooks: InboxHooks,
  ) {}

  /** Reloads the newest page and the unread count (coalesces concurrent calls). */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true
      return this.refreshing
    }
    const run = async (): Promise<void> => {
      const seq = this.mutationSeq
      if (!this.loaded) {
        this.loading = true
        this.hooks.changed()
      }
      try {
        const sentAt = this.store.mark()
        const page = await this.rest.page({ limit: this.pageSize })
        const trusted = seq === this.mutationSeq && this.inflightMutations === 0
        this.store.applyFirstPage(page, trusted, sentAt)
        if (!trusted) this.wantResyncAfterMutations()
        this.loaded = true
        this.error = null
      } catch (e) {
        this.fail(e)
      } finally {
        this.loading = false
        this.hooks.changed()
      }
    }
    const p = (async () => {
      try {
        await run()
        while (this.refreshAgain && this.hooks.running()) {
          this.refreshAgain = false
          await run()
        }
      } finally {
        this.refreshing = null
        this.refreshAgain = false
      }
    })()
    this.refreshing = p
    return p
  }

  async loadMore(): Promise<void> {
    if (this.loadingMore || !this.store.hasMore || !this.store.olderCursor) return
    this.loadingMore = true
    this.hooks.changed()
    try {
      const page = await this.rest.page({ limit: this.pageSize, before: this.store.olderCursor })
      this.store.applyOlderPage(page)
    } catch (e) {
      this.fail(e)
    } finally {
      this.loadingMore = false
      this.hooks.changed()
    }
  }

  async markRead(ids: string[]): Promise<void> {
    const unknown = new Set(this.store.unknownIds(ids))
    const changed = this.store.markRead(ids)
    const toSend = ids.filter((id) => changed.includes(id) || unknown.has(id))
    if (toSend.length === 0) return
    this.hooks.changed()
    this.tabs.post({ t: 'read', ids: toSend })
    this.beginMutation()
    let failed: string[] = []
    try {
      const results = await Promise.allSettled(toSend.map((id) => this.rest.markRead(id)))
      failed = toSend.filter((_, i) => results[i]!.status === 'rejected')
      const firstError = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed.length) {
        this.store.revertRead(failed)
        this.fail(firstError?.reason, false)
      }
    } finally {
      this.tabs.post({ t: 'read-done', ids: toSend, ok: failed.length === 0 })
      this.endMutation()
      this.hooks.changed()
    }
  }

  async markAllRead(): Promise<void> {
    const { cutoff, previous, changed } = this.store.markAllRead()
    this.hooks.changed()
    this.tabs.post({ t: 'read-all', cutoff })
    this.beginMutation()
    let ok = false
    try {
      await this.rest.markAllRead()
      ok = true
    } catch (e) {
      this.store.revertReadAll(previous, changed)
      this.fail(e, false)
    } finally {
      this.tabs.post({ t: 'read-all-done', ok })
      // The server may have marked notifications this client has not received yet: recount.
      this.resyncAfterMutations = true
      this.endMutation()
      this.hooks.changed()
    }
  }

  /** A notification from the live stream (`live`) or another tab (`tab`). */
  ingest(n: Notification, source: NotificationSource): void {
    if (source === 'live') this.store.noteCursor(n.cursor)
    const isNew = this.store.ingest(n)
    if (isNew && source === 'live') this.tabs.post({ t: 'n', n })
    this.hooks.changed()
    const stored = this.store.get(n.id)
    if (isNew && stored && !stored.read) this.hooks.arrived({ notification: stored, source })
  }

  onTabMessage(m: TabMessage): void {
    if (!this.hooks.running()) return
    switch (m.t) {
      case 'n':
        this.ingest(m.n, 'tab')
        break
      case 'read':
        if (this.store.markRead(m.ids).length) this.hooks.changed()
        break
      case 'read-done':
        if (!m.ok) {
          this.store.revertRead(m.ids)
          this.hooks.changed()
          this.scheduleResync()
        } else if (this.store.unknownIds(m.ids).length) {
          // Marked read elsewhere but not known here (older than our pages, or not yet
          // received): the server's count is the only truth for those.
          this.scheduleResync()
        }
        break
      case 'read-all':
        this.store.markAllRead(m.cutoff)
        this.hooks.changed()
        break
      case 'read-all-done':
        this.scheduleResync()
        break
    }
  }

  /** Forgets everything (another user). */
  clear(): void {
    this.store.clear()
    this.loaded = false
  }

  /** Stops pending work (client stopped). */
  stop(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer)
    this.resyncTimer = null
  }

  /** Refresh soon, but never across an in-flight read change (its count would be stale). */
  scheduleResync(delay = 150): void {
    if (!this.hooks.running()) return
    if (this.inflightMutations > 0) {
      this.resyncAfterMutations = true
      return
    }
    if (this.resyncTimer) clearTimeout(this.resyncTimer)
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null
      void this.refresh()
    }, delay)
  }

  private wantResyncAfterMutations(): void {
    this.resyncAfterMutations = true
    if (this.inflightMutations === 0) this.flushResyncAfterMutations()
  }

  private flushResyncAfterMutations(): void {
    if (!this.resyncAfterMutations) return
    this.resyncAfterMutations = false
    this.scheduleResync(0)
  }

  private beginMutation(): void {
    this.mutationSeq++
    this.inflightMutations++
  }

  private endMutation(): void {
    this.mutationSeq++
    this.inflightMutations--
    if (this.inflightMutations === 0) this.flushResyncAfterMutations()
  }

  private fail(e: unknown, asLoadError = true): void {
    const err = toNotifyError(e)
    if (asLoadError) this.error = err
    this.hooks.error(err)
  }
}

/** Any failure as the `NotifyError` the UI shows. */
export function toNotifyError(e: unknown): NotifyError {
  return e instanceof NotifyRequestError
    ? { kind: e.kind, status: e.status, message: e.message }
    : { kind: 'network', message: e instanceof Error ? e.message : String(e) }
}
