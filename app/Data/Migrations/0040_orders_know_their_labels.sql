-- Each order carries when its first label and its first fraud label became known, copied from risk_labels, so risk
-- scoring's label windows (the fraud share of a browser address's or an email's earlier orders) read them with the orders
-- they already read instead of looking up every order of the window among the labels: those lookups were half of the
-- features statement's time. The columns say no more than the label rows do: an order is labelled as of t when a label
-- of it known by t exists, and confirmed fraud as of t when a fraud label known by t exists (a label's later change, such
-- as a dispute won, is read as it now stands, as before).
ALTER TABLE orders ADD COLUMN label_known_at timestamptz, ADD COLUMN fraud_known_at timestamptz;

-- Labels of orders not stored yet (a dispute delivered before its order was imported). Once the orders are stored, the
-- feature builder writes their labels again, so the trigger below copies them, before it reads any window
-- (OrderFeatures.LabelsWaiting). Why not a trigger on orders instead: it ran for every order written, 13 to 26
-- microseconds more for each order's upsert.
CREATE TABLE risk_labels_waiting (
    shop_id  bigint NOT NULL REFERENCES shops(id) ON DELETE CASCADE,
    order_id bigint NOT NULL,
    PRIMARY KEY (shop_id, order_id)
);

-- A label written, changed or removed: its order's two times again from the order's labels as they now stand.
CREATE FUNCTION orders_label_times_from_labels() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r risk_labels;
    known timestamptz;
    fraud timestamptz;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    SELECT min(l.labelled_at), min(l.labelled_at) FILTER (WHERE l.fraud) INTO known, fraud
    FROM risk_labels l WHERE l.shop_id = r.shop_id AND l.order_id = r.order_id;
    UPDATE orders o SET label_known_at = known, fraud_known_at = fraud WHERE o.shop_id = r.shop_id AND o.id = r.order_id;
    -- Why not on a removal: a label removed adds nothing to wait for (and a shop's removal takes its labels with it).
    IF NOT FOUND AND TG_OP <> 'DELETE' THEN
        INSERT INTO risk_labels_waiting (shop_id, order_id) VALUES (r.shop_id, r.order_id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER risk_labels_to_orders AFTER INSERT OR UPDATE OR DELETE ON risk_labels
    FOR EACH ROW EXECUTE FUNCTION orders_label_times_from_labels();

-- The labels already stored, written again as they are: the trigger gives their orders their times, or notes them as waiting.
UPDATE risk_labels SET labelled_at = labelled_at;
