-- Staged releases: a new version that passes the held-out gate first answers in shadow (logged beside the active
-- version's answers in decisions.shadow, never shown), then for a canary share of visitors, then becomes active. At
-- most one version per shop and kind is in release at a time.
ALTER TABLE models DROP CONSTRAINT models_status_check;
ALTER TABLE models ADD CONSTRAINT models_status_check CHECK (status IN ('candidate', 'shadow', 'canary', 'active', 'retired'));
CREATE UNIQUE INDEX models_one_release_idx ON models (shop_id, kind) WHERE status IN ('shadow', 'canary');
ALTER TABLE models ADD COLUMN stage_started_at timestamptz;   -- when it entered shadow, or canary
ALTER TABLE models ADD COLUMN release_summary jsonb;          -- what the shadow comparison found when it moved on

-- A shop's choices per model kind; without a row the defaults of the Governance options apply.
CREATE TABLE release_settings (
    shop_id          bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    model_kind       text NOT NULL,
    staged           boolean NOT NULL,
    shadow_decisions integer NOT NULL CHECK (shadow_decisions > 0),
    canary_share     double precision NOT NULL CHECK (canary_share > 0 AND canary_share <= 0.5),
    canary_decisions integer NOT NULL CHECK (canary_decisions > 0),
    updated_at       timestamptz NOT NULL,
    updated_by       text,
    PRIMARY KEY (shop_id, model_kind)
);
