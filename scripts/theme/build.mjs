#!/usr/bin/env node
// Builds the theme app extension's scripts: each scripts/theme/src/*.js, readable and commented, minified by Terser into
// theme-extension/assets/ under the same name. Why: Theme Check refuses an app block script over 10,000 B as stored, and
// the commented sources had reached it; what a shopper's browser loads is the minified file. Both are committed (the
// Shopify CLI deploys theme-extension/ as it is); `--check` exits 1 when an asset is not what its source builds to, so a
// test run catches an edit of the asset alone, or of the source without a build.
// Usage: node scripts/theme/build.mjs [--check]
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const here = path.dirname(fileURLToPath(import.meta.url));
const sources = path.join(here, 'src');
const assets = path.join(here, '..', '..', 'theme-extension', 'assets');
const check = process.argv.includes('--check');

let stale = 0;
for (const name of (await fs.readdir(sources)).filter((n) => n.endsWith('.js')).sort()) {
  const source = await fs.readFile(path.join(sources, name), 'utf8');
  // TIMEOUT_MS stays a named variable: the storefront tests set the block's time limit by rewriting its declaration.
  const { code } = await minify(source, {
    ecma: 5, compress: { passes: 2, reduce_vars: false }, mangle: { reserved: ['TIMEOUT_MS'] }, format: { comments: false },
  });
  const built = `/* PluginApp: built from scripts/theme/src/${name} by scripts/theme/build.mjs; edit that file. */\n${code}\n`;
  const target = path.join(assets, name);
  const current = await fs.readFile(target, 'utf8').catch(() => null);
  if (current === built) continue;
  if (check) {
    console.log(`theme build: theme-extension/assets/${name} is not what scripts/theme/src/${name} builds to: run node scripts/theme/build.mjs`);
    stale++;
  } else {
    await fs.writeFile(target, built);
    console.log(`theme build: theme-extension/assets/${name} ${Buffer.byteLength(source)} B -> ${Buffer.byteLength(built)} B`);
  }
}
process.exit(stale > 0 ? 1 : 0);
