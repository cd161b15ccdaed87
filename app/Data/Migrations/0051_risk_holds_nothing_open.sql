-- A HIGH order whose fulfillment orders had none the app could hold (all fulfilled or closed, or fulfilled by a service the
-- app's permission does not cover) was recorded as held, and the review queue said "Fulfillment held" while it shipped.
ALTER TABLE risk_holds DROP CONSTRAINT risk_holds_state_check;
ALTER TABLE risk_holds ADD CONSTRAINT risk_holds_state_check
    CHECK (state IN ('to_hold', 'held', 'not_held_valued', 'not_held_none_open', 'to_release', 'released'));
