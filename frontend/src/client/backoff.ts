export interface BackoffOptions {
  /** First delay in ms (default 1000). */
  baseMs?: number
  /** Upper bound in ms (default 30000). */
  maxMs?: number
  /** Growth factor (default 2). */
  factor?: number
  /**
   * Fraction of the delay that is randomised (default 0.5): the delay is drawn uniformly from
   * `[d * (1 - jitter), d]`, where d is the capped exponential delay ("equal jitter").
   */
  jitter?: number
  /** Random source in [0, 1); injectable for tests. */
  random?: () => number
}

/** Exponential backoff with jitter. `next()` gives the next delay; `reset()` after a healthy connection. */
export class Backoff {
  readonly baseMs: number
  readonly maxMs: number
  readonly factor: number
  readonly jitter: number
  private readonly random: () => number
  private attempt = 0

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = Math.max(1, opts.baseMs ?? 1000)
    this.maxMs = Math.max(this.baseMs, opts.maxMs ?? 30000)
    this.factor = Math.max(1, opts.factor ?? 2)
    this.jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5))
    this.random = opts.random ?? Math.random
  }

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt
  }

  /** The capped exponential delay for attempt n, before jitter. */
  ceiling(n: number): number {
    return Math.min(this.maxMs, this.baseMs * Math.pow(this.factor, n))
  }

  next(): number {
    const d = this.ceiling(this.attempt)
    this.attempt++
    const low = d * (1 - this.jitter)
    return Math.round(low + (d - low) * this.random())
  }

  reset(): void {
    this.attempt = 0
  }
}
