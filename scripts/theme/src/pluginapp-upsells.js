/* PluginApp upsell blocks: fill the block's skeleton with ranked products from the app proxy. App slow (> 1.5 s),
   down or empty: the block is emptied and hidden at its size, so nothing on screen moves, and it gives its space back
   (collapses) once it is below the screen, where nothing the shopper sees moves with it.
   The source: scripts/theme/build.mjs minifies it into theme-extension/assets/, which is what shoppers load. */
(function () {
  'use strict';

  // @include pluginapp-common.js

  function card(item, index, opts) {
    var li = el('li', 'pa-card');
    li.setAttribute('data-product-id', item.product_id);
    li.setAttribute('data-position', index);
    var link = el('a', 'pa-card__link');
    var path = safePath(item.url);
    // Under the shopper's language path ("/fr/").
    link.href = path ? opts.base + path.slice(1) : '#';
    var media = el('span', 'pa-card__media');
    if (item.image) {
      var img = el('img');
      img.src = item.image;
      img.alt = '';
      img.width = 300;
      img.height = 300;
      img.loading = 'lazy';
      img.decoding = 'async';
      media.appendChild(img);
    }
    link.appendChild(media);
    var title = link.appendChild(el('span', 'pa-card__title', item.title));
    var price = link.appendChild(el('span', 'pa-card__price', money(item.price, item.currency)));
    li.appendChild(link);
    if (opts.showAdd && item.variant_id) {
      var button = el('button', 'pa-card__add', opts.addLabel);
      button.type = 'button';
      // Named by its product for a screen reader (until 5 Dec 2026 every card's button read "Add to cart").
      button.setAttribute('aria-label', opts.addLabel + ': ' + item.title);
      li.appendChild(button);
    }
    localize(item, opts.base, function (t, p) {
      item.title = title.textContent = t;
      if (p != null) price.textContent = p;
      if (button) button.setAttribute('aria-label', button.textContent + ': ' + t);
    });
    return li;
  }

  function init(root) {
    if (root.getAttribute(STATE)) return;
    root.setAttribute(STATE, 'loading');
    // Focus lost as the theme drew the block again goes to its heading, not to the button of the product just added: that
    // one is in the cart now, and not offered again.
    refocus(root.querySelector('.pa-upsells__heading') || root);
    var d = root.dataset;
    var proxy = (d.proxy || '/apps/pluginapp').replace(/\/+$/, '');
    var list = root.querySelector('.pa-upsells__list');
    var slots = list ? list.children : [];
    var placement = d.placement === 'cart' ? 'cart' : 'product';
    var vid = visitorId();
    var done = false;
    var controller = window.AbortController ? new AbortController() : null;

    // Nothing to show: hide the block, keeping its box.
    function hide() {
      if (done) return;
      done = true;
      if (controller) controller.abort();
      emptyBlock(root, 'pa-upsells', root);
    }

    var timer = setTimeout(hide, TIMEOUT_MS);

    // Visitor id into the cart's attributes at its first impression.
    var cartTagged = false;
    function mark() {
      var m = /(?:^|; *)cart=([^;?%]*)/.exec(document.cookie);
      return vid + '|' + (m ? m[1] : '');
    }
    function tagCart() {
      try { cartTagged = cartTagged || sessionStorage.getItem('pa-cart') === mark(); } catch (e) { }
      if (cartTagged || !consented()) return;
      cartTagged = true;
      fetch((d.cartUrl || '/cart') + '/update.js', {
        method: 'POST', keepalive: true, headers: { 'Content-Type': JSON_TYPE },
        body: JSON.stringify({ attributes: { _pluginapp_visitor: vid } })
      }).then(function (r) {
        if (!r.ok) throw r;
        try { sessionStorage.setItem('pa-cart', mark()); } catch (e) { }
      }).catch(function () { cartTagged = false; });
    }

    function track(type, item, position, requestId) {
      send(proxy + '/events', {
        type: type, request_id: requestId, visitor_id: vid, product_id: item.product_id,
        variant_id: item.variant_id, placement: placement, position: position, token: item.token
      });
    }

    // The product the Cart offers block on the same page shows, if it shows one: this block shows another in its place.
    function offered() {
      var o = document.querySelector('[data-pa-offers][data-pa-product]');
      return o ? o.getAttribute('data-pa-product') : '';
    }

    function render(data) {
      if (done) return;
      var all = data && Array.isArray(data.items) ? data.items : [];
      var items = all.filter(function (x) { return String(x.product_id) !== offered(); }).slice(0, slots.length);
      if (!items.length) { hide(); return; }
      clearTimeout(timer);
      done = true;
      var opts = { showAdd: !!root.querySelector('.pa-card--skeleton .pa-card__add'), addLabel: d.addLabel || 'Add to cart',
        base: (d.root || '/').replace(/\/?$/, '/') };
      var requestId = data.request_id;
      var skeletons = Array.prototype.slice.call(slots);
      var seen = [];
      var observer = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          // Not while she has not allowed analytics (the banner still open, say): the card stays watched, and is looked at
          // again when she chooses (below). Until 7 Dec 2026 it was marked seen and its impression dropped, so an Accept
          // clicked after the cards came left their clicks with no impression or exposure behind them.
          if (!entry.isIntersecting || !consented()) return;
          var i = Number(entry.target.getAttribute('data-position'));
          observer.unobserve(entry.target);
          if (!seen[i]) { seen[i] = true; track('impression', items[i], i, requestId); tagCart(); }
        });
      }, { threshold: 0.5 }) : null;

      // In place, in order.
      skeletons.forEach(function (slot, i) {
        if (i >= items.length) { slot.className = 'pa-card pa-card--skeleton pa-card--unused'; return; }
        var li = card(items[i], i, opts);
        slot.parentNode.replaceChild(li, slot);
        if (observer) observer.observe(li);
      });
      // Her choice made on the page (Shopify's Customer Privacy API announces it): the cards on screen are seen now (those
      // of the list as it stands, a spare put in since included).
      if (observer) document.addEventListener('visitorConsentCollected', function () {
        Array.prototype.forEach.call(list.querySelectorAll('.pa-card[data-position]'), function (li) { observer.unobserve(li); observer.observe(li); });
      });
      // A merchant's notice, as text, never markup.
      var notice = typeof data.notice == 'string' && data.notice.trim();
      var why = root.querySelector('.pa-upsells__why p');
      if (notice && why) why.textContent = notice;
      list.removeAttribute('aria-busy');
      // The live status says the products came (until 5 Dec 2026 it went on saying "Loading recommendations").
      var status = root.querySelector('.pa-upsells__status');
      if (status) status.textContent = d.loadedLabel || '';
      root.setAttribute(STATE, 'ready');
      root.setAttribute('data-request-id', requestId || '');

      // The Cart offers block decided after this one: its product's card takes the spare product asked for, in place, or
      // goes when the answer had none (until 5 Dec 2026 one cart page could show the same product twice). Never a product
      // it showed before: the shopper may have added it from there.
      var offeredIds = [offered()];
      if (placement === 'cart') document.addEventListener('pluginapp:offer-shown', function (e) {
        var id = String(e.detail), i = -1;
        offeredIds.push(id);
        items.forEach(function (x, k) { if (String(x.product_id) === id) i = k; });
        var spare = all.filter(function (x) { return items.indexOf(x) < 0 && offeredIds.indexOf(String(x.product_id)) < 0; })[0];
        var old = list.querySelector('.pa-card[data-position="' + i + '"]');
        if (!old) return;
        if (observer) observer.unobserve(old);
        if (!spare) {
          // Its place kept, at its size but unseen and inert, as an unused one's: nothing else on screen moves.
          old.classList.add('pa-card--unused');
          old.removeAttribute('data-position');
          old.removeAttribute('data-product-id');
          old.setAttribute('aria-hidden', 'true');
          if (!list.querySelector('.pa-card[data-position]')) emptyBlock(root, 'pa-upsells', root);
          return;
        }
        items[i] = spare;
        seen[i] = false;
        var li = card(spare, i, opts);
        old.parentNode.replaceChild(li, old);
        if (observer) observer.observe(li);
      });

      list.addEventListener('click', function (e) {
        var target = e.target instanceof Element ? e.target : null;
        var li = target && target.closest('.pa-card[data-position]');
        if (!li) return;
        var i = Number(li.getAttribute('data-position'));
        var item = items[i];
        var button = target.closest('.pa-card__add');
        if (!button) {
          if (target.closest('.pa-card__link')) { track('click', item, i, requestId); tagCart(); }
          return;
        }
        if (button.getAttribute('aria-disabled')) return;
        addTried(button);
        addToCart(d.cartAddUrl ? d.cartAddUrl + '.js' : '/cart/add.js', item.variant_id).then(function (added) {
          track('add_to_cart', item, i, requestId);
          tagCart();
          button.textContent = d.addedLabel || 'Added';
          button.setAttribute('aria-label', (d.addedLabel || 'Added') + ': ' + item.title);
          // Done, and said so where the shopper is: the button takes focus back, named "Added: …", and refuses another
          // click. Until 6 Dec 2026 it stayed disabled, so focus fell to the page and a screen reader heard nothing.
          button.disabled = false;
          button.setAttribute('aria-disabled', 'true');
          if (document.activeElement === document.body) button.focus();
          // A theme that refreshes its cart itself takes the event (preventDefault). Else, on the cart page, the page is
          // loaded again: its lines and totals are the theme's, and until 5 Dec 2026 they stayed without the product added.
          // On a product page the theme's cart icon is drawn again from its own section (Shopify's Section Rendering API;
          // "cart-icon-bubble" in Dawn and the themes built on it), so its count holds the product: until 8 Dec 2026 it
          // stayed as it was, and a shopper took the add for one that failed.
          if (root.dispatchEvent(new CustomEvent('pluginapp:cart-add', { bubbles: true, cancelable: true, detail: added }))) {
            var icon = document.getElementById('cart-icon-bubble');
            if (placement === 'cart') location.reload();
            else if (icon) getJson(opts.base + '?sections=cart-icon-bubble').then(function (s) {
              var part = new DOMParser().parseFromString(s['cart-icon-bubble'], 'text/html').querySelector('.shopify-section');
              if (part) icon.innerHTML = part.innerHTML;
            }).catch(function () {});
          }
        }).catch(function (e) { addFailed(button, e, d.addFailedLabel); });
      });
    }

    // One spare on a cart page that has the Cart offers block too (the variety rules stay those of the block's count).
    var query = '?placement=' + placement + '&limit=' + encodeURIComponent(d.limit || slots.length) +
      (placement === 'cart' && document.querySelector('[data-pa-offers]') ? '&spare=1' : '') +
      '&visitor_id=' + encodeURIComponent(vid) + notPersonal();
    var ids = placement === 'product'
      ? Promise.resolve(d.productId ? '&product_id=' + encodeURIComponent(d.productId) +
        (d.cartVariantIds ? '&variant_ids=' + encodeURIComponent(d.cartVariantIds.split(',').slice(0, 100)) : '') : null)
      : getJson((d.cartUrl || '/cart') + '.js', controller && controller.signal).then(function (cart) {
        // Each variant once, at most 100 (the app's limit): a cart of more lines, or of one variant on many lines (line
        // properties, selling plans), was answered 400 until 7 Dec 2026, and the block hid.
        var variants = (cart.items || []).map(function (line) { return line.variant_id; })
          .filter(function (v, i, all) { return v && all.indexOf(v) === i; }).slice(0, 100);
        return variants.length ? '&variant_ids=' + encodeURIComponent(variants.join(',')) : null;
      });

    ids.then(function (part) {
      if (part == null) return null;
      return getJson(proxy + '/recommendations' + query + part, controller && controller.signal);
    }).then(function (data) {
      if (data) render(data); else hide();
    }).catch(hide);
  }

  start('[data-pa-upsells]', init);
})();
