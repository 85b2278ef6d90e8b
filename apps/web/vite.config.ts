import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/** Where the API runs in development; the dev server forwards REST calls there (same origin for the page). */
const API_TARGET = process.env.API_URL ?? 'http://localhost:3000';
const API_PATHS = ['/auth', '/orders', '/portfolio', '/prices', '/candles', '/config'];

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    // lightweight-charts alone is ~170 kB; one chunk keeps the page a single request.
    chunkSizeWarningLimit: 1024,
  },
  server: {
    port: 5173,
    proxy: Object.fromEntries(API_PATHS.map((path) => [path, { target: API_TARGET, changeOrigin: false }])),
  },
});
