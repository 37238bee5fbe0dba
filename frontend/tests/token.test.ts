import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { TokenManager } from '../src/client/token'
import { tokenFor } from './helpers'

beforeEach(() => {
  vi.useFakeTimers()
  vi.setSystemTime(new Date('2026-01-01T00:00:00Z'))
})
afterEach(() => vi.useRealTimers())

describe('TokenManager', () => {
  it('returns a fixed token as is', async () => {
    const tm = new TokenManager({ token: 'abc' })
    expect(await tm.get()).toBe('abc')
    tm.invalidate()
    expect(await tm.get()).toBe('abc')
    expect(tm.failed).toBe(true)
  })

  it('asks the provider once for concurrent callers and caches until near expiry', async () => {
    let n = 0
    const provider = vi.fn(async () => tokenFor(`u`, 300) + `#${++n}`)
    const tm = new TokenManager({ provider })
    const [a, b] = await Promise.all([tm.get(), tm.get()])
    expect(a).toBe(b)
    expect(provider).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(200_000)
    expect(await tm.get()).toBe(a)
    expect(provider).toHaveBeenCalledTimes(1)
  })

  it('refreshes proactively before exp (decoded from the JWT)', async () => {
    let n = 0
    const seen: string[] = []
    const provider = vi.fn(async () => `${tokenFor('u', 120)}${++n}`)
    const tm = new TokenManager({ provider, onToken: (t) => seen.push(t!) })
    await tm.get()
    expect(provider).toHaveBeenCalledTimes(1)
    // skew = min(30 s, lifetime/4 = 30 s): refresh at 90 s
    await vi.advanceTimersByTimeAsync(89_000)
    expect(provider).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(2_000)
    expect(provider).toHaveBeenCalledTimes(2)
    expect(seen).toHaveLength(2)
    expect(tm.peek()).toBe(seen[1])
  })

  it('asks again when the held token is inside the refresh window', async () => {
    const provider = vi.fn(async () => tokenFor('u', 3600))
    let now = Date.now()
    const tm = new TokenManager({ token: tokenFor('u', 10), provider, now: () => now })
    expect(tm.needsRefresh()).toBe(false) // skew = lifetime/4 = 2.5 s
    now += 8_000
    expect(tm.needsRefresh()).toBe(true)
    await tm.get()
    expect(provider).toHaveBeenCalledTimes(1)
    expect(tm.needsRefresh()).toBe(false)
  })

  it('the proactive timer fetches a new token before the old one expires', async () => {
    const provider = vi.fn(async () => tokenFor('u', 3600))
    const tm = new TokenManager({ token: tokenFor('u', 10), provider })
    await vi.advanceTimersByTimeAsync(7_000)
    expect(provider).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1_000) // 10 s - 2.5 s skew
    expect(provider).toHaveBeenCalledTimes(1)
    expect(tm.needsRefresh()).toBe(false)
  })

  it('asks again after an auth error even if exp is far away', async () => {
    const provider = vi.fn(async () => tokenFor('u', 3600))
    const tm = new TokenManager({ token: tokenFor('u', 3600), provider })
    await tm.get()
    expect(provider).not.toHaveBeenCalled()
    tm.invalidate()
    await tm.get()
    expect(provider).toHaveBeenCalledTimes(1)
    expect(tm.failed).toBe(false)
  })

  it('propagates provider failures and recovers on the next call', async () => {
    let fail = true
    const tm = new TokenManager({
      provider: async () => {
        if (fail) throw new Error('login service down')
        return tokenFor('u')
      },
    })
    await expect(tm.get()).rejects.toThrow('login service down')
    fail = false
    expect(await tm.get()).toBeTruthy()
  })

  it('setToken replaces the token and stops stale provider answers', async () => {
    let release!: (t: string) => void
    const tm = new TokenManager({ provider: () => new Promise<string>((r) => (release = r)) })
    const pending = tm.get()
    await vi.advanceTimersByTimeAsync(0)
    tm.setToken('fixed')
    release('late')
    await pending
    expect(tm.peek()).toBe('fixed')
  })
})
