import type { Priority } from './types'

/** A time of day `HH:MM` (24-hour), as the contract writes it. */
export type TimeOfDay = string

/** The user's settings (contract section 5a), as `GET`/`PUT /api/preferences` carry them. */
export interface Preferences {
  /** Type names or prefix globs (`marketing.*`) that are neither pushed, listed nor counted. */
  muted_types: string[]
  /** IANA time zone for quiet hours and the digest. */
  tz: string
  /** No e-mail and no toasts between `from` and `to` (may wrap midnight); null: none. */
  quiet_hours: { from: TimeOfDay; to: TimeOfDay } | null
  email: { enabled: boolean; min_priority: Priority; after_s: number }
  digest: { enabled: boolean; at: TimeOfDay }
}

/** What the server answers for a user who never saved anything (and what the panel starts from). */
export function defaultPreferences(): Preferences {
  return {
    muted_types: [],
    tz: 'UTC',
    quiet_hours: null,
    email: { enabled: false, min_priority: 'high', after_s: 600 },
    digest: { enabled: false, at: '09:00' },
  }
}

/**
 * A server answer over the defaults: fields the server left out (an older server, a partial
 * object) keep their defaults, so the panel and the quiet-hours check never meet `undefined`.
 */
export function parsePreferences(body: unknown): Preferences {
  const d = defaultPreferences()
  const b = (body && typeof body === 'object' ? body : {}) as Partial<Preferences>
  return {
    muted_types: Array.isArray(b.muted_types) ? b.muted_types.filter((x) => typeof x === 'string') : d.muted_types,
    tz: typeof b.tz === 'string' && b.tz ? b.tz : d.tz,
    quiet_hours: b.quiet_hours && typeof b.quiet_hours === 'object' ? b.quiet_hours : null,
    email: { ...d.email, ...b.email },
    digest: { ...d.digest, ...b.digest },
  }
}

/** Minutes since midnight of `now` in `tz` (falls back to UTC for a zone this browser does not know). */
export function minutesInZone(now: number, tz: string): number {
  let parts: Intl.DateTimeFormatPart[]
  try {
    parts = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(now)
  } catch {
    const d = new Date(now)
    return d.getUTCHours() * 60 + d.getUTCMinutes()
  }
  const h = Number(parts.find((p) => p.type === 'hour')?.value ?? 0)
  const m = Number(parts.find((p) => p.type === 'minute')?.value ?? 0)
  return (h % 24) * 60 + m
}

function toMinutes(t: TimeOfDay): number {
  const [h, m] = t.split(':').map(Number)
  return (h ?? 0) * 60 + (m ?? 0)
}

/**
 * Whether `now` falls in the user's quiet hours, read in the user's `tz` (not the browser's):
 * `from` inclusive, `to` exclusive, wrapping midnight when `from` is later than `to`. The
 * server decides the same way for e-mail.
 */
export function inQuietHours(prefs: Pick<Preferences, 'tz' | 'quiet_hours'> | null | undefined, now: number = Date.now()): boolean {
  const q = prefs?.quiet_hours
  if (!q) return false
  const from = toMinutes(q.from)
  const to = toMinutes(q.to)
  if (from === to) return false
  const t = minutesInZone(now, prefs!.tz)
  return from < to ? from <= t && t < to : t >= from || t < to
}
