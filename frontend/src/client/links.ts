/**
 * The notification's link as an absolute http(s) URL relative to the host page, or null when it
 * is absent or uses another scheme (`javascript:` and the like are never followed).
 */
export function safeLink(link: string | null | undefined, base?: string): string | null {
  if (!link || typeof link !== 'string') return null
  let u: URL
  try {
    u = new URL(link, base ?? (typeof location !== 'undefined' ? location.href : 'http://localhost/'))
  } catch {
    return null
  }
  return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null
}
