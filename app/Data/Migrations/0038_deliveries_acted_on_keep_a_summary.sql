-- A delivery the app acts on no longer keeps its raw body: its rows hold what the app keeps of it, and the deliveries' log
-- keeps a summary (size, digest, the resource's id). Deliveries stored before keep their resource's id; their size and
-- digest were of the bytes as received, which jsonb did not keep.
UPDATE webhook_deliveries
SET body = jsonb_build_object('withheld', CASE WHEN outcome = 'normalized' THEN 'acted on: its rows hold what the app keeps'
                                               ELSE 'the shop is not installed' END, 'id', coalesce(body -> 'id', body -> 'token'))
WHERE outcome IN ('normalized', 'shop_not_installed') AND NOT body ? 'withheld' AND NOT body ? 'redacted_at';
