import './styles.css'

export * from './client/index'
export { NotifyPlugin, useNotify } from './plugin'
export type { NotifyPluginOptions } from './plugin'
export { NOTIFY_KEY, activateNotification } from './context'
export { default as NotifyBell } from './components/NotifyBell.vue'
export { default as NotifyInbox } from './components/NotifyInbox.vue'
export { default as NotifyToasts } from './components/NotifyToasts.vue'
