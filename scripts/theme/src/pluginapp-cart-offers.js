/* PluginApp cart offers block: asks the app proxy what this cart should see (a free-shipping bar, a product that reaches
   free shipping, or a single-use discount) and shows it in the box the block reserved. App slow (> 1.5 s), down, or the
   answer is "nothing": the box is emptied and hidden at its size, so nothing on screen moves, and it gives its space back
   once it is below the screen. The arm and the action go into the cart attributes, so the order carries them.
   The source: scripts/theme/build.mjs minifies it into theme-extension/assets/, which is what shoppers load. */
(function () {
  'use strict';

  // @include pluginapp-common.js

  // Named once: the script is at Theme Check's 10,000 B.
  var BLOCKS = '[data-pa-offers]', ACTION = 'data-pa-action', SHOWN = 'data-pa-product';

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (_, k) { return values[k] != null ? values[k] : ''; });
  }

  function init(root) {
    if (root.getAttribute(STATE)) return;
    root.setAttribute(STATE, 'loading');
    refocus(root);
    var d = root.dataset;
    var proxy = (d.proxy || '/apps/pluginapp').replace(/\/+$/, '');
    var cartUrl = d.cartUrl || '/cart';
    var box = root.querySelector('.pa-offers__box');
    var vid = visitorId();
    var done = false;
    var controller = window.AbortController ? new AbortController() : null;
    var cart = {};

    function hide() {
      if (done) return;
      done = true;
      if (controller) controller.abort();
      emptyBlock(root, 'pa-offers', box);
    }

    var timer = setTimeout(hide, TIMEOUT_MS);

    // The shown product's impression or add, reported as the upsell blocks report theirs.
    function productEvent(type, item, requestId) {
      send(proxy + '/events', { type: type, request_id: requestId, visitor_id: vid, product_id: item.product_id,
        variant_id: item.variant_id, placement: 'cart', position: 0, token: item.token });
    }

    // Exposure: once the block's box has been on screen, whatever the arm (the control arm's shoppers see the plain cart).
    // An emptied block below the screen collapses to no height (not display: none), so its place still comes on screen;
    // until 6 Dec 2026 it never did, and the arm that shows nothing lost its below-the-fold carts from the experiment.
    // With the product shown to reach free shipping, its impression as the upsell blocks report theirs: until 5 Dec 2026
    // only its add was reported, so the merchant's add rate per impression counted adds that had no impression behind them.
    function seen(decisionId, item, requestId) {
      var sent = false;
      function report() {
        if (sent) return;
        sent = true;
        send(proxy + '/cart-offers/seen', { decision_id: decisionId, visitor_id: vid });
        if (item) productEvent('impression', item, requestId);
      }
      // An answer asked again (after an Add a theme took) replaces the one still waiting to be seen: only what is shown counts.
      if (root.paSeen) root.paSeen.disconnect();
      if (!window.IntersectionObserver) return report();
      var io = root.paSeen = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { io.disconnect(); report(); }
      }, { threshold: 0.5 });
      io.observe(root);
    }

    // The bar in the cart's own terms: what it costs after every discount (the app prices its lines from the catalog, before
    // automatic discounts) in its own currency, the threshold converted at the storefront's rate. In another currency with no
    // rate to be had, no bar: until 5 Dec 2026 it said the shop's currency beside the cart's, and counted the cart before
    // its automatic discounts, so a shopper who added what it asked still paid for shipping.
    // Rounded up to the currency's smallest unit (a yen, a cent), so what is left never reads as less than it is.
    function ours(b) {
      var sc = window.Shopify && Shopify.currency, cur = cart.currency || b.currency;
      var rate = cur === b.currency ? 1 : sc && sc.active === cur && +sc.rate;
      if (!rate) return null;
      var unit = Math.pow(10, new Intl.NumberFormat('en', { style: 'currency', currency: cur }).resolvedOptions().maximumFractionDigits);
      var t = b.threshold * rate, v = typeof cart.total_price == 'number' ? cart.total_price / 100 : b.value * rate;
      return { remaining: Math.max(0, Math.ceil((t - v) * unit - 1e-6) / unit), progress: t > 0 ? Math.min(1, v / t) : 1, currency: cur };
    }

    function bar(b, text) {
      var wrap = el('div', 'pa-offers__bar');
      var barText = el('p', 'pa-offers__bar-text', fill(text || d.barText, { amount: money(b.remaining, b.currency) }));
      wrap.appendChild(barText);
      var track = el('div', 'pa-offers__track');
      var fillEl = el('div', 'pa-offers__fill');
      fillEl.style.width = b.progress * 100 + '%'; // progress: 0 to 1 (ours())
      track.appendChild(fillEl);
      // Named by its text, as the Add button is by its product, for a screen reader.
      barText.id = 'pa-bar-' + Math.random().toString(36).slice(2);
      // No aria-valuemin and -valuemax: 0 and 100 are a progressbar's own.
      var aria = { role: 'progressbar', 'aria-labelledby': barText.id, 'aria-valuenow': Math.round(b.progress * 100) };
      for (var k in aria) track.setAttribute(k, aria[k]);
      wrap.appendChild(track);
      return wrap;
    }

    function upsell(item, requestId) {
      var row = el('div', 'pa-offers__item');
      var link = el('a', 'pa-offers__item-link');
      var path = safePath(item.url), base = (d.root || '/').replace(/\/?$/, '/'), addText = d.addLabel || 'Add', addedText = d.addedLabel || 'Added';
      link.href = path ? base + path.slice(1) : '#';
      var media = el('span', 'pa-offers__media');
      if (item.image) {
        var img = el('img');
        img.src = item.image; img.alt = ''; img.width = 64; img.height = 64; img.loading = 'lazy';
        media.appendChild(img);
      }
      link.appendChild(media);
      var title = link.appendChild(el('span', 'pa-offers__item-title', item.title));
      var price = link.appendChild(el('span', 'pa-offers__item-price', money(item.price, item.currency)));
      row.appendChild(link);
      var button = el('button', 'pa-offers__add', addText);
      button.type = 'button';
      button.setAttribute('aria-label', addText + ': ' + item.title);
      // The box is a live region: busy until the shopper's words are in, so the product is read out once, in them.
      if (localize(item, base, function (t, p) {
        item.title = title.textContent = t;
        if (p != null) price.textContent = p;
        button.setAttribute('aria-label', button.textContent + ': ' + t);
      }, function () { box.removeAttribute('aria-busy'); })) box.setAttribute('aria-busy', 'true');
      button.addEventListener('click', function () {
        addTried(button);
        addToCart(d.cartAddUrl ? d.cartAddUrl + '.js' : '/cart/add.js', item.variant_id).then(function (added) {
          // A beacon: the page reloads at once below.
          productEvent('add_to_cart', item, requestId);
          button.textContent = addedText;
          button.setAttribute('aria-label', addedText + ': ' + item.title);
          // The cart page's lines and totals are the theme's: it is loaded again, and this block asks the app again for the
          // cart as it now stands (until 5 Dec 2026 the page kept the cart without the product, and the bar claimed free
          // shipping from catalog prices, whatever the cart's discounts made of them). A theme that refreshes its cart
          // itself takes the event (preventDefault): then only this block asks again.
          if (root.dispatchEvent(new CustomEvent('pluginapp:cart-add', { bubbles: true, cancelable: true, detail: added }))) { location.reload(); return; }
          again(root);
        }).catch(function (e) { addFailed(button, e, d.addFailedLabel); });
      });
      row.appendChild(button);
      return row;
    }

    function offer(o) {
      var wrap = el('div', 'pa-offers__offer');
      var text = wrap.appendChild(el('p', 'pa-offers__offer-text', fill(d.offerText, { percent: String(+o.percent), code: o.code })));
      // When the code stops working, in the shopper's own time; no date, the code's words alone.
      try {
        text.appendChild(el('span', 'pa-offers__offer-until', fill(d.offerUntilText, { expires: new Intl.DateTimeFormat(LANG,
          { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(o.expires_at)) })));
      } catch (e) { }
      var apply = el('a', 'pa-offers__apply', d.applyLabel || 'Apply');
      // Back to the cart under the shopper's language or market path ("/fr/cart", the theme's own route): until 6 Dec 2026
      // the app's "/cart" sent her to the default language's cart, and in a subfolder market to another currency.
      var link = safePath(o.apply_url);
      apply.href = link ? link.split('?')[0] + '?redirect=' + encodeURIComponent(cartUrl) : '#';
      wrap.appendChild(apply);
      return wrap;
    }

    function render(data) {
      if (done) return;
      var action = data && data.action;
      if (!data || !data.decision_id) { hide(); return; }
      var shown = action === 'nudge_upsell' && data.upsell && data.upsell.length ? data.upsell[0] : null;
      // Reported as seen and carried to the order whatever is shown (a bar that cannot be said in the cart's currency too),
      // as the control arm's "nothing" is: the arms are counted alike.
      var b = data.bar && ours(data.bar);
      seen(data.decision_id, shown, data.upsell_request_id);
      // The order carries the arm and the action, whatever was shown (the control arm's "nothing" too).
      send(cartUrl + '/update.js', { attributes: { _pluginapp_visitor: vid, _pluginapp_arm: data.arm || '', _pluginapp_action: action || '' } });
      var parts = [];
      // A nudge, or nothing to nudge because the cart reaches free shipping as the app priced it; said as the cart stands.
      if (b && (action === 'nudge' || action === 'nudge_upsell' || action === 'nothing' && Number(data.bar.remaining) <= 0))
        parts.push(bar(b, b.remaining > 0 ? null : d.barDoneText));
      if (shown) parts.push(upsell(shown, data.upsell_request_id));
      if (action === 'offer' && data.offer && data.offer.code) parts.push(offer(data.offer));
      if (!parts.length) { hide(); return; }
      clearTimeout(timer);
      done = true;
      parts.forEach(function (p) { box.appendChild(p); });
      root.setAttribute(STATE, 'ready');
      root.setAttribute(ACTION, action);
      // For the cart upsells on the same page, which then show another product.
      if (shown) {
        root.setAttribute(SHOWN, shown.product_id);
        document.dispatchEvent(new CustomEvent('pluginapp:offer-shown', { detail: shown.product_id }));
      }
    }

    var signal = controller && controller.signal;
    getJson(cartUrl + '.js', signal).then(function (c) {
      cart = c;
      root.paCart = cartKey(c);
      // At most 100 lines (the app's limit), the most valuable first; quantities as the cart holds them.
      var lines = (cart.items || []).slice().sort(function (a, b) { return (b.line_price || 0) - (a.line_price || 0); }).slice(0, 100).map(pair);
      if (!lines.length) return null;
      // paid: what the cart costs after its discounts over what it costs before them, so the app picks a product that
      // reaches free shipping as the bar counts it (NaN for a cart of free lines reads as none).
      var q = '?lines=' + encodeURIComponent(lines.join(',')) + '&cart_token=' + encodeURIComponent(String(cart.token || '').split('?')[0]) +
        '&visitor_id=' + encodeURIComponent(vid) + '&paid=' + cart.total_price / cart.original_total_price + notPersonal();
      return getJson(proxy + '/cart-offers' + q, signal);
    }).then(function (data) { if (data) render(data); else hide(); }).catch(hide);
  }

  // A cart line as the app's lines and the cart's key name it.
  function pair(l) { return l.variant_id + ':' + l.quantity; }

  // What the block was asked for: the cart's lines and what it costs.
  function cartKey(c) {
    return (c.items || []).map(pair) + '|' + c.total_price;
  }

  // The block as it was before its first answer, asked again.
  function again(root) {
    var box = root.querySelector('.pa-offers__box');
    while (box.firstChild) box.removeChild(box.firstChild);
    [STATE, ACTION, SHOWN, 'aria-hidden', 'style'].forEach(function (a) { root.removeAttribute(a); });
    root.className = 'pa-offers'; // its only class (cart-offers.liquid), without --empty and --collapsed
    box.removeAttribute('aria-busy');
    // The old answer's watchers: its exposure must not be reported for what is no longer shown.
    [root.paCollapse, root.paSeen].forEach(function (o) { if (o) o.disconnect(); });
    init(root);
  }

  // The cart changed with no page load (the theme's quantity buttons, a line removed, the theme's own add): each block asks
  // again for the cart as it now stands. Seen by the page's requests to the cart, whichever theme made them, and compared by
  // lines and total, so the block's own update of the cart's attributes asks nothing. Until 6 Dec 2026 the bar kept saying
  // the order ships free after a line was removed, and the shopper paid for shipping.
  var changed;
  function check() {
    var roots = document.querySelectorAll(BLOCKS);
    if (!roots.length) return;
    getJson((roots[0].dataset.cartUrl || '/cart') + '.js').then(function (c) {
      var later;
      [].forEach.call(roots, function (root) {
        // A block still asking may have read the cart before the change: looked at again once it has its answer. (One the
        // theme drew again asks as soon as it is on the page: start().)
        if (root.getAttribute(STATE) === 'loading') later = 1;
        else if (root.paCart !== cartKey(c)) again(root);
      });
      if (later) changed = setTimeout(check, 500);
    }).catch(function () {});
  }
  try {
    new PerformanceObserver(function (list) {
      if (list.getEntries().some(function (e) { return /\/cart\/(add|change|update|clear)\b/.test(e.name); })) {
        clearTimeout(changed);
        changed = setTimeout(check, 200);
      }
    }).observe({ type: 'resource' });
  } catch (e) { /* no such observer: the block keeps its first answer */ }

  start(BLOCKS, init);
})();
