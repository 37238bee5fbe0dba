import { tokenExpiry } from './jwt'
import type { TokenProvider } from './types'

export interface TokenManagerOptions {
  /** A fixed token (or the first token when a provider is also given). */
  token?: string | null
  /** Asked for a fresh token before the current one expires and after an auth error. */
  provider?: TokenProvider | null
  /** Refresh this long before `exp` (default 30 s; capped at a quarter of the token's lifetime). */
  refreshSkewMs?: number
  /** Called whenever a different token has been obtained (proactive refresh included). */
  onToken?: (token: string | null) => void
  /** Clock, injectable for tests. */
  now?: () => number
}

/**
 * Holds the current JWT. With a provider, `get()` asks it again when the token is about to
 * expire (decoded `exp`), after `invalidate()` (auth error), and proactively on a timer.
 */
export class TokenManager {
  private token: string | null
  private provider: TokenProvider | null
  private readonly skewMs: number
  private readonly now: () => number
  private readonly onToken?: (token: string | null) => void
  private receivedAt = 0
  private invalid = false
  private inflight: Promise<string | null> | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private generation = 0
  private disposed = false

  constructor(opts: TokenManagerOptions = {}) {
    this.token = opts.token || null
    this.provider = opts.provider ?? null
    this.skewMs = opts.refreshSkewMs ?? 30_000
    this.now = opts.now ?? Date.now
    this.onToken = opts.onToken
    this.receivedAt = this.now()
    this.schedule()
  }

  get hasProvider(): boolean {
    return this.provider != null
  }

  /** The token currently held, without asking anyone. */
  peek(): string | null {
    return this.token
  }

  /** True when the held token was rejected and no provider can replace it. */
  get failed(): boolean {
    return this.invalid && !this.provider
  }

  /** Milliseconds before `exp` at which this token counts as expiring. */
  private skewFor(token: string): number {
    const exp = tokenExpiry(token)
    if (exp == null) return 0
    const lifetime = Math.max(0, exp - this.receivedAt)
    return Math.min(this.skewMs, Math.floor(lifetime / 4))
  }

  /** Whether the held token is expired or inside the refresh window. */
  needsRefresh(): boolean {
    if (!this.token) return true
    if (this.invalid) return true
    const exp = tokenExpiry(this.token)
    if (exp == null) return false
    return exp - this.now() <= this.skewFor(this.token)
  }

  /**
   * A usable token. Asks the provider when there is none, when it expires soon, after
   * `invalidate()`, or when `force` is set. Concurrent callers share one provider call.
   */
  async get(force = false): Promise<string | null> {
    if (!this.provider) return this.token
    if (!force && !this.needsRefresh()) return this.token
    return this.fetch()
  }

  private fetch(): Promise<string | null> {
    if (this.inflight) return this.inflight
    const provider = this.provider!
    const gen = this.generation
    const p = Promise.resolve()
      .then(() => provider())
      .then((t) => {
        const token = t || null
        if (gen === this.generation && !this.disposed) this.accept(token)
        return token
      })
      .finally(() => {
        if (this.inflight === p) this.inflight = null
      })
    this.inflight = p
    return p
  }

  private accept(token: string | null): void {
    const changed = token !== this.token
    this.token = token
    this.receivedAt = this.now()
    this.invalid = false
    this.schedule()
    if (changed) this.onToken?.(token)
  }

  /** The server rejected the token: the next `get()` asks the provider again. */
  invalidate(): void {
    this.invalid = true
  }

  /** Replace the fixed token (e.g. the `token` attribute changed). */
  setToken(token: string | null | undefined): void {
    this.generation++
    this.inflight = null
    this.accept(token || null)
  }

  /** Replace (or remove) the provider. */
  setProvider(provider: TokenProvider | null | undefined): void {
    this.generation++
    this.inflight = null
    this.provider = provider ?? null
    this.schedule()
  }

  /** Proactive refresh: ask the provider shortly before `exp`, so REST calls and reconnects use a fresh token. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (!this.provider || !this.token || this.disposed) return
    const exp = tokenExpiry(this.token)
    if (exp == null) return
    const delay = Math.max(5_000, exp - this.skewFor(this.token) - this.now())
    this.timer = setTimeout(() => {
      this.timer = null
      this.fetch().catch(() => {
        /* the next get() retries */
      })
    }, delay)
  }

  dispose(): void {
    this.disposed = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }
}
