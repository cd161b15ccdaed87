#!/usr/bin/env node
// Builds the theme app extension's scripts: each scripts/theme/src/*.js, readable and commented, with the shared code of
// src/shared/ put in where it says "// @include <file>", minified by Terser into theme-extension/assets/ under the same name. Why: Theme Check refuses an app block script over 10,000 B as stored, and
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

// Why an include and not a module: a theme app block loads one classic script, which must stand alone.
async function include(source, name) {
  const parts = [];
  let at = 0;
  for (const m of source.matchAll(/^[ \t]*\/\/ @include ([\w.-]+\.js)[ \t]*$/gm)) {
    const shared = await fs.readFile(path.join(sources, 'shared', m[1]), 'utf8').catch(() => {
      throw new Error(`${name}: no scripts/theme/src/shared/${m[1]} to include`);
    });
    parts.push(source.slice(at, m.index), shared);
    at = m.index + m[0].length;
  }
  parts.push(source.slice(at));
  return parts.join('');
}

let stale = 0;
for (const name of (await fs.readdir(sources)).filter((n) => n.endsWith('.js')).sort()) {
  const source = await include(await fs.readFile(path.join(sources, name), 'utf8'), name);
  // TIMEOUT_MS stays a named variable: the storefront tests set the block's time limit by rewriting its declaration.
  const { code } = await minify(source, {
    ecma: 5, compress: { passes: 2, reduce_vars: false }, mangle: { reserved: ['TIMEOUT_MS'] }, format: { comments: false },
  });
  // Why the header short: it counts against Theme Check's 10,000 B like the code.
  const built = `/* Built from scripts/theme/src/${name}: edit there. */\n${code}\n`;
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
