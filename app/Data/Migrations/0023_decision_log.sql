-- One decision log for every decision kind the app makes (upsell answers, cart offers, order risk scores, churn
-- segment changes), partitioned by month so the retention job drops whole months instead of deleting row by row.
-- Partitions are created by decisions_partition_for() before a month's first write (the writers call it).
CREATE TABLE decisions (
    shop_id        bigint NOT NULL,
    decided_at     timestamptz NOT NULL,
    decision_id    text NOT NULL,            -- the request id (upsells), decision id (offers), 'risk:{order}:{n}', 'churn:{customer}:{n}'
    kind           text NOT NULL,            -- upsell | offer | risk | churn
    subject        text,                     -- upsell: placement; offer: action; risk: level; churn: segment
    path           text NOT NULL,            -- what answered: model, co_occurrence, bestsellers, rule_prior, switched_off, ...
    fallback       boolean NOT NULL,         -- true when something other than the active model answered
    model_kind     text,
    model_version  integer,
    arm            text,
    order_id       bigint,
    customer_id    bigint,
    visitor_hash   text,
    cart_token     text,
    input_ids      bigint[] NOT NULL DEFAULT '{}',   -- products the decision looked at
    output_ids     bigint[] NOT NULL DEFAULT '{}',   -- products it answered with
    inputs         jsonb,                    -- derived inputs; personal ones hashed or absent
    output         jsonb,
    reasons        text[] NOT NULL DEFAULT '{}',
    latency_ms     real,
    shadow         jsonb                     -- a candidate model's answer to the same request, logged and never shown
) PARTITION BY RANGE (decided_at);
CREATE INDEX decisions_id_idx ON decisions (shop_id, decision_id);
CREATE INDEX decisions_time_idx ON decisions (shop_id, decided_at);
CREATE INDEX decisions_order_idx ON decisions (shop_id, order_id) WHERE order_id IS NOT NULL;
CREATE INDEX decisions_customer_idx ON decisions (shop_id, customer_id, decided_at) WHERE customer_id IS NOT NULL;
CREATE INDEX decisions_visitor_idx ON decisions (shop_id, visitor_hash, decided_at) WHERE visitor_hash IS NOT NULL;

-- The month's partition of the log, created once (concurrent writers wait for one another).
CREATE FUNCTION decisions_partition_for(at timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', at AT TIME ZONE 'UTC')::date;
    part text := 'decisions_' || to_char(month, 'YYYY_MM');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN RETURN; END IF;
    PERFORM pg_advisory_xact_lock(hashtext('decisions_partitions'));
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF decisions FOR VALUES FROM (%L) TO (%L)', part,
        month::timestamp AT TIME ZONE 'UTC', (month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
END $$;

-- Retention: months wholly before the cutoff are dropped; the rest of the month the cutoff falls in is deleted.
CREATE FUNCTION decisions_drop_before(cutoff timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    part record;
    deleted bigint;
BEGIN
    FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'decisions'::regclass AND c.relname ~ '^decisions_[0-9]{4}_[0-9]{2}$'
    LOOP
        IF (to_date(substr(part.relname, 11), 'YYYY_MM') + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
        END IF;
    END LOOP;
    DELETE FROM decisions WHERE decided_at < cutoff;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END $$;

SELECT decisions_partition_for(m) FROM (
    SELECT DISTINCT date_trunc('month', decided_at) AS m FROM recommendation_decisions
    UNION SELECT DISTINCT date_trunc('month', decided_at) FROM cart_offer_decisions
    UNION SELECT now()) x;

INSERT INTO decisions (shop_id, decided_at, decision_id, kind, subject, path, fallback, model_kind, model_version, arm, customer_id, visitor_hash,
                       input_ids, output_ids, latency_ms)
SELECT shop_id, decided_at, request_id, 'upsell', placement, path, path NOT IN ('model', 'co_occurrence'), 'recommender', model_version,
       experiment_arm, customer_id, visitor_hash, input_products, output_products, latency_ms
FROM recommendation_decisions;

INSERT INTO decisions (shop_id, decided_at, decision_id, kind, subject, path, fallback, model_kind, model_version, arm, customer_id, visitor_hash,
                       cart_token, inputs, output, reasons, latency_ms)
SELECT shop_id, decided_at, decision_id, 'offer', action, CASE WHEN intent_version IS NULL THEN 'store_rate' ELSE 'model' END, intent_version IS NULL,
       'intent', intent_version, arm, customer_id, visitor_hash, cart_token, inputs,
       jsonb_build_object('action', action, 'explore', explore, 'intent', intent, 'expected', expected, 'code', code),
       ARRAY(SELECT jsonb_array_elements_text(reasons)), latency_ms
FROM cart_offer_decisions;

DROP TABLE recommendation_decisions;
DROP TABLE cart_offer_decisions;

-- The features' read models over the one log (same names and columns their queries used before).
CREATE VIEW recommendation_decisions AS
SELECT decision_id AS request_id, shop_id, subject AS placement, path, model_version, arm AS experiment_arm, visitor_hash, customer_id,
       input_ids AS input_products, output_ids AS output_products, latency_ms, decided_at
FROM decisions WHERE kind = 'upsell';

CREATE VIEW cart_offer_decisions AS
SELECT shop_id, decision_id, cart_token, visitor_hash, customer_id, arm, subject AS action, (output->>'explore')::boolean AS explore,
       (output->>'intent')::float8 AS intent, model_version AS intent_version, inputs, output->'expected' AS expected, to_jsonb(reasons) AS reasons,
       output->>'code' AS code, latency_ms, decided_at
FROM decisions WHERE kind = 'offer';

-- Switches for every AI feature: what a feature does when off is the feature's to say (validated by the app).
ALTER TABLE ai_feature_switches DROP CONSTRAINT IF EXISTS ai_feature_switches_when_off_check;
ALTER TABLE ai_feature_switch_history DROP CONSTRAINT IF EXISTS ai_feature_switch_history_when_off_check;
ALTER TABLE ai_feature_switch_history ADD COLUMN reason text;

-- What happened to the shop's AI, with who, when and why: a circuit breaker cutting a model off and letting it back, a
-- canary rolled back, an alert raised (switch changes keep their own history).
CREATE TABLE governance_events (
    id          bigserial PRIMARY KEY,
    shop_id     bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    model_kind  text NOT NULL,
    event       text NOT NULL,     -- cut_off | restored | canary_started | canary_rolled_back | promoted | shadow_started
    detail      text NOT NULL,
    by_whom     text NOT NULL,     -- 'the circuit breaker', 'the release guardrail', or a staff user
    at          timestamptz NOT NULL
);
CREATE INDEX governance_events_shop_idx ON governance_events (shop_id, at DESC);

-- Monitoring: each day, per shop, decision kind and numeric field of the logged decisions, how far its distribution
-- moved (population stability index) from the model's training window (or, without enough decisions there, the four
-- weeks before the last one).
CREATE TABLE model_drift (
    shop_id        bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    decision_kind  text NOT NULL,
    field          text NOT NULL,
    role           text NOT NULL,      -- input | prediction
    model_kind     text NOT NULL,
    model_version  int,
    psi            double precision NOT NULL,
    reference_n    int NOT NULL,
    current_n      int NOT NULL,
    reference_mean double precision,
    current_mean   double precision,
    reference      text NOT NULL,      -- which window the current week was compared with, in words
    computed_at    timestamptz NOT NULL,
    PRIMARY KEY (shop_id, decision_kind, field, computed_at)
);

-- Alerts as the merchant judges them: what moved, by how much, since when, with which model version; open until cleared.
CREATE TABLE governance_alerts (
    id            bigserial PRIMARY KEY,
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    model_kind    text NOT NULL,
    metric        text NOT NULL,
    detail        text NOT NULL,
    model_version int,
    since         timestamptz NOT NULL,
    raised_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    cleared_at    timestamptz
);
CREATE UNIQUE INDEX governance_alerts_open_idx ON governance_alerts (shop_id, model_kind, metric) WHERE cleared_at IS NULL;

-- Monitoring: how each active model does on outcomes that arrived after it was trained (risk: average precision on
-- fresh chargebacks and reviews; churn: realized churn of the predictions made a horizon ago; recommender: the share
-- of new orders' products it had shown the buyer), beside its held-out figure.
CREATE TABLE model_performance (
    shop_id       bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    model_kind    text NOT NULL,
    metric        text NOT NULL,
    model_version int,
    value         double precision NOT NULL,
    held_out      double precision,
    n             int NOT NULL,
    detail        text NOT NULL,
    computed_at   timestamptz NOT NULL,
    PRIMARY KEY (shop_id, model_kind, metric, computed_at)
);
