-- When the newest session token the merchant's admin sent us was issued (a minute's precision). Shopify gives session
-- tokens only to an installed app, so one issued after an app/uninstalled was triggered says the merchant installed the
-- app again since: that uninstall, delivered late (Shopify retries for hours), no longer disconnects the shop, and the
-- shop/redact 48 hours after it does not erase it. Until 7 Dec 2026 a merchant who reinstalled while our webhook
-- endpoint was failing could be disconnected, and erased, by the uninstall she had already undone.
ALTER TABLE shops ADD COLUMN session_seen_at timestamptz;
