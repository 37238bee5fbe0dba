import { defineAsyncComponent } from 'vue'

/**
 * The settings panel, loaded the first time it is shown: most visits never open it, so the ES
 * build keeps it (and its texts) in a chunk of its own.
 */
export const NotifySettings = defineAsyncComponent(() => import('./NotifySettings.vue'))
