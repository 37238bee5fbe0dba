import { describe, expect, it } from 'vitest'
import { Backoff } from '../src/client/backoff'
import { decodeJwt, tokenExpiry, tokenSubject } from '../src/client/jwt'
import { safeLink } from '../src/client/links'
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
    expect(websocketUrl('http://localhost:8080', 'a.b.c')).toBe('ws://localhost:8080/notify?access_token=a.b.c')
    expect(websocketUrl('https://x.example/svc/', null)).toBe('wss://x.example/svc/notify')
    expect(normalizeBase('https://x.example/svc')).toBe('https://x.example/svc/')
  })
  it('uses the page origin when server is empty', () => {
    expect(normalizeBase('')).toBe(location.origin + '/')
    expect(websocketUrl(null, 't')).toBe(location.origin.replace(/^http/, 'ws') + '/notify?access_token=t')
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
})

describe('parseNotification', () => {
  it('parses MESSAGE bodies and falls back to message-id', () => {
    expect(parseNotification('{"title":"t","created_at":"2026-01-01T00:00:00Z"}', 'n_1')?.id).toBe('n_1')
    expect(parseNotification('not json', 'x')).toBeNull()
    expect(parseNotification('[1]', 'x')).toBeNull()
    expect(parseNotification('{"id":"a"}')?.read).toBe(false)
  })
})
