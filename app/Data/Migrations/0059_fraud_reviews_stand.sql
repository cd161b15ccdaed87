-- An order a reviewer marked as fraud stays decided whatever it scores later (ReviewStore): orders marked before this
-- change at MEDIUM get the same, so a later HIGH score does not bring them back to the queue and take their fraud tag.
UPDATE risk_scores s SET reviewed_level = 'HIGH'
FROM risk_labels l
WHERE l.shop_id = s.shop_id AND l.order_id = s.order_id AND l.source = 'review' AND l.fraud AND s.reviewed_at IS NOT NULL
  AND s.reviewed_level IS DISTINCT FROM 'HIGH';
