-- Why a hold of ours is going or gone: a reviewer approved the order ('approved'), or a later score took it down to LOW
-- ('low_score'), out of the queue. Until 5 Dec 2026 the review page called every release "approved". Earlier releases
-- are read from the decisions: approved if a reviewer approved the order, otherwise its score fell.
ALTER TABLE risk_holds ADD COLUMN release_reason text CHECK (release_reason IN ('approved', 'low_score'));
UPDATE risk_holds h SET release_reason = CASE WHEN EXISTS (
        SELECT 1 FROM review_decisions d WHERE d.shop_id = h.shop_id AND d.order_id = h.order_id AND d.decision = 'approve')
    THEN 'approved' ELSE 'low_score' END
WHERE h.state IN ('to_release', 'released');
