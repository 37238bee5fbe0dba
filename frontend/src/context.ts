import {
  computed,
  getCurrentInstance,
  inject,
  onBeforeUnmount,
  provide,
  ref,
  shallowRef,
  watch,
  type ComputedRef,
  type InjectionKey,
  type Ref,
  type ShallowRef,
} from 'vue'
import type { NotifyClient } from './client/client'
import { resolveLocale, translate, type Locale, type MessageKey } from './client/i18n'
import { followLink, type ResolvedLink } from './client/links'
import type { Notification, NotifyState } from './client/types'

/** What the Vue plugin provides to every component. */
export interface NotifyPluginContext {
  client: NotifyClient
  locale?: string | null
}

/** What a `<NotifyBell>` provides to its inbox and toasts. */
export interface NotifyBellContext {
  client: NotifyClient
  locale: ComputedRef<Locale>
  activate: (n: Notification) => void
  /** Shows the settings panel in the bell's dialog (absent: the bell has no settings). */
  openSettings?: () => void
}

export const NOTIFY_KEY: InjectionKey<NotifyPluginContext> = Symbol('notify')
export const BELL_KEY: InjectionKey<NotifyBellContext> = Symbol('notify-bell')

/** The client from the nearest bell, else the plugin; null when neither is there. */
export function injectClient(): NotifyClient | null {
  if (!getCurrentInstance()) return null
  return inject(BELL_KEY, null)?.client ?? inject(NOTIFY_KEY, null)?.client ?? null
}

/** Reactive client state; unsubscribes when the component unmounts. */
export function useClientState(client: Ref<NotifyClient | null>): ShallowRef<NotifyState | null> {
  const state = shallowRef<NotifyState | null>(client.value?.state ?? null)
  let off: (() => void) | null = null
  watch(
    client,
    (c) => {
      off?.()
      off = null
      state.value = c?.state ?? null
      if (c) off = c.subscribe((s) => (state.value = s))
    },
    { immediate: true },
  )
  if (getCurrentInstance()) onBeforeUnmount(() => off?.())
  return state
}

/** Locale (explicit, else the plugin's, else the browser's) and a translate function. */
export function useI18n(explicit: () => string | null | undefined) {
  const fromBell = getCurrentInstance() ? inject(BELL_KEY, null) : null
  const fromPlugin = getCurrentInstance() ? inject(NOTIFY_KEY, null) : null
  const locale = computed<Locale>(() => {
    const e = explicit()
    if (e) return resolveLocale(e)
    if (fromBell) return fromBell.locale.value
    return resolveLocale(fromPlugin?.locale)
  })
  const t = (key: MessageKey, vars?: Record<string, string | number>) => translate(locale.value, key, vars)
  return { locale, t }
}

/** A clock for relative times that ticks every `ms`. */
export function useNow(ms = 30_000): Ref<number> {
  const now = ref(Date.now())
  if (typeof window === 'undefined') return now
  const id = setInterval(() => (now.value = Date.now()), ms)
  if (getCurrentInstance()) onBeforeUnmount(() => clearInterval(id))
  return now
}

/**
 * Clicking a notification: mark it read, dispatch a cancelable `notify-click` CustomEvent
 * (detail `{ notification, link, external }`; `link` is null for a link the widget refuses) on
 * `target`, and follow the link unless a listener called `preventDefault()`: same-origin links
 * in this tab, other origins in a new tab without opener or referrer. Returns true when it
 * navigated.
 */
export function activateNotification(
  client: NotifyClient,
  n: Notification,
  target: EventTarget | null | undefined,
  navigate: (link: ResolvedLink) => void = (link) => followLink(link),
): boolean {
  if (!n.read) void client.markRead(n.id)
  const resolved = client.resolveLink(n.link)
  const ev = new CustomEvent('notify-click', {
    detail: { notification: n, link: resolved?.url ?? null, external: resolved?.external ?? false },
    cancelable: true,
    bubbles: true,
    composed: true,
  })
  const proceed = target ? target.dispatchEvent(ev) : true
  if (proceed && resolved) {
    navigate(resolved)
    return true
  }
  return false
}

export function provideBell(ctx: NotifyBellContext): void {
  provide(BELL_KEY, ctx)
}

export function injectBell(): NotifyBellContext | null {
  return getCurrentInstance() ? inject(BELL_KEY, null) : null
}
