// Gzip sizes of the builds (run after `npm run build`).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const kb = (n) => (n / 1024).toFixed(1) + ' KB'
function size(path) {
  const buf = readFileSync(path)
  return { raw: buf.length, gzip: gzipSync(buf, { level: 9 }).length }
}
function files(dir, exts) {
  return readdirSync(dir)
    .filter((f) => exts.some((e) => f.endsWith(e)))
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile())
}

const el = size(join(root, 'dist/element/notify-bell.js'))
console.log(`self-contained notify-bell.js: ${kb(el.raw)} raw, ${kb(el.gzip)} gzip (target <= 60 KB)`)

const esFiles = files(join(root, 'dist/es'), ['.js', '.css'])
let esAll = Buffer.alloc(0)
for (const f of esFiles) {
  const s = size(f)
  console.log(`  es ${f.slice(root.length + 1)}: ${kb(s.raw)} raw, ${kb(s.gzip)} gzip`)
  esAll = Buffer.concat([esAll, readFileSync(f)])
}
console.log(`ES build (all JS + CSS, Vue external): ${kb(esAll.length)} raw, ${kb(gzipSync(esAll, { level: 9 }).length)} gzip (target <= 15 KB)`)
