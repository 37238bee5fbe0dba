import { computed, shallowRef, type App, type Plugin } from 'vue'
import { createNotifyClient, type NotifyClient, type NotifyClientOptions } from './client/client'
import NotifyBell from './components/NotifyBell.vue'
import NotifyInbox from './components/NotifyInbox.vue'
import { NotifySettings } from './components/settings-async'
import NotifyToasts from './components/NotifyToasts.vue'
import { injectClient, NOTIFY_KEY, useClientState } from './context'

export interface NotifyPluginOptions extends NotifyClientOptions {
  /** Use an existing client instead of creating one from these options. */
  client?: NotifyClient
  /** `en` or `ko` for every component (default: the browser's languages). */
  locale?: string | null
  /** Start loading and connecting at install (default true in a browser). */
  autoStart?: boolean
  /** Register NotifyBell, NotifyInbox, NotifyToasts and NotifySettings globally (default true). */
  registerComponents?: boolean
}

/**
 * `app.use(NotifyPlugin, { server, token | tokenProvider })`: one client for the whole app,
 * provided to every `<NotifyBell>`, `<NotifyInbox>`, `<NotifyToasts>` and to `useNotify()`.
 */
export const NotifyPlugin: Plugin<[NotifyPluginOptions?]> = {
  install(app: App, options: NotifyPluginOptions = {}) {
    const client = options.client ?? createNotifyClient(options)
    app.provide(NOTIFY_KEY, { client, locale: options.locale ?? null })
    app.config.globalProperties.$notify = client
    if (options.registerComponents !== false) {
      app.component('NotifyBell', NotifyBell)
      app.component('NotifyInbox', NotifyInbox)
      app.component('NotifyToasts', NotifyToasts)
      app.component('NotifySettings', NotifySettings)
    }
    if (options.autoStart !== false && typeof window !== 'undefined') void client.start()
    if (!options.client) app.onUnmount?.(() => client.stop())
  },
}

/** The plugin's (or enclosing bell's) client with its reactive state, for custom UIs in Vue. */
export function useNotify() {
  const client = injectClient()
  if (!client) throw new Error('useNotify(): install NotifyPlugin (app.use(NotifyPlugin, …)) first')
  const state = useClientState(shallowRef(client))
  return {
    client,
    state,
    items: computed(() => state.value?.items ?? []),
    unreadCount: computed(() => state.value?.unreadCount ?? 0),
    connection: computed(() => state.value?.connection ?? 'idle'),
    markRead: (id: string | readonly string[]) => client.markRead(id),
    markAllRead: () => client.markAllRead(),
    loadMore: () => client.loadMore(),
    refresh: () => client.refresh(),
  }
}

declare module 'vue' {
  interface ComponentCustomProperties {
    $notify: NotifyClient
  }
}
