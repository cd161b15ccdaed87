-- An order's experiment outcomes look up its shopper's exposures by unit (the visitor's, and the customer's through
-- experiment_exposures_customer_idx), across every experiment. Keyed (shop_id, experiment, unit), the visitor's lookup
-- could use only the shop: each segment of orders read all of the store's exposures (400,000 rows and 0.29 s for nine
-- orders, in a store with 200,000 visitors in two experiments), and with every visitor the next order cost more. Keyed by
-- (shop_id, unit, experiment), the same uniqueness finds a unit's exposures directly; what read by experiment uses
-- experiment_exposures_time_idx.
ALTER TABLE experiment_exposures DROP CONSTRAINT experiment_exposures_pkey, ADD PRIMARY KEY (shop_id, unit, experiment);
