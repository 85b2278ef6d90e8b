import { defineConfig } from 'drizzle-kit';

/** `npx drizzle-kit generate` (run in packages/db) writes a new migration after a schema change. */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './migrations',
});
