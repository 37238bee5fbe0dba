import type { Notification } from './types'

/** Messages exchanged between tabs of the same user (same server, same `sub`). */
export type TabMessage =
  | { t: 'n'; n: Notification }
  | { t: 'read'; ids: string[] }
  | { t: 'read-done'; ids: string[]; ok: boolean }
  | { t: 'read-all'; cutoff: number }
  | { t: 'read-all-done'; ok: boolean }

/** The part of BroadcastChannel this client uses (injectable for tests). */
export interface ChannelLike {
  postMessage(msg: unknown): void
  close(): void
  onmessage: ((ev: { data: unknown }) => void) | null
}

export type ChannelFactory = (name: string) => ChannelLike | null

export const broadcastChannelFactory: ChannelFactory = (name) =>
  typeof BroadcastChannel === 'function' ? (new BroadcastChannel(name) as unknown as ChannelLike) : null

export function channelName(base: string, user: string): string {
  return `notify-bell:${base}:${user}`
}

/** One channel per user; messages from this tab are not echoed back. */
export class TabSync {
  private channel: ChannelLike | null = null
  private name: string | null = null

  constructor(
    private readonly factory: ChannelFactory,
    private readonly onMessage: (m: TabMessage) => void,
  ) {}

  /** (Re)joins the channel for this user; null leaves. */
  join(name: string | null): void {
    if (name === this.name) return
    this.leave()
    this.name = name
    if (!name) return
    try {
      this.channel = this.factory(name)
    } catch {
      this.channel = null
    }
    if (this.channel) {
      this.channel.onmessage = (ev) => {
        const m = ev.data as TabMessage
        if (m && typeof m === 'object' && typeof m.t === 'string') this.onMessage(m)
      }
    }
  }

  post(m: TabMessage): void {
    try {
      this.channel?.postMessage(m)
    } catch {
      /* closed or uncloneable: tabs resync from the server anyway */
    }
  }

  leave(): void {
    if (this.channel) {
      this.channel.onmessage = null
      this.channel.close()
    }
    this.channel = null
    this.name = null
  }
}
