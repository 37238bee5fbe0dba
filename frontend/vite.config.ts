import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Two builds (see package.json "build"):
//   --mode lib      ES module package (Vue external): dist/es/index.js, dist/es/client.js, dist/es/notify-bell.css
//   --mode element  one self-contained IIFE defining <notify-bell>: dist/element/notify-bell.js
export default defineConfig(({ mode }) => {
  const prodVue = {
    'process.env.NODE_ENV': JSON.stringify('production'),
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  }
  if (mode === 'element') {
    return {
      plugins: [vue()],
      define: prodVue,
      build: {
        outDir: 'dist/element',
        emptyOutDir: true,
        minify: true,
        target: 'es2020',
        lib: {
          entry: 'src/element.ts',
          formats: ['iife'],
          name: 'NotifyBell',
          fileName: () => 'notify-bell.js',
        },
      },
    }
  }
  if (mode === 'lib' || mode === 'lib-bundled') {
    // lib-bundled: only for measuring the size with @stomp/stompjs inlined (scripts/size.mjs)
    const bundled = mode === 'lib-bundled'
    return {
      plugins: [vue()],
      build: {
        outDir: bundled ? 'dist/es-bundled' : 'dist/es',
        emptyOutDir: true,
        minify: true,
        target: 'es2020',
        lib: {
          entry: { index: 'src/index.ts', client: 'src/client/index.ts' },
          formats: ['es'],
          cssFileName: 'notify-bell',
        },
        rolldownOptions: {
          external: bundled ? ['vue'] : ['vue', /^@stomp\/stompjs/],
          output: { minify: true },
        },
      },
    }
  }
  // dev server / tests
  return {
    plugins: [vue()],
    test: {
      environment: 'happy-dom',
      include: ['tests/**/*.test.ts'],
      // The machine is shared with cargo builds; a DOM test that renders the settings form
      // (400 time zones) can take seconds there. Fake timers keep the tests themselves fast.
      testTimeout: 30_000,
    },
  }
})
