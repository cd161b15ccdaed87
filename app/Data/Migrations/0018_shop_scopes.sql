-- When the stored grant (shops.scopes) was last known current: set by every token grant and by app/scopes_update, whose
-- older deliveries must not overwrite a newer grant.
ALTER TABLE shops ADD COLUMN scopes_updated_at timestamptz;
