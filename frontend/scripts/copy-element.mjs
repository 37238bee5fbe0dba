// Copies the self-contained <notify-bell> build to examples/assets/, where the Rust example
// server embeds it (served at /widget/notify-bell.js).
import { copyFileSync, mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const src = resolve(here, '../dist/element/notify-bell.js')
const dst = resolve(here, '../../examples/assets/notify-bell.js')
mkdirSync(dirname(dst), { recursive: true })
copyFileSync(src, dst)
console.log(`copied ${src} -> ${dst} (${statSync(dst).size} bytes)`)
