-- A canary's attributed revenue per answer is read by the decisions' request ids every release run.
CREATE INDEX recommendation_attributions_request_idx ON recommendation_attributions (shop_id, request_id) WHERE request_id IS NOT NULL;
