#!/usr/bin/env node
// Renders app blocks of theme-extension/ into a standalone HTML page, the way a storefront would show
// them: the block's Liquid (and the snippets it renders) through liquidjs, with small stand-ins for the
// Shopify objects and filters it uses, the schema's setting defaults applied, and the schema's
// `stylesheet` and `javascript` assets linked from /assets/ (Shopify injects them the same way).
// Usage: node scripts/theme/render-block.mjs BLOCK[+BLOCK...] [CONTEXT_JSON]
//   BLOCK: a file name under theme-extension/blocks without .liquid (e.g. product-upsells); several joined by "+" are
//   placed one under the other, as a merchant may place the cart offers and the cart upsells on one cart page
//   CONTEXT_JSON: {"settings":{...},"product":{"id":1,"title":"...","price":"12.00 GBP","image":"https://..."},
//                 "template":"product","locale":"en","app_metafields":{"pluginapp":{"upsells_hidden":{"value":true}}}}; the product's
//                 price and image are optional (shown above the block)
// Prints the page on stdout. scripts/demo.sh renders its product page template with demo-product-page.json, whose
// values are placeholders the app fills per product (app/Demo/DemoProductPage.cs).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Liquid } from 'liquidjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', 'theme-extension');
const [blockNames, contextJson] = process.argv.slice(2);
if (!blockNames) {
  console.error('usage: render-block.mjs BLOCK[+BLOCK...] [CONTEXT_JSON]');
  process.exit(2);
}
const blockName = blockNames.split('+').join(' and ');
const context = contextJson ? JSON.parse(contextJson) : {};

const locale = context.locale ?? 'en';
// As Shopify does: the storefront's language's file (locales/fr.json), and the default's (en.default.json) for any key it lacks.
const read = (name) => JSON.parse(fs.readFileSync(path.join(root, 'locales', name), 'utf8'));
const fallback = read('en.default.json');
const translations = locale === 'en' || !fs.existsSync(path.join(root, 'locales', `${locale}.json`)) ? fallback : read(`${locale}.json`);
const lookup = (tree, key) => String(key).split('.').reduce((node, part) => (node == null ? undefined : node[part]), tree);
const translate = (key) => {
  const value = lookup(translations, key) ?? lookup(fallback, key);
  if (typeof value !== 'string') throw new Error(`missing translation '${key}' in locales/en.default.json`);
  return value;
};

// Shopify's global objects: visible in blocks and in the snippets they render.
const globals = {
  // A language or market path ("/fr") when the context names one, as Shopify's routes carry it.
  routes: Object.fromEntries(Object.entries({ root_url: '/', cart_url: '/cart', cart_add_url: '/cart/add', cart_change_url: '/cart/change' })
    .map(([k, v]) => [k, context.root_url && context.root_url !== '/' ? context.root_url + (v === '/' ? '' : v) : v])),
  // design_mode: the page as the theme editor shows it to the merchant.
  request: { locale: { iso_code: locale }, design_mode: context.design_mode === true },
  cart: context.cart ?? { items: [] },
  // The app's own metafields on its installation, e.g. {"pluginapp":{"upsells_hidden":{"value":true}}}.
  app: { metafields: context.app_metafields ?? {} },
};
const engine = new Liquid({
  globals,
  root: [path.join(root, 'snippets')],
  partials: [path.join(root, 'snippets')],
  extname: '.liquid',
  strictFilters: true,
  dynamicPartials: true,
});
// Shopify's filters the blocks use; anything else fails the render (strictFilters).
engine.registerFilter('t', translate);
engine.registerFilter('asset_url', (name) => `/assets/${name}`);
// The schema is data for the theme editor: it renders nothing.
engine.registerTag('schema', {
  parse(token, remainTokens) {
    for (let t = remainTokens.shift(); t; t = remainTokens.shift()) {
      if (t.name === 'endschema') return;
    }
    throw new Error('{% schema %} is not closed');
  },
  render() { return ''; },
});

const product = context.product ?? { id: 1, title: 'Sample product', handle: 'sample-product' };
const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const blocks = [];
const head = [];
for (const [i, name] of blockNames.split('+').entries()) {
  const source = fs.readFileSync(path.join(root, 'blocks', `${name}.liquid`), 'utf8');
  const schemaMatch = source.match(/{%-?\s*schema\s*-?%}([\s\S]*?){%-?\s*endschema\s*-?%}/);
  if (!schemaMatch) throw new Error(`blocks/${name}.liquid has no {% schema %}`);
  const schema = JSON.parse(schemaMatch[1]);
  const settings = {};
  for (const s of schema.settings ?? []) if (s.id && 'default' in s) settings[s.id] = s.default;
  Object.assign(settings, context.settings ?? {});
  const block = { id: `pluginapp-block-${i + 1}`, type: name, settings, shopify_attributes: '' };
  const markup = await engine.parseAndRender(source, { block, product });
  blocks.push(`    <div class="shopify-block shopify-app-block" id="shopify-block-${escape(block.id)}">
${markup.trim()}
    </div>`);
  head.push(schema.stylesheet && `<link rel="stylesheet" href="/assets/${escape(schema.stylesheet)}">`,
    schema.javascript && `<script src="/assets/${escape(schema.javascript)}" defer></script>`);
}

const title = context.template === 'cart' ? 'Your cart' : product.title;
const picture = product.image
  ? `<img class="storefront-product__image" src="${escape(product.image)}" alt="" width="160" height="160">`
  : '<div class="storefront-product__image"></div>';
const price = product.price ? `<p class="storefront-product__price">${escape(product.price)}</p>` : '';
process.stdout.write(`<!doctype html>
<html lang="${escape(locale)}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escape(title)}</title>
  <style>
    body { margin: 0; font-family: system-ui, sans-serif; color: #1a1a1a; background: #fff; }
    main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
    .storefront-product { display: flex; gap: 1.5rem; align-items: center; }
    .storefront-product__image { width: 160px; height: 160px; background: #e8e2d8; border-radius: .25rem; object-fit: cover; }
    .storefront-product__price { font-size: 1.1rem; }
    .storefront-footer { padding: 1rem 0; border-top: 1px solid #ddd; }
    ${context.theme === 'dawn' ? '/* As Dawn and the themes built on it: a 10 px root, the body text 15 px. */ html { font-size: 62.5%; } body { font-size: 1.5rem; }' : ''}
  </style>
  ${head.filter(Boolean).join('\n  ')}
</head>
<body>
  ${context.theme === 'dawn' ? `<header><a id="cart-icon-bubble" href="/cart"><span class="cart-count-bubble">${(context.cart?.items ?? []).reduce((n, l) => n + (l.quantity ?? 1), 0)}</span></a></header>` : ''}
  <main>
    <div class="storefront-product" id="storefront-above">
      ${picture}
      <div><h1>${escape(title)}</h1>${price}<p>Stand-in storefront page rendering the <code>${escape(blockName)}</code> app block.</p></div>
    </div>
${blocks.join('\n')}
    <footer class="storefront-footer" id="storefront-below"><p>Content below the block: it must never move.</p></footer>
  </main>
</body>
</html>
`);
