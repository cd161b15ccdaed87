// The embedded admin's only script: sends forms and actions to /api/admin with the session token, puts the answer's
// validation messages beside their fields, and fills the preview, what-if and downloads. Everything it writes into the
// page goes through textContent: titles and notices are the merchant's (or a shopper's) text, never markup.
(() => {
  'use strict';
  const $ = (sel, root = document) => root.querySelector(sel);

  // App Bridge hands out a fresh session token; without it (tests, the offline demo) the page's own id_token is used.
  async function token() {
    if (window.shopify && typeof window.shopify.idToken === 'function') return window.shopify.idToken();
    return new URLSearchParams(location.search).get('id_token');
  }

  async function api(method, url, body) {
    const headers = { Accept: 'application/json' };
    const t = await token();
    if (t) headers.Authorization = 'Bearer ' + t;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let json = null;
    try { json = await res.json(); } catch { /* an empty answer */ }
    return { ok: res.ok, status: res.status, json };
  }

  function say(text, bad) {
    const s = $('#status');
    if (!s) return;
    s.textContent = text;
    s.classList.toggle('text-critical', !!bad);
  }

  const problem = (r) => (r.json && (r.json.detail || r.json.title)) || `The app answered ${r.status}.`;

  function clearErrors(form) {
    form.querySelectorAll('[data-error-for]').forEach((e) => { e.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  }

  function fieldError(form, name, message) {
    const box = form.querySelector(`[data-error-for="${name}"]`);
    const input = form.elements.namedItem(name);
    if (input && input.setAttribute) {
      input.setAttribute('aria-invalid', 'true');
      if (box) { box.id = box.id || `${name}-error`; input.setAttribute('aria-errormessage', box.id); }
    }
    if (box) box.textContent = message; else say(`${name}: ${message}`, true);
  }

  // The form as JSON: data-type says how a field reads (bool, number, ids); a field that cannot be read is an error.
  function read(form) {
    const out = {};
    const errors = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === 'submit') continue;
      const type = el.dataset.type;
      const raw = typeof el.value === 'string' ? el.value.trim() : el.value;
      if (type === 'bool') out[el.name] = el.checked;
      else if (type === 'number') {
        // A field the app needs (required) or counts in whole units (inputmode numeric) says so beside itself: the API
        // cannot read an empty or a fractional one, and answered a bare 400 (until 5 Dec 2026).
        if (raw === '') { if (el.required) errors[el.name] = 'Enter a number'; else out[el.name] = null; }
        else if (!/^-?\d+(\.\d+)?$/.test(raw)) errors[el.name] = `"${raw}" is not a number`;
        else if (el.inputMode === 'numeric' && !/^-?\d+$/.test(raw)) errors[el.name] = `"${raw}" is not a whole number`;
        else out[el.name] = Number(raw);
      } else if (type === 'ids') {
        const parts = raw.split(/[\s,]+/).filter(Boolean);
        const bad = parts.find((p) => !/^\d{1,18}$/.test(p));
        if (bad !== undefined) errors[el.name] = `"${bad}" is not an id (ids are whole numbers, separated by commas)`;
        else out[el.name] = parts.map(Number);
      } else out[el.name] = raw;
    }
    return { body: out, errors };
  }

  function showErrors(form, errors) {
    const names = Object.keys(errors);
    names.forEach((n) => fieldError(form, n, [].concat(errors[n]).join(' ')));
    const first = names.map((n) => form.elements.namedItem(n)).find((e) => e && e.focus);
    if (first) first.focus();
    say(`${names.length} field${names.length === 1 ? ' needs' : 's need'} attention.`, true);
  }

  const reload = () => setTimeout(() => location.reload(), 400);

  // A button's question, with what each ticked box meant for it (data-confirm-for) adds: {name} is a select's chosen
  // option or a box's data-yes / data-no.
  function question(form, by) {
    const words = (el) => (!el ? '' : el.type === 'checkbox' ? (el.checked ? el.dataset.yes : el.dataset.no) : el.selectedOptions ? el.selectedOptions[0].text : el.value);
    const extra = [...form.querySelectorAll('input[data-confirm-for]:checked')].filter((c) => c.dataset.confirmFor === by.value)
      .map((c) => c.dataset.confirm.replace(/\{(\w+)\}/g, (_, n) => words(form.elements.namedItem(n))));
    return [by.dataset.confirm, ...extra].join(' ');
  }

  // Loads an admin page with a fresh session token, as Shopify's own first load of the app does. Without one the server
  // sends the page to the session-token bounce: another page load, which waits on App Bridge before the page can load
  // again (until 6 Dec 2026 every link did). No token coming, the page goes by the bounce.
  async function go(url) {
    try {
      const t = await token();
      if (t) url.searchParams.set('id_token', t);
    } catch { /* the bounce fetches one */ }
    location.assign(url.toString());
  }

  // A preview is the page again with the form's fields (and the embedding parameters).
  function navigate(form, path) {
    const url = new URL(path, location.href);
    const here = new URLSearchParams(location.search);
    for (const k of ['shop', 'host', 'embedded']) if (here.has(k)) url.searchParams.set(k, here.get(k));
    for (const el of form.elements) if (el.name && el.type !== 'submit' && el.type !== 'checkbox') url.searchParams.set(el.name, el.value.trim());
    return go(url);
  }

  // A link to another admin page goes with a fresh session token; one that opens elsewhere (a target, a modifier key, a
  // download) is left to the browser.
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest && ev.target.closest('a[href^="/admin"]');
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey || a.target || a.hasAttribute('download')) return;
    ev.preventDefault();
    go(new URL(a.getAttribute('href'), location.href));
  });

  document.addEventListener('submit', async (ev) => {
    const form = ev.target;
    if (form.dataset.api) {
      ev.preventDefault();
      // Why: a double click sent the form twice (two notes in an order's history, two rule versions, two switch changes);
      // while one is on its way the form's buttons are disabled and another submit is ignored.
      if (form.dataset.busy) return;
      // A form with several submit buttons: the one pressed adds its name and value, and may ask first.
      const by = ev.submitter || {};
      if (by.dataset && by.dataset.navigate) return navigate(form, by.dataset.navigate);
      if (by.dataset && by.dataset.confirm && !confirm(question(form, by))) return;
      clearErrors(form);
      const { body, errors } = read(form);
      if (Object.keys(errors).length) return showErrors(form, errors);
      if (by.name) body[by.name] = by.value;
      const [method, url] = form.dataset.api.split(' ');
      const buttons = [...form.querySelectorAll('button, input[type=submit]')].filter((b) => !b.disabled);
      form.dataset.busy = '1';
      form.setAttribute('aria-busy', 'true');
      for (const b of buttons) b.disabled = true;
      say('Saving…');
      let reloading = false;
      try {
        const r = await api(method, url, body);
        if (r.ok) { say((by.dataset && by.dataset.done) || 'Saved.'); if (form.hasAttribute('data-reload')) { reloading = true; reload(); } }
        else if (r.status === 400 && r.json && r.json.errors) showErrors(form, Object.fromEntries(
          Object.entries(r.json.errors).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), v])));
        else say(problem(r), true);
      } finally {
        // A form whose page reloads after a save stays busy until it goes: a second click of a double click can come after
        // a fast answer, and would send it again.
        if (!reloading) {
          delete form.dataset.busy;
          form.removeAttribute('aria-busy');
          for (const b of buttons) b.disabled = false;
        }
      }
    } else if (form.dataset.preview) {
      ev.preventDefault();
      clearErrors(form);
      const product = form.elements.namedItem('product').value.trim();
      const count = form.elements.namedItem('count');
      const r = await api('GET', `${form.dataset.preview}?product=${encodeURIComponent(product)}${count ? `&count=${encodeURIComponent(count.value)}` : ''}`);
      const out = $('#preview-result');
      out.replaceChildren();
      if (!r.ok) return fieldError(form, 'product', problem(r));
      const p = r.json;
      const head = document.createElement('p');
      head.textContent = `On “${p.productTitle}”, the block shows` +
        (p.modelVersion ? ` (model version ${p.modelVersion}, path ${p.path}):` : ` (path ${p.path}):`);
      const list = document.createElement('ol');
      list.className = 'preview-list';
      for (const item of p.items) {
        const li = document.createElement('li');
        li.textContent = `${item.title}${item.priceText ? ` — ${item.priceText}` : ''}: ${item.why}`;
        list.append(li);
      }
      // Why by path: nothing shown is not always the rules' doing (until 6 Dec 2026 every empty answer blamed them).
      const nothing = p.path === 'switched_off' ? 'Nothing: upsells are switched off.'
        : p.path === 'bestsellers' ? 'Nothing: no bestseller to show (the store has none yet, or the rules hold them all back).'
        : 'Nothing: every candidate is held back by the rules.';
      out.append(head, p.items.length ? list : Object.assign(document.createElement('p'), { textContent: nothing }));
    }
  });

  document.addEventListener('click', async (ev) => {
    const el = ev.target.closest('[data-action],[data-whatif],[data-download]');
    if (!el) return;
    if (el.dataset.action) {
      if (el.dataset.confirm && !confirm(el.dataset.confirm)) return;
      const [method, url] = el.dataset.action.split(' ');
      el.disabled = true;
      const r = await api(method, url);
      if (!(r.ok && el.hasAttribute('data-reload'))) el.disabled = false; // one whose page reloads stays disabled until it goes
      if (r.ok) { say(el.dataset.done || (r.json && r.json.reason) || 'Done.'); if (el.hasAttribute('data-reload')) reload(); }
      else say(problem(r), true);
    } else if (el.dataset.whatif) {
      const form = el.form;
      clearErrors(form);
      const { body, errors } = read(form);
      if (Object.keys(errors).length) return showErrors(form, errors);
      const r = await api('POST', el.dataset.whatif, body);
      if (!r.ok) return r.json && r.json.errors ? showErrors(form, r.json.errors) : say(problem(r), true);
      const w = r.json;
      const reasons = Object.entries(w.reasons).map(([why, n]) => `${n} ${why}`).join(', ');
      const out = $('#whatif-result');
      out.hidden = false;
      out.textContent = w.answers === 0
        ? `Nothing was served on ${w.day}, so there is nothing to compare.`
        : `On ${w.day}, ${w.answers} answers showed ${w.served} items. These rules would have removed ${w.removed}` +
          (w.removed ? ` (${reasons}).` : '.');
    } else if (el.dataset.download) {
      const t = await token();
      const res = await fetch(el.dataset.download, { headers: t ? { Authorization: 'Bearer ' + t } : {} });
      if (!res.ok) return say(`The download failed (${res.status}).`, true);
      const name = (/filename="?([^";]+)/.exec(res.headers.get('Content-Disposition') || '') || [])[1] || 'export.json';
      const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(await res.blob()), download: name });
      document.body.append(a);
      a.click();
      a.remove();
    }
  });
})();
