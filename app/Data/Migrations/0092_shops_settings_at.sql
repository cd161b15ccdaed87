-- Until when the shop's settings (time zone, currency, whether prices include tax) are known: the time of the install's read
-- of them, or the updated_at of the latest shop/update delivery applied. An older delivery arriving late is not applied.
-- Null for a shop whose settings were never read since this column came (installed before), which the install sweep reads
-- once: those shops had no tax setting (migration 0090) and no way to learn a setting changed since their install.
ALTER TABLE shops ADD COLUMN settings_at timestamptz;
