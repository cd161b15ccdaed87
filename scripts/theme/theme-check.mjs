#!/usr/bin/env node
// Runs Shopify's Theme Check on theme-extension/ with the config the Shopify CLI uses for theme app
// extensions (theme-check:theme-app-extension). Why a script: @shopify/theme-check-node has no command of
// its own (`shopify theme check` lives in the Shopify CLI). Exits 1 on any error-severity offense.
// Usage: node scripts/theme/theme-check.mjs [extension-root]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { themeCheckRun, Severity } from '@shopify/theme-check-node';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(process.argv[2] ?? path.join(here, '..', '..', 'theme-extension'));
const names = { [Severity.ERROR]: 'error', [Severity.WARNING]: 'warning', [Severity.INFO]: 'info' };

const { theme, offenses } = await themeCheckRun(root, 'theme-check:theme-app-extension');
const fileOf = (uri) => path.relative(root, fileURLToPath(uri));
offenses.sort((a, b) => fileOf(a.uri).localeCompare(fileOf(b.uri)) || a.start.line - b.start.line);
for (const o of offenses) {
  console.log(`${fileOf(o.uri)}:${o.start.line + 1}:${o.start.character + 1} ${names[o.severity] ?? o.severity} ${o.check}: ${o.message}`);
}
const errors = offenses.filter((o) => o.severity === Severity.ERROR).length;
console.log(`theme-check: ${theme.length} files, ${errors} errors, ${offenses.length - errors} warnings/info (${path.relative(process.cwd(), root) || '.'})`);
process.exit(errors > 0 ? 1 : 0);
