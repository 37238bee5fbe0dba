/** A listener of one event. */
export type Handler<T> = (value: T) => void

/**
 * Typed listeners by event name. A listener that throws is logged and does not stop the
 * others: one broken host callback must not break the widget.
 */
export class Emitter<M extends Record<string, unknown>> {
  private readonly sets = new Map<keyof M, Set<Handler<never>>>()

  on<K extends keyof M>(event: K, fn: Handler<M[K]>): () => void {
    let set = this.sets.get(event)
    if (!set) this.sets.set(event, (set = new Set()))
    set.add(fn as Handler<never>)
    return () => set.delete(fn as Handler<never>)
  }

  emit<K extends keyof M>(event: K, value: M[K]): void {
    const set = this.sets.get(event)
    if (!set) return
    for (const fn of [...set] as Handler<M[K]>[]) {
      try {
        fn(value)
      } catch (e) {
        console.error('[notify] listener failed', e)
      }
    }
  }
}
