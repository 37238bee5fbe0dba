// Gzip sizes of the builds (run after `npm run build`).
import { execSync } from 'node:child_process'
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

// Chunks only loaded on demand (the settings panel: `defineAsyncComponent`), reported apart
// from what a page with the bell loads.
const LAZY = /^NotifySettings-/

function report(dir, label) {
  let js = Buffer.alloc(0)
  let css = Buffer.alloc(0)
  let lazy = Buffer.alloc(0)
  for (const f of files(join(root, dir), ['.js', '.css'])) {
    const s = size(f)
    const name = f.slice(root.length + 1)
    const isLazy = LAZY.test(name.split('/').pop())
    console.log(`  ${name}: ${kb(s.raw)} raw, ${kb(s.gzip)} gzip${isLazy ? ' (loaded when the settings open)' : ''}`)
    if (isLazy) lazy = Buffer.concat([lazy, readFileSync(f)])
    else if (f.endsWith('.css')) css = Buffer.concat([css, readFileSync(f)])
    else js = Buffer.concat([js, readFileSync(f)])
  }
  const gz = (b) => gzipSync(b, { level: 9 }).length
  console.log(`${label}: JS ${kb(js.length)} raw, ${kb(gz(js))} gzip; JS+CSS ${kb(gz(Buffer.concat([js, css])))} gzip (target <= 15 KB); settings chunk on demand ${kb(gz(lazy))} gzip`)
}

report('dist/es', 'ES build (Vue and @stomp/stompjs external, as published)')
execSync('npx vite build --mode lib-bundled --logLevel error', { cwd: root, stdio: 'inherit' })
report('dist/es-bundled', 'ES build with @stomp/stompjs inlined (Vue external)')
