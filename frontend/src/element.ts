/**
 * Self-contained `<notify-bell>` custom element (Vue bundled, styles in the shadow root):
 *
 *   <script src="https://notify.example.com/widget/notify-bell.js"></script>
 *   <notify-bell server="https://notify.example.com" token="…"></notify-bell>
 */
import { defineComponent, defineCustomElement, h, ref, useHost, type PropType } from 'vue'
import type { NotifyClient } from './client/client'
import type { TokenProvider } from './client/types'
import NotifyBell from './components/NotifyBell.vue'
import css from './styles.css?inline'

export { createNotifyClient } from './client/client'

const NotifyBellHost = defineComponent({
  name: 'NotifyBellElement',
  props: {
    server: { type: String, default: null },
    servers: { type: String, default: null },
    linkOrigins: { type: String, default: null },
    noSettings: { type: Boolean, default: false },
    token: { type: String, default: null },
    tokenProvider: { type: Function as PropType<TokenProvider>, default: null },
    locale: { type: String, default: null },
    noToasts: { type: Boolean, default: false },
    toastDuration: { type: Number, default: 6000 },
    toastPosition: { type: String as PropType<'bottom-end' | 'bottom-start' | 'top-end' | 'top-start'>, default: 'bottom-end' },
    align: { type: String as PropType<'start' | 'end'>, default: 'end' },
    theme: { type: String as PropType<'light' | 'dark' | 'auto'>, default: 'light' },
  },
  styles: [css],
  setup(props) {
    const host = useHost()
    const inner = ref<{ client: NotifyClient | null; open(): Promise<void>; close(): void } | null>(null)
    if (host) {
      // Host pages can reach the client (markAllRead, state, on('notification')) and open/close.
      Object.defineProperty(host, 'client', { configurable: true, get: () => inner.value?.client ?? null })
      Object.defineProperty(host, 'open', { configurable: true, value: () => inner.value?.open() })
      Object.defineProperty(host, 'close', { configurable: true, value: () => inner.value?.close() })
    }
    return () => h(NotifyBell, { ...props, eventTarget: host, ref: inner })
  },
})

export const NotifyBellElement = defineCustomElement(NotifyBellHost)

if (typeof customElements !== 'undefined' && !customElements.get('notify-bell')) {
  customElements.define('notify-bell', NotifyBellElement)
}
