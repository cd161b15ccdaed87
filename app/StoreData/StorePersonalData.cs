using PluginApp.Compliance;

namespace PluginApp.StoreData;

/// <summary>The personal fields of the store rows every writer of store data fills (webhooks and the backfill).</summary>
public static class StorePersonalData
{
    /// <summary>A customer row's personal fields, emptied: by her erasure, and when Shopify deletes her (StoreWriter.AddCustomerDeletion).</summary>
    internal const string CustomerEmptied =
        "email = NULL, first_name = NULL, last_name = NULL, phone = NULL, tags = '', accepts_marketing = NULL, marketing_consent_at = NULL";

    public static IServiceCollection AddStore(this IServiceCollection services)
    {
        services.AddPersonalData(new PersonalDataTable("customers", ["email", "first_name", "last_name", "phone", "tags", "accepts_marketing", "marketing_consent_at"],
            // A tombstone row when we never saw the customer: a late delivery must not bring the data back.
            $"""
            INSERT INTO customers (shop_id, id, redacted_at) VALUES ($1, $2, $5)
            ON CONFLICT (shop_id, id) DO UPDATE SET {CustomerEmptied}, redacted_at = $5
            """,
            Export: "SELECT to_jsonb(c) - 'shop_id' FROM customers c WHERE c.shop_id = $1 AND c.id = $2", ExportAs: "customer"));
        services.AddPersonalData(new PersonalDataTable("orders", ["email", "browser_ip", "card_bin", "card_last4", "visitor_hash"],
            // redacted_at keeps them empty when Shopify sends the order again (StoreWriter.OrderUpsert, StoreMerge); a listed
            // order we do not hold yet is remembered by its id (erased_orders), so that it arrives empty too. Every order of
            // hers is remembered with her customer id: one that arrives again with a cart token we did not know queues a pass
            // of her erasure over that cart (SegmentRows.ErasedTokensFor), and a guest's order names no customer.
            """
            WITH remembered AS (
                INSERT INTO erased_orders (shop_id, order_id, erased_at, customer_id)
                SELECT $1, x.id, $5, $2 FROM (SELECT unnest($3::bigint[]) UNION SELECT id FROM redaction_orders) x(id)
                ON CONFLICT (shop_id, order_id) DO UPDATE SET customer_id = coalesce(erased_orders.customer_id, excluded.customer_id))
            UPDATE orders SET email = NULL, browser_ip = NULL, card_bin = NULL, card_last4 = NULL, visitor_hash = NULL, redacted_at = $5
            WHERE shop_id = $1 AND id IN (SELECT id FROM redaction_orders)
            """,
            // The order as the store sent it: its label times are risk scoring's copy of our fraud labels, which are not exported.
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(o) - 'shop_id' - 'label_known_at' - 'fraud_known_at' || jsonb_build_object(
                   'lines', (SELECT coalesce(jsonb_agg(to_jsonb(l) - 'shop_id'), '[]') FROM order_lines l WHERE l.shop_id = o.shop_id AND l.order_id = o.id),
                   'refunds', (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'shop_id' || jsonb_build_object('lines',
                       (SELECT coalesce(jsonb_agg(to_jsonb(rl) - 'shop_id'), '[]') FROM refund_lines rl WHERE rl.shop_id = r.shop_id AND rl.refund_id = r.id))), '[]')
                     FROM refunds r WHERE r.shop_id = o.shop_id AND r.order_id = o.id))), '[]')
                FROM orders o WHERE o.shop_id = $1 AND o.id IN (SELECT id FROM redaction_orders)
                """));
        // The card an order's transaction brought (order_cards): erased with her orders, and with those the erasure listed
        // before we held them (the transaction may come first). Her held orders' copy is in orders.
        services.AddPersonalData(new PersonalDataTable("order_cards", ["card_bin", "card_last4"],
            "DELETE FROM order_cards WHERE shop_id = $1 AND (order_id IN (SELECT id FROM redaction_orders) OR order_id = ANY($3))",
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(c) - 'shop_id' ORDER BY c.order_id), '[]') FROM order_cards c
                WHERE c.shop_id = $1 AND (c.order_id IN (SELECT id FROM redaction_orders) OR c.order_id = ANY($3))
                """, ExportAs: "order_payment_cards"));
        // Kept only until its order takes it, or in case the order comes late: a week, as the order keeps its own copy.
        services.AddRetention(new RetentionRule("cards of orders' transactions", TimeSpan.FromDays(7), "DELETE FROM order_cards WHERE received_at < $1"));
        // Her orders' refunds are in the export within each order; a refund of a listed order we do not hold (older than the
        // import reached: Shopify sends refunds/create for any order) is on its own. Until 6 Dec 2026 such a refund kept its
        // note through her erasure and was left out of her export.
        services.AddPersonalData(new PersonalDataTable("refunds", ["note"],
            "UPDATE refunds SET note = NULL WHERE shop_id = $1 AND note IS NOT NULL AND (order_id IN (SELECT id FROM redaction_orders) OR order_id = ANY($3))",
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(r) - 'shop_id' ORDER BY r.id), '[]') FROM refunds r
                WHERE r.shop_id = $1 AND r.order_id = ANY($3) AND r.order_id NOT IN (SELECT id FROM redaction_orders)
                """, ExportAs: "refunds_of_orders_not_held"));
        // Guest checkouts carry only an email (PersonalDataSql.GuestByEmail); a checkout also belongs to the customer through
        // the order it became.
        // The checkout of one of her orders held, when the checkout is not held yet, is held as erased (no email, no customer):
        // Shopify's late delivery of it (webhooks come in no set order, and are retried for hours) is then stored without her
        // email (until 7 Dec 2026 a guest's was kept, as only a row held at the erasure was marked). Only tokens Shopify gave
        // (her orders'), never one a storefront request named.
        services.AddPersonalData(new PersonalDataTable("checkouts", ["email"],
            $"""
            WITH erased AS (
              UPDATE checkouts SET email = NULL, redacted_at = $5 WHERE shop_id = $1 AND (customer_id = $2
                OR {PersonalDataSql.GuestByEmail()}
                OR token IN (SELECT checkout_token FROM redaction_orders WHERE checkout_token IS NOT NULL))
              RETURNING token)
            INSERT INTO checkouts (shop_id, token, redacted_at)
            SELECT DISTINCT $1::int8, checkout_token, $5::timestamptz FROM redaction_orders
            WHERE checkout_token IS NOT NULL AND checkout_token NOT IN (SELECT token FROM erased)
            ON CONFLICT (shop_id, token) DO NOTHING
            """,
            Export: $"""
                SELECT coalesce(jsonb_agg(to_jsonb(k) - 'shop_id' || jsonb_build_object('lines',
                  (SELECT coalesce(jsonb_agg(to_jsonb(l) - 'shop_id'), '[]') FROM checkout_lines l WHERE l.shop_id = k.shop_id AND l.checkout_token = k.token))), '[]')
                FROM checkouts k WHERE k.shop_id = $1 AND (k.customer_id = $2
                  OR {PersonalDataSql.GuestByEmail("k.")}
                  OR k.token IN (SELECT checkout_token FROM redaction_orders WHERE checkout_token IS NOT NULL))
                """));
        // A checkout ties its cart to her: by her customer id, her email (a guest's), or the order it became.
        services.AddCartLink(new CartLink("checkouts", $"""
            SELECT cart_token FROM checkouts WHERE shop_id = $1 AND (customer_id = $2
              OR {PersonalDataSql.GuestByEmail()}
              OR token IN (SELECT checkout_token FROM redaction_orders WHERE checkout_token IS NOT NULL))
            """));
        // A cart has no customer; it is hers when a feature ties it to her (redaction_carts, found before anything is
        // erased: her orders', her checkouts', those she was logged in on as our cart block answered, those the decision log
        // holds for her or her visitor id). Until 5 Dec 2026 a cart she was logged in on since last night kept its note.
        // redacted_at keeps the note empty when Shopify sends the cart again (StoreWriter.CartUpsert); until 5 Dec 2026 a
        // later carts/update wrote it back, and a cart found only through her login or a guest checkout kept it.
        // Likewise the cart of one of her orders or checkouts held, when the cart is not (until 7 Dec 2026 its late carts/update
        // kept its note). Why only those, Shopify's tokens: a cart found through the storefront (a decision, a login) has a
        // token the request named, and a row for a token another shop holds would have its deliveries refused as replayed.
        services.AddPersonalData(new PersonalDataTable("carts", ["note"],
            """
            WITH erased AS (UPDATE carts SET note = NULL, redacted_at = $5 WHERE shop_id = $1 AND token IN (SELECT cart_token FROM redaction_carts) RETURNING token)
            INSERT INTO carts (shop_id, token, redacted_at)
            SELECT DISTINCT $1::int8, t.cart_token, $5::timestamptz
            FROM (SELECT cart_token FROM redaction_orders
                  UNION ALL SELECT k.cart_token FROM checkouts k WHERE k.shop_id = $1 AND k.cart_token IN (SELECT cart_token FROM redaction_carts)) t
            WHERE t.cart_token IS NOT NULL AND t.cart_token NOT IN (SELECT token FROM erased)
            ON CONFLICT (shop_id, token) DO NOTHING
            """,
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(c) - 'shop_id' || jsonb_build_object('lines',
                  (SELECT coalesce(jsonb_agg(to_jsonb(l) - 'shop_id'), '[]') FROM cart_lines l WHERE l.shop_id = c.shop_id AND l.cart_token = c.token))), '[]')
                FROM carts c WHERE c.shop_id = $1 AND c.token IN (SELECT cart_token FROM redaction_carts)
                """));
        services.AddPersonalData(new PersonalDataTable("customer_data_requests", ["customer_id", "export"],
            "DELETE FROM customer_data_requests WHERE shop_id = $1 AND customer_id = $2", NotExported: "the exports themselves"));
        // Why a limit: each export is a whole copy of what is held on her (email, name, phone, addresses, card digits, notes),
        // kept for the merchant to send on, which Shopify asks within 30 days; until 8 Dec 2026 it was kept as long as the
        // app was installed, unless she asked to be erased.
        services.AddRetention(new RetentionRule("customers' data-request exports", TimeSpan.FromDays(90),
            "DELETE FROM customer_data_requests WHERE requested_at < $1"));

        services.AddNotPersonal("orders", "customer_id", "Shopify's opaque customer id; after redaction the customer row it points to holds no personal field");
        // Declared, with the page saying so: until 8 Dec 2026 they were neither, and the Erasures card said her addresses were gone.
        services.AddNotPersonal("orders", "billing_country", "a country, kept on an erased customer's anonymous orders for the store's risk record and totals");
        services.AddNotPersonal("orders", "shipping_country", "a country, kept on an erased customer's anonymous orders for the store's risk record and totals");
        services.AddNotPersonal("orders", "name", "the order's number, e.g. #1001");
        services.AddNotPersonal("erased_orders", "customer_id",
            "the opaque id of the erased customer whose erasure covered the order (her customer row holds no personal field): the erasure a late cart of the order queues is hers");
        services.AddNotPersonal("checkouts", "customer_id", "Shopify's opaque customer id (as orders.customer_id)");
        services.AddNotPersonal("products", "title", "a catalog title");
        services.AddNotPersonal("variants", "title", "a catalog title");
        services.AddNotPersonal("order_lines", "title", "the product's title at the time of the order");
        services.AddNotPersonal("shops", "domain", "the merchant's shop, erased by shop/redact");
        services.AddNotPersonal("data_protection_keys", "friendly_name", "a key id");
        return services;
    }
}
