  // Shared by every block script: scripts/theme/build.mjs puts it where a source says "// @include pluginapp-common.js",
  // inside the source's own function, so each built script stands alone (a page may load either block, or both).

  var TIMEOUT_MS = 1500;
  // Named once: each is written several times, and the scripts are near Theme Check's 10,000 B.
  var JSON_TYPE = 'application/json', STATE = 'data-pa-state';
  // The fetches name no credentials: fetch's default in every current browser ('same-origin') sends the store's cookies,
  // the cart's among them, to the store's own addresses, which are all the blocks call.
  // One visitor id per shopper across blocks.
  var VISITOR_KEY = 'pluginapp:visitor';
  // The page's language, for its amounts and dates (the browser's own when the theme names none).
  var LANG = document.documentElement.lang || undefined;

  // Whether the shopper allows analytics where the store asks her (Shopify's Customer Privacy API, on the page when the
  // store shows a consent banner; without it nothing was asked). Declined: no id is kept across visits (one kept before is
  // forgotten), and nothing she sees or does is reported to the app or written to her cart; the blocks still show. Until
  // 6 Dec 2026 the id was kept and sent whatever she chose.
  // In the theme editor (Shopify.designMode) the merchant's own previews are no shopper's: nothing is reported either
  // (until 7 Dec 2026 each redraw of a block as she edited it logged impressions and exposed her to the experiments).
  function consented() {
    var s = window.Shopify, p = s && s.customerPrivacy;
    return !(s && s.designMode) && !(p && p.analyticsProcessingAllowed && !p.analyticsProcessingAllowed());
  }

  // Where the page has Shopify's loader but not the API yet (the banner loads it late, or not at all), the block loads it,
  // as Shopify documents: each report below looks at her choice again, so once it is known nothing more goes out, and a
  // kept id is forgotten at the first report she declined.
  var shop = window.Shopify;
  if (shop && shop.loadFeatures && !shop.customerPrivacy)
    try { shop.loadFeatures([{ name: 'consent-tracking-api', version: '0.1' }], function () { }); } catch (e) { }

  // What a block's request says of the shopper (ProxyEndpoints.Shopper): nothing when she allows analytics; np=1 when she
  // declined (answered as a guest); np=2 in the theme editor, answered as the admin's preview is, with nothing logged and
  // no code handed out (until 8 Dec 2026 each redraw there was a shopper's visit, and the cart block handed out real codes).
  function notPersonal() { return consented() ? '' : '&np=' + (shop && shop.designMode ? 2 : 1); }

  function visitorId() {
    var id, mine = consented();
    try { id = mine ? localStorage.getItem(VISITOR_KEY) : localStorage.removeItem(VISITOR_KEY); } catch (e) { /* storage blocked */ }
    if (!id) {
      // Shared by the page's blocks (each script is apart), so both ask for the same shopper.
      id = window.pluginappVisitor || (window.crypto && crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));
      try { if (mine) localStorage.setItem(VISITOR_KEY, id); } catch (e) { /* one id per page view */ }
    }
    return window.pluginappVisitor = id;
  }

  // An event for the app (or the cart's attributes), unless the shopper declined: a beacon survives the page leaving (a
  // link followed, the cart page reloaded after an Add); else fetch keepalive.
  function send(url, payload) {
    if (!consented()) {
      try { localStorage.removeItem(VISITOR_KEY); } catch (e) { }
      return;
    }
    var body = JSON.stringify(payload);
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: JSON_TYPE }))) return;
    } catch (e) { }
    fetch(url, { method: 'POST', keepalive: true, headers: { 'Content-Type': JSON_TYPE }, body: body })
      .catch(function () {});
  }

  // An amount in the page's language; the code after it when the browser does not know the currency. No amount (a product
  // whose variant the app does not hold): no text, where until 5 Dec 2026 it read as a price of 0.
  function money(amount, currency) {
    if (amount == null || amount === '' || !isFinite(Number(amount))) return '';
    try {
      return new Intl.NumberFormat(LANG, { style: 'currency', currency: currency }).format(Number(amount));
    } catch (e) {
      return amount + (currency ? ' ' + currency : '');
    }
  }

  // Same-origin paths only (resolved: browsers drop tabs, read "\\" as "/").
  function safePath(url) {
    if (typeof url !== 'string' || url.charAt(0) !== '/' || /[\u0000-\u001f\u007f\\]/.test(url)) return null;
    try {
      var u = new URL(url, location.href);
      return u.origin === location.origin ? u.pathname + u.search + u.hash : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // An emptied block below the screen, now or once scrolled back above it, collapses: the content after it moves up out
  // of sight. Why not at once: a block on screen (or above it) would move what the shopper is looking at. Until 5 Dec 2026
  // it kept its space for the whole visit, a blank hole as tall as its cards.
  function collapse(root, className) {
    // Below: its top at or past the screen's bottom.
    if (root.getBoundingClientRect().top >= (window.innerHeight || document.documentElement.clientHeight)) {
      root.classList.add(className);
      return;
    }
    if (!window.IntersectionObserver) return;
    // Kept on the block, so a block asked again stops it.
    var io = root.paCollapse = new IntersectionObserver(function (entries) {
      var e = entries[entries.length - 1];
      if (e.isIntersecting || e.boundingClientRect.top < (e.rootBounds ? e.rootBounds.height : window.innerHeight)) return;
      io.disconnect();
      root.classList.add(className);
    });
    io.observe(root);
  }

  // Nothing to show: the block is emptied and hidden at its size, so nothing on screen moves, then collapses out of sight.
  function emptyBlock(root, block, content) {
    root.style.height = root.getBoundingClientRect().height + 'px';
    root.setAttribute(STATE, 'empty');
    root.classList.add(block + '--empty');
    root.setAttribute('aria-hidden', 'true');
    while (content.firstChild) content.removeChild(content.firstChild);
    collapse(root, block + '--collapsed');
  }

  // JSON from the storefront or the app proxy; an answer that is not 200 rejects.
  function getJson(url, signal) {
    return fetch(url, { signal: signal, headers: { Accept: JSON_TYPE } }).then(function (r) {
      if (!r.ok) throw r; // the blocks' catch reads nothing of it
      return r.json();
    });
  }

  // One to the cart. Refused (sold out, as many as the shop allows already in the cart), it rejects with the cart's own
  // words, in the shop's language, when it gives them; a failed request, with none.
  function addToCart(url, variantId) {
    return fetch(url, {
      method: 'POST', headers: { 'Content-Type': JSON_TYPE, Accept: JSON_TYPE },
      body: JSON.stringify({ items: [{ id: variantId, quantity: 1 }] })
    }).then(function (r) {
      if (r.ok) return r.json();
      return r.json().then(function (b) { return b && typeof b.description == 'string' ? b.description : ''; }, function () { return ''; })
        .then(function (words) { throw { cartSaid: words.slice(0, 300) }; });
    });
  }

  // Why an Add did not happen, under its button and read out (by the block's own live region where it has one, else as an
  // alert), the button ready again and focused. Until 5 Dec 2026 the button came back and said nothing, so a shopper clicked
  // a sold-out product again and again. Gone at the next try.
  function addFailed(button, error, fallback) {
    var note = addNote(button);
    if (!note) {
      note = el('p', 'pa-add-error');
      if (!button.closest('[aria-live]')) note.setAttribute('role', 'alert');
      button.parentNode.insertBefore(note, button.nextSibling);
    }
    note.textContent = (error && error.cartSaid) || fallback || 'Could not add to cart';
    button.disabled = false;
    // Back where the shopper was, unless she has moved on since.
    var at = document.activeElement;
    if (at === document.body || at === button) button.focus();
  }

  function addNote(button) {
    var note = button.nextElementSibling;
    return note && note.className === 'pa-add-error' ? note : null;
  }

  function addTried(button) {
    var note = addNote(button);
    if (note) note.parentNode.removeChild(note);
    button.disabled = true;
  }

  // In a Shopify Markets store the app answers in the shop's currency and language, and the shopper may browse in others
  // (Shopify.currency.active, or a path such as "/fr/"). The storefront's own product JSON under her path is in hers: the
  // card takes its title and its own variant's price from it, in place (the card's parts have fixed sizes, so nothing
  // moves). Not asked when nothing differs. In another currency the card shows no price until hers comes, and none if it
  // does not: a price in the shop's currency beside hers would mislead. Else, when it fails, the card keeps the app's
  // words. Until 5 Dec 2026 such a shopper saw the shop's currency and language. settle, if given, is called once it is
  // over, either way; the return says whether it was asked.
  function localize(item, base, show, settle) {
    var sc = window.Shopify && window.Shopify.currency;
    var active = sc && typeof sc.active == 'string' && sc.active ? sc.active : item.currency;
    var other = active !== item.currency;
    var path = safePath(item.url);
    if (!path || (!other && base === '/')) return false;
    if (other) show(item.title, '');
    getJson(base + path.slice(1).split(/[?#]/)[0] + '.js').then(function (p) {
        var v = (p.variants || []).filter(function (x) { return x.id === item.variant_id; })[0];
        show(typeof p.title == 'string' && p.title ? p.title : item.title, v && typeof v.price == 'number' ? money(v.price / 100, active) : null);
      }).catch(function () {}).then(function () { if (settle) settle(); });
    return true;
  }

  // The element of this script's blocks that last took focus (start() watches). After an Add on a theme that refreshes its
  // own cart, the theme draws its section again, or the cart offers block asks again and empties its box: that element is
  // gone, and focus falls to the page, where a keyboard or screen reader shopper would start again from its top (until
  // 6 Dec 2026 she did). The block in its place takes it as it starts: refocus(its heading, or the block). Only when the
  // element is gone: focus on the page with it still there is the shopper's doing (a click on the page's text).
  var focused;
  function refocus(target) {
    if (focused && !focused.isConnected && document.activeElement === document.body) {
      target.tabIndex = -1;
      target.focus();
    }
  }

  // Starts each block of the page (sel), then each that appears later. Why later: a theme that draws a section again (its
  // cart drawer or cart page after each change, through Shopify's Section Rendering API; the theme editor) swaps in the
  // block's markup new and unstarted. Until 6 Dec 2026 only the theme editor's were started: elsewhere the block stayed a
  // blank box until the page was loaded again. Watched once per script; init passes over a block it has started.
  function start(sel, init) {
    function scan(node) {
      if (node.querySelectorAll) [].forEach.call(node.matches && node.matches(sel) ? [node] : node.querySelectorAll(sel), init);
    }
    function go() {
      scan(document);
      new MutationObserver(function (records) {
        records.forEach(function (r) { [].forEach.call(r.addedNodes, scan); });
      }).observe(document, { childList: true, subtree: true });
      document.addEventListener('focusin', function (e) { focused = e.target.closest(sel) && e.target; });
    }
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', go); else go();
  }
