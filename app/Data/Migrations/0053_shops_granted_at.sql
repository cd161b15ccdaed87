-- When the shop's latest token grant (install, reinstall, token exchange) was saved. An app/uninstalled delivery triggered
-- before it is a late retry of an earlier uninstall and must not undo the newer grant (WebhookIngestor.AddUninstall).
ALTER TABLE shops ADD COLUMN granted_at timestamptz;
UPDATE shops SET granted_at = installed_at WHERE installed_at IS NOT NULL AND uninstalled_at IS NULL;
