-- A kind's decisions are found by kind: the merchant's search by a kind alone (DecisionSearch), the staged releases' count
-- of a version's shadow and canary decisions every 5 minutes, the flag-rate and click-through guardrails, the daily
-- monitoring and the intent trainer. Without it each read the store's whole log, or its window, mostly upsell answers:
-- in a log of 1,000,000 decisions (96 % upsells), the churn decisions' first page took 79–93 ms and a risk canary's count
-- over 7 days 243–253 ms; 3 ms and 24–27 ms with it. Writing the log costs about 2.5 µs a decision more (COPY of 200,000
-- decisions in time order, 1.6–2.4 s without it against 2.1–2.9 s with it).
CREATE INDEX decisions_kind_idx ON decisions (shop_id, kind, decided_at);
