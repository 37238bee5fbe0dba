export type Locale = 'en' | 'ko'

export const SUPPORTED_LOCALES: readonly Locale[] = ['en', 'ko']

const en = {
  notifications: 'Notifications',
  bellLabel: 'Notifications',
  bellLabelUnread: 'Notifications, {count} unread',
  markAllRead: 'Mark all read',
  loadMore: 'Load more',
  loading: 'Loading…',
  empty: 'No notifications yet',
  error: 'Could not load notifications',
  retry: 'Retry',
  unread: 'Unread',
  dismiss: 'Dismiss',
  newNotification: 'New notification: {title}',
  newNotifications: '{count} new notifications',
  close: 'Close',
  'state.idle': 'Not connected',
  'state.connecting': 'Connecting…',
  'state.live': 'Live',
  'state.reconnecting': 'Reconnecting…',
  'state.offline': 'Offline',
  justNow: 'just now',
  priorityHigh: 'Important',
  'settings.open': 'Notification settings',
}

export type MessageKey = keyof typeof en

const ko: Record<MessageKey, string> = {
  notifications: '알림',
  bellLabel: '알림',
  // The count stands alone (not '{count}개'): the badge shows it, and the name must contain the
  // visible text as a word (WCAG 2.5.3, axe label-content-name-mismatch).
  bellLabelUnread: '알림, 읽지 않은 알림: {count}',
  markAllRead: '모두 읽음으로 표시',
  loadMore: '더 보기',
  loading: '불러오는 중…',
  empty: '알림이 없습니다',
  error: '알림을 불러오지 못했습니다',
  retry: '다시 시도',
  unread: '읽지 않음',
  dismiss: '닫기',
  newNotification: '새 알림: {title}',
  newNotifications: '새 알림 {count}개',
  close: '닫기',
  'state.idle': '연결되지 않음',
  'state.connecting': '연결 중…',
  'state.live': '실시간',
  'state.reconnecting': '다시 연결 중…',
  'state.offline': '오프라인',
  justNow: '방금',
  priorityHigh: '중요',
  'settings.open': '알림 설정',
}

export const MESSAGES: Record<Locale, Record<MessageKey, string>> = { en, ko }

/**
 * Picks a supported locale: the explicit one if given (`ko`, `ko-KR`, `en-US`…), otherwise the
 * first supported entry of the browser's languages, otherwise English.
 */
export function resolveLocale(
  explicit?: string | null,
  browser: readonly string[] | null | undefined = typeof navigator !== 'undefined'
    ? navigator.languages?.length
      ? navigator.languages
      : [navigator.language]
    : [],
): Locale {
  const pick = (tag: string | null | undefined): Locale | null => {
    if (!tag) return null
    const base = tag.trim().toLowerCase().split(/[-_]/)[0]
    return (SUPPORTED_LOCALES as readonly string[]).includes(base!) ? (base as Locale) : null
  }
  const e = pick(explicit)
  if (e) return e
  for (const tag of browser ?? []) {
    const l = pick(tag)
    if (l) return l
  }
  return 'en'
}

/** Message lookup with `{name}` interpolation. */
export function translate(locale: Locale, key: MessageKey, vars?: Record<string, string | number>): string {
  const template = MESSAGES[locale]?.[key] ?? MESSAGES.en[key] ?? key
  if (!vars) return template
  return template.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m))
}

/** Badge text: the count, or "99+". */
export function badgeText(count: number): string {
  if (count <= 0) return ''
  return count > 99 ? '99+' : String(count)
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
]

/** "3 minutes ago" / "3분 전"; "just now" under 45 s (also for times slightly in the future). */
export function relativeTime(iso: string, locale: Locale, now: number = Date.now()): string {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return ''
  const diffSec = Math.round((t - now) / 1000)
  if (Math.abs(diffSec) < 45) return translate(locale, 'justNow')
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  const abs = Math.abs(diffSec)
  for (const [unit, secs] of UNITS) {
    if (abs >= secs) return rtf.format(Math.round(diffSec / secs), unit)
  }
  return rtf.format(Math.round(diffSec / 60), 'minute')
}

/** Full date and time for a tooltip / `datetime` title. */
export function absoluteTime(iso: string, locale: Locale): string {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return iso
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(t)
}
