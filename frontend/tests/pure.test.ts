import { describe, expect, it } from 'vitest'
import { Backoff } from '../src/client/backoff'
import { decodeJwt, tokenExpiry, tokenSubject } from '../src/client/jwt'
import { followLink, normalizeOrigins, resolveLink, safeLink } from '../src/client/links'
import { defaultPreferences, inQuietHours, minutesInZone, parsePreferences } from '../src/client/preferences'
import { normalizeBase, websocketUrl } from '../src/client/rest'
import { parseNotification } from '../src/client/transport'
import { jwt } from './helpers'

describe('jwt', () => {
  it('reads exp and sub from the payload (base64url, unicode)', () => {
    const t = jwt({ sub: '김철수', exp: 2000000000, groups: ['a'] })
    expect(tokenSubject(t)).toBe('김철수')
    expect(tokenExpiry(t)).toBe(2000000000 * 1000)
    expect(decodeJwt(t)?.groups).toEqual(['a'])
  })
  it('tolerates garbage', () => {
    expect(decodeJwt('nope')).toBeNull()
    expect(decodeJwt('a.!!!.c')).toBeNull()
    expect(tokenExpiry(jwt({ sub: 'x' }))).toBeNull()
    expect(tokenExpiry(null)).toBeNull()
  })
})

describe('backoff', () => {
  it('grows exponentially up to the cap', () => {
    const b = new Backoff({ baseMs: 1000, maxMs: 8000, jitter: 0 })
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([1000, 2000, 4000, 8000, 8000, 8000])
    b.reset()
    expect(b.next()).toBe(1000)
  })
  it('jitters within [d*(1-j), d]', () => {
    const lo = new Backoff({ baseMs: 1000, jitter: 0.5, random: () => 0 })
    const hi = new Backoff({ baseMs: 1000, jitter: 0.5, random: () => 0.999999 })
    expect(lo.next()).toBe(500)
    expect(lo.next()).toBe(1000)
    expect(hi.next()).toBe(1000)
    expect(hi.next()).toBe(2000)
    const r = new Backoff({ baseMs: 1000, maxMs: 30000 })
    for (let i = 0; i < 50; i++) {
      const ceiling = r.ceiling(r.attempts)
      const d = r.next()
      expect(d).toBeGreaterThanOrEqual(ceiling / 2)
      expect(d).toBeLessThanOrEqual(ceiling)
    }
  })
  it('spreads clients apart (jitter is random)', () => {
    const delays = new Set(Array.from({ length: 20 }, () => new Backoff().next()))
    expect(delays.size).toBeGreaterThan(5)
  })
})

describe('urls', () => {
  it('maps http to ws and keeps path prefixes', () => {
    expect(websocketUrl('http://localhost:8080')).toBe('ws://localhost:8080/notify')
    expect(websocketUrl('https://x.example/svc/')).toBe('wss://x.example/svc/notify')
    expect(normalizeBase('https://x.example/svc')).toBe('https://x.example/svc/')
  })
  it('uses the page origin when server is empty', () => {
    expect(normalizeBase('')).toBe(location.origin + '/')
    expect(websocketUrl(null)).toBe(location.origin.replace(/^http/, 'ws') + '/notify')
  })
})

describe('links', () => {
  it('follows only http(s) links, relative to the page', () => {
    expect(safeLink('/purchases/42', 'https://app.example/x')).toBe('https://app.example/purchases/42')
    expect(safeLink('https://o.example/a', 'https://app.example/')).toBe('https://o.example/a')
    expect(safeLink('javascript:alert(1)', 'https://app.example/')).toBeNull()
    expect(safeLink('data:text/html,hi', 'https://app.example/')).toBeNull()
    expect(safeLink(null)).toBeNull()
  })
  it('accepts only absolute http(s) URLs and / paths (contract section 1)', () => {
    const base = 'https://app.example/page'
    for (const bad of [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(1)',
      ' javascript:alert(1)',
      'java\tscript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'vbscript:x',
      'file:///etc/passwd',
      '//evil.example/x',
      '/\\evil.example/x',
      'relative/path',
      '?q=1',
      '#frag',
      'https://user:pw@evil.example/',
      'ftp://files.example/x',
      '',
    ]) {
      expect(resolveLink(bad, { base }), bad).toBeNull()
    }
    expect(resolveLink('/purchases/42', { base })).toEqual({ url: 'https://app.example/purchases/42', external: false })
    expect(resolveLink('https://app.example/x', { base })).toEqual({ url: 'https://app.example/x', external: false })
    expect(resolveLink('HTTPS://docs.example/a', { base })).toEqual({ url: 'https://docs.example/a', external: true })
  })
  it('with an allow-list, links to other origins must be on it', () => {
    const base = 'https://app.example/page'
    const allowedOrigins = normalizeOrigins('https://docs.example, https://help.example/any/path junk')
    expect(allowedOrigins).toEqual(['https://docs.example', 'https://help.example'])
    expect(resolveLink('https://docs.example/a', { base, allowedOrigins })).toEqual({ url: 'https://docs.example/a', external: true })
    expect(resolveLink('https://evil.example/a', { base, allowedOrigins })).toBeNull()
    expect(resolveLink('/own/path', { base, allowedOrigins: [] })).toEqual({ url: 'https://app.example/own/path', external: false })
    expect(resolveLink('https://docs.example/a', { base, allowedOrigins: [] })).toBeNull()
  })
  it('opens other origins in a new tab without opener or referrer', () => {
    const calls: unknown[][] = []
    const win = { open: (...a: unknown[]) => calls.push(['open', ...a]), location: { assign: (u: string) => calls.push(['assign', u]) } }
    followLink({ url: 'https://docs.example/a', external: true }, win as never)
    followLink({ url: 'https://app.example/b', external: false }, win as never)
    expect(calls).toEqual([
      ['open', 'https://docs.example/a', '_blank', 'noopener,noreferrer'],
      ['assign', 'https://app.example/b'],
    ])
  })
})

describe('quiet hours', () => {
  const at = (iso: string) => Date.parse(iso)
  it('are read in the user\'s time zone, wrapping midnight', () => {
    const p = { tz: 'Asia/Seoul', quiet_hours: { from: '22:00', to: '07:00' } }
    expect(inQuietHours(p, at('2026-11-29T14:30:00Z'))).toBe(true) // 23:30 in Seoul
    expect(inQuietHours(p, at('2026-11-29T21:59:00Z'))).toBe(true) // 06:59
    expect(inQuietHours(p, at('2026-11-29T22:00:00Z'))).toBe(false) // 07:00: `to` is exclusive
    expect(inQuietHours(p, at('2026-11-29T03:00:00Z'))).toBe(false) // noon
    expect(inQuietHours(p, at('2026-11-29T13:00:00Z'))).toBe(true) // 22:00: `from` is inclusive
  })
  it('within one day, none, and unknown zones', () => {
    expect(inQuietHours({ tz: 'UTC', quiet_hours: { from: '12:00', to: '13:00' } }, at('2026-11-29T12:30:00Z'))).toBe(true)
    expect(inQuietHours({ tz: 'UTC', quiet_hours: { from: '12:00', to: '13:00' } }, at('2026-11-29T13:30:00Z'))).toBe(false)
    expect(inQuietHours({ tz: 'UTC', quiet_hours: null }, at('2026-11-29T12:30:00Z'))).toBe(false)
    expect(inQuietHours(null)).toBe(false)
    expect(minutesInZone(at('2026-11-29T12:34:00Z'), 'No/Such_Zone')).toBe(12 * 60 + 34)
  })
  it('server answers are read leniently', () => {
    expect(parsePreferences({})).toEqual(defaultPreferences())
    const p = parsePreferences({ muted_types: ['a.*', 3], tz: 'Asia/Seoul', quiet_hours: { from: '22:00', to: '07:00' }, email: { enabled: true, min_priority: 'normal', after_s: 60 }, digest: null })
    expect(p.muted_types).toEqual(['a.*'])
    expect(p.quiet_hours).toEqual({ from: '22:00', to: '07:00' })
    expect(p.email).toEqual({ enabled: true, min_priority: 'normal', after_s: 60 })
    expect(p.digest).toEqual({ enabled: false, at: '09:00' })
  })
})

describe('parseNotification', () => {
  it('parses MESSAGE bodies and falls back to message-id', () => {
    expect(parseNotification('{"title":"t","created_at":"2026-01-01T00:00:00Z"}', 'n_1')?.id).toBe('n_1')
    expect(parseNotification('not json', 'x')).toBeNull()
    expect(parseNotification('[1]', 'x')).toBeNull()
    expect(parseNotification('{"id":"a"}')?.read).toBe(false)
  })
})
