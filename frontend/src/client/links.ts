/**
 * Which notification links the widget follows (contract section 1: a `link` is an absolute
 * `http`/`https` URL or a path starting with `/`). The server rejects anything else, but the
 * widget does not rely on that: stored data, another server version or a hostile producer may
 * still hand it `javascript:`, `data:`, `//host` or a relative path.
 */

/** A link the widget may follow, resolved against the host page. */
export interface ResolvedLink {
  /** Absolute http(s) URL. */
  url: string
  /** On another origin than the host page: opened in a new tab without opener or referrer. */
  external: boolean
}

function pageBase(base?: string): string {
  return base ?? (typeof location !== 'undefined' ? location.href : 'http://localhost/')
}

/** The origin of each allowed entry (`https://docs.example`, or a full URL of it); junk is dropped. */
export function normalizeOrigins(origins: readonly string[] | string | null | undefined): string[] | null {
  // An empty attribute (`link-origins=""`) means "not set"; an empty array means "none".
  if (origins == null || (typeof origins === 'string' && !origins.trim())) return null
  const list = typeof origins === 'string' ? origins.split(/[\s,]+/) : origins
  const out: string[] = []
  for (const o of list) {
    if (!o) continue
    try {
      const u = new URL(o)
      if (u.protocol === 'http:' || u.protocol === 'https:') out.push(u.origin)
    } catch {
      /* not a URL: ignored */
    }
  }
  return out
}

/**
 * Resolves a notification's link, or null when it must not be followed:
 * - only absolute `http:`/`https:` URLs and paths starting with a single `/` are accepted;
 * - a link to another origin than the page is `external`; with an allow-list
 *   (`allowedOrigins`, origins), external links to origins not in it are refused.
 */
export function resolveLink(
  link: string | null | undefined,
  opts: { base?: string; allowedOrigins?: readonly string[] | null } = {},
): ResolvedLink | null {
  if (!link || typeof link !== 'string') return null
  const s = link.trim()
  // Control characters and backslashes let browsers reinterpret a URL (`/\evil.example`).
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(s)) return null
  const isPath = s.startsWith('/') && !s.startsWith('//')
  const isAbsolute = /^https?:\/\//i.test(s)
  if (!isPath && !isAbsolute) return null
  const base = pageBase(opts.base)
  let u: URL
  try {
    u = new URL(s, base)
  } catch {
    return null
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null
  if (u.username || u.password) return null
  let pageOrigin: string | null = null
  try {
    pageOrigin = new URL(base).origin
  } catch {
    pageOrigin = null
  }
  const external = u.origin !== pageOrigin
  if (external && opts.allowedOrigins && !opts.allowedOrigins.includes(u.origin)) return null
  return { url: u.href, external }
}

/** The link as an absolute URL when `resolveLink` accepts it (kept for hosts that used it). */
export function safeLink(link: string | null | undefined, base?: string, allowedOrigins?: readonly string[] | null): string | null {
  return resolveLink(link, { base, allowedOrigins })?.url ?? null
}

/** Follows a resolved link: same origin in this tab; another origin in a new tab without opener or referrer. */
export function followLink(link: ResolvedLink, win: Pick<Window, 'open' | 'location'> = window): void {
  if (link.external) win.open(link.url, '_blank', 'noopener,noreferrer')
  else win.location.assign(link.url)
}
