using System.Net;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Webhooks;

/// <summary>Every subscribed topic lands in the right rows.</summary>
public sealed class TopicNormalizationTests(AppFixture app) : IClassFixture<AppFixture>, IAsyncLifetime
{
    private const string Shop = "topics-shop.myshopify.com";

    public async Task InitializeAsync() => await app.InstallShopAsync(Shop);
    public Task DisposeAsync() => Task.CompletedTask;

    private async Task Send(string topic, System.Text.Json.Nodes.JsonNode body)
    {
        var response = await app.SendWebhookAsync(topic, Shop, body.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("orders/create")]
    [InlineData("orders/updated")]
    [InlineData("orders/paid")]
    public async Task OrderTopics_StoreOrderLinesAndCustomer(string topic)
    {
        var id = 2000 + Math.Abs(topic.GetHashCode() % 500);
        await Send(topic, ShopifyPayloads.Order(id, customerId: id + 1, lines: 2));

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1 AND customer_id = $2 AND total_price = 45.00 AND billing_country = 'US' AND shipping_country = 'CA' AND discount_codes = 'WELCOME10'", (long)id, (long)id + 1));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = $1 AND variant_id IN (19000, 19001)", (long)id));
        // The pinned version's customer carries no consent (removed in 2025-01): unknown until its own topic tells it.
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND email = 'ada@example.com' AND accepts_marketing IS NULL", (long)id + 1));
    }

    /// <summary>
    /// Email consent comes by customers_email_marketing_consent/update, and an order or customer webhook after it (which
    /// carries no consent since API version 2025-01) keeps it, as it keeps the tags the backfill read; a consent older
    /// than the stored one, delivered late, changes nothing. Until 6 Dec 2026 the topic was not subscribed and every order
    /// wrote the consent as unknown, so the abandonment signal (customers who accept marketing) tagged no one.
    /// </summary>
    [Fact]
    public async Task EmailConsent_ComesByItsOwnTopic_AndLaterCustomerPayloadsKeepIt()
    {
        const long customer = 2_950_001;
        await app.ScalarAsync("""
            INSERT INTO customers (shop_id, id, email, tags, accepts_marketing, updated_at)
            SELECT id, $1, 'ada@example.com', 'vip', false, '2026-06-01' FROM shops WHERE domain = $2
            """, customer, Shop);

        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer, "subscribed", "2026-07-02T09:00:00-04:00"));
        await Send("orders/create", ShopifyPayloads.Order(2_950_101, customerId: customer));
        await Send("customers/update", ShopifyPayloads.Customer(customer, updatedAt: "2026-07-03T09:00:00-04:00"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing AND tags = 'vip' AND updated_at > '2026-07-02'", customer));

        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer, "not_subscribed", "2026-07-01T09:00:00-04:00"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing", customer));
        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer, "unsubscribed", "2026-07-04T09:00:00-04:00"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing = false", customer));
        // One without a time does not outrank a dated one: a signed body sent again must not undo her withdrawal.
        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer, "subscribed", null));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing = false", customer));
        // But a withdrawal without a time stands over a dated consent: no marketing is the safe side.
        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer, "subscribed", "2026-07-05T09:00:00-04:00"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing", customer));
        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer, "unsubscribed", null));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing = false", customer));
        // It keeps the date of the consent it withdrew, and that consent, sent again, does not undo it (until 7 Dec 2026 it did).
        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer, "subscribed", "2026-07-05T09:00:00-04:00"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing = false", customer));
        // A customer not held yet: the consent waits in a row of its own for the customer's webhook.
        await Send("customers_email_marketing_consent/update", ShopifyPayloads.Consent(customer + 1, "subscribed", "2026-07-02T09:00:00-04:00"));
        await Send("customers/create", ShopifyPayloads.Customer(customer + 1));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND accepts_marketing AND email = 'ada@example.com'", customer + 1));
    }

    [Fact]
    public async Task OrdersCancelled_RecordsCancellation()
    {
        await Send("orders/create", ShopifyPayloads.Order(2601));
        await Send("orders/cancelled", ShopifyPayloads.Order(2601, updatedAt: "2026-07-04T12:00:00-04:00", financialStatus: "voided", cancelledAt: "2026-07-04T12:00:00-04:00"));

        Assert.Equal("customer", await app.ScalarAsync("SELECT cancel_reason FROM orders WHERE id = 2601 AND cancelled_at IS NOT NULL"));
    }

    [Fact]
    public async Task RefundsCreate_StoresRefundAndItsLines()
    {
        await Send("orders/create", ShopifyPayloads.Order(2602));
        await Send("refunds/create", ShopifyPayloads.Refund(5001, 2602, 260200));

        Assert.Equal(10.00m, await app.ScalarAsync("SELECT amount FROM refunds WHERE id = 5001 AND order_id = 2602"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE refund_id = 5001 AND line_item_id = 260200 AND quantity = 1"));
    }

    /// <summary>
    /// A refund of an order the customer paid in euros, in a dollar store: Shopify sends its transactions in euros, and the
    /// app counts it in dollars at the refund's own rate (its lines' shop and customer money), or, for a refund inside its
    /// order's payload with no lines, at the order's. Until 5 Dec 2026 9 euros were counted as 9 dollars, and attributed
    /// revenue, experiment outcomes and customer value were net of the wrong amount.
    /// </summary>
    [Fact]
    public async Task Refunds_InTheCustomersCurrency_AreCountedInTheShops()
    {
        static System.Text.Json.Nodes.JsonObject Set(string shop, string presented) => new()
        {
            ["shop_money"] = new System.Text.Json.Nodes.JsonObject { ["amount"] = shop, ["currency_code"] = "USD" },
            ["presentment_money"] = new System.Text.Json.Nodes.JsonObject { ["amount"] = presented, ["currency_code"] = "EUR" },
        };
        await Send("orders/create", ShopifyPayloads.Order(2603));
        var refund = ShopifyPayloads.Refund(5003, 2603, 260300);
        var line = refund["refund_line_items"]![0]!.AsObject();
        line["subtotal"] = "9.00";
        line["subtotal_set"] = Set("10.00", "9.00");
        line["total_tax_set"] = Set("0.00", "0.00");
        var paid = refund["transactions"]![0]!.AsObject();
        (paid["amount"], paid["currency"]) = ("9.00", "EUR");
        await Send("refunds/create", refund);

        Assert.Equal(10.00m, await app.ScalarAsync("SELECT amount FROM refunds WHERE id = 5003"));
        Assert.Equal(10.00m, await app.ScalarAsync("SELECT subtotal FROM refund_lines WHERE refund_id = 5003"));

        // An amount refunded with no lines, inside the order's payload: the order's own rate (45 dollars for 40.50 euros).
        var order = ShopifyPayloads.Order(2604, updatedAt: "2026-07-04T12:00:00-04:00");
        order["total_price_set"] = Set("45.00", "40.50");
        var bare = ShopifyPayloads.Refund(5004, 2604, 260400);
        bare["refund_line_items"] = new System.Text.Json.Nodes.JsonArray();
        var bareTx = bare["transactions"]![0]!.AsObject();
        (bareTx["amount"], bareTx["currency"]) = ("9.00", "EUR");
        order["refunds"] = new System.Text.Json.Nodes.JsonArray(bare);
        await Send("orders/updated", order);

        Assert.Equal(10.00m, await app.ScalarAsync("SELECT amount FROM refunds WHERE id = 5004"));

        // Shipping refunded alone: since API 2024-10 its money is in refund_shipping_lines, not order_adjustments.
        var shipping = ShopifyPayloads.Refund(5005, 2603, 260300);
        shipping["refund_line_items"] = new System.Text.Json.Nodes.JsonArray();
        shipping["refund_shipping_lines"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
        {
            ["id"] = 50051, ["shipping_line_id"] = 1, ["subtotal_amount_set"] = Set("5.00", "4.50"), ["tax_amount_set"] = Set("0.00", "0.00"),
        });
        var shippingTx = shipping["transactions"]![0]!.AsObject();
        (shippingTx["amount"], shippingTx["currency"]) = ("4.50", "EUR");
        await Send("refunds/create", shipping);

        Assert.Equal(5.00m, await app.ScalarAsync("SELECT amount FROM refunds WHERE id = 5005"));
    }

    /// <summary>
    /// An order's older version, delivered late (Shopify's retry), carries its refund as it then stood, its money still
    /// pending: the refund keeps the amount the newer version gave it. A refund's successful amount only grows; until 7 Dec
    /// 2026 the late payload wrote it back to nothing, and the order's revenue net of refunds counted it whole.
    /// </summary>
    [Fact]
    public async Task AnOrdersOlderVersionDeliveredLate_DoesNotTakeBackItsRefundsAmount()
    {
        System.Text.Json.Nodes.JsonObject Version(string updatedAt, string status)
        {
            var order = ShopifyPayloads.Order(2611, updatedAt: updatedAt);
            var refund = ShopifyPayloads.Refund(5011, 2611, 261100);
            refund["transactions"]![0]!["status"] = status;
            order["refunds"] = new System.Text.Json.Nodes.JsonArray(refund);
            return order;
        }
        await Send("orders/updated", Version("2026-07-04T12:00:00-04:00", "success"));
        var refunded = (decimal)(await app.ScalarAsync("SELECT amount FROM refunds WHERE id = 5011"))!;
        Assert.True(refunded > 0);

        await Send("orders/updated", Version("2026-07-03T12:00:00-04:00", "pending"));

        Assert.Equal(refunded, await app.ScalarAsync("SELECT amount FROM refunds WHERE id = 5011"));
    }

    [Fact]
    public async Task CartsCreateThenUpdate_ReplacesTheLines()
    {
        await Send("carts/create", ShopifyPayloads.Cart("c-1", "2026-07-02T10:00:00-04:00", (111, 1), (112, 2)));
        await Send("carts/update", ShopifyPayloads.Cart("c-1", "2026-07-02T10:02:00-04:00", (112, 3), (113, 1)));

        Assert.Equal(48.00m, await app.ScalarAsync("SELECT total_price FROM carts WHERE token = 'c-1'"));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM cart_lines WHERE cart_token = 'c-1'"));
        Assert.Equal(3L, Convert.ToInt64(await app.ScalarAsync("SELECT quantity FROM cart_lines WHERE cart_token = 'c-1' AND variant_id = 112")));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM cart_lines WHERE cart_token = 'c-1' AND variant_id = 111"));
    }

    [Fact]
    public async Task CheckoutsCreateAndUpdate_StoreCheckoutLinesAndCompletion()
    {
        await Send("checkouts/create", ShopifyPayloads.Checkout(3001, 7301));
        await Send("checkouts/update", ShopifyPayloads.Checkout(3001, 7301, completedAt: "2026-07-02T10:06:00-04:00").Also(c => c["updated_at"] = "2026-07-02T10:06:00-04:00"));

        // The pinned version's checkouts carry no id (removed in 2026-04): the token is the checkout's key.
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM checkouts WHERE token = 'ck3001' AND customer_id = 7301 AND completed_at IS NOT NULL AND total_price = 29.00"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM checkout_lines WHERE checkout_token = 'ck3001' AND quantity = 2"));
    }

    [Fact]
    public async Task ProductsCreateUpdateDelete_KeepTheCatalogCurrent()
    {
        await Send("products/create", ShopifyPayloads.Product(4001, variants: 3, inventory: 7));
        await app.ScalarAsync("UPDATE variants SET unit_cost = 4.50 WHERE id = 40010");
        await Send("products/update", ShopifyPayloads.Product(4001, variants: 2, updatedAt: "2026-07-02T08:00:00-04:00", inventory: 0));

        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM variants WHERE product_id = 4001"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM variants WHERE product_id = 4001 AND inventory_quantity <> 0"));
        Assert.Equal(4.50m, await app.ScalarAsync("SELECT unit_cost FROM variants WHERE id = 40010"));
        Assert.Equal("https://cdn.example.com/4001.jpg", await app.ScalarAsync("SELECT image_url FROM products WHERE id = 4001"));

        await Send("products/delete", new System.Text.Json.Nodes.JsonObject { ["id"] = 4001 });
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM products WHERE id = 4001 AND deleted_at IS NOT NULL"));
    }

    /// <summary>
    /// A product of 120 variants: its webhooks carry the first 100 whole and name all 120 in variant_gids. An update keeps
    /// the 20 the import brought, and one that no longer names a variant drops it. Until 6 Dec 2026 every update deleted
    /// the 20.
    /// </summary>
    [Fact]
    public async Task ProductsUpdate_OfAProductWithMoreVariantsThanItsWebhookCarries_KeepsTheOnesItOnlyNames()
    {
        const long product = 9_100_001;
        await Send("products/create", ShopifyPayloads.Product(product, variants: 120));
        Assert.Equal(100, await app.CountAsync("SELECT count(*) FROM variants WHERE product_id = $1", product));
        // The other 20, as the store's import reads them.
        await app.ScalarAsync("""
            INSERT INTO variants (shop_id, id, product_id, title, price, updated_at)
            SELECT shop_id, $1 * 10 + g, $1, 'Size ' || g, 12 + g, updated_at FROM products, generate_series(100, 119) g WHERE id = $1
            """, product);

        await Send("products/update", ShopifyPayloads.Product(product, variants: 120, updatedAt: "2026-07-02T08:00:00-04:00"));
        Assert.Equal(120, await app.CountAsync("SELECT count(*) FROM variants WHERE product_id = $1", product));

        await Send("products/update", ShopifyPayloads.Product(product, variants: 119, updatedAt: "2026-07-03T08:00:00-04:00"));
        Assert.Equal(119, await app.CountAsync("SELECT count(*) FROM variants WHERE product_id = $1", product));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM variants WHERE id = $1", product * 10 + 119));
    }

    /// <summary>
    /// A customer Shopify deleted (or merged into another): her profile is emptied, she leaves her churn segment, the calls
    /// queued on her are dropped, a late update of her does not bring her back, and the order she placed stays whole, even
    /// updated after her deletion while it still names her (a merged customer's orders belong to the customer kept). Until
    /// 6 Dec 2026 customers/delete was not subscribed, and she stayed scored and tagged.
    /// </summary>
    [Fact]
    public async Task CustomersDelete_EmptiesHerProfile_TakesHerOutOfHerSegment_AndKeepsTheOrders()
    {
        const long customer = 7_480_001;
        await Send("customers/create", ShopifyPayloads.Customer(customer, "deleted@example.com"));
        await Send("orders/create", ShopifyPayloads.Order(7_480_101, customerId: customer));
        await app.ScalarAsync("""
            INSERT INTO churn_scores (shop_id, customer_id, model_version, model_kind, churn_probability, probability_alive, expected_orders_30,
              expected_orders_90, expected_orders_365, orders, days_since_last, total_spend, yearly_spend, segment, reasons, scored_at)
            SELECT shop_id, id, 1, 'churn', 0.8, 0.2, 0, 0, 0.1, 1, 200, 45, 45, 'lapsing', '[]', now() FROM customers WHERE id = $1
            """, customer);
        await app.ScalarAsync("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at)
            SELECT shop_id, 'gid://shopify/Customer/' || id, 'tagsAdd', '{}', 'deleted-customer-tag', now(), now() + interval '1 day' FROM customers WHERE id = $1
            """, customer);

        await Send("customers/delete", StoreReplay.ShopifyShapes.CustomerDeletion(customer));
        await Send("customers/update", ShopifyPayloads.Customer(customer, "deleted@example.com", "2026-07-20T10:00:00-04:00"));
        await Send("orders/updated", ShopifyPayloads.Order(7_480_101, customerId: customer, updatedAt: "2026-07-21T10:00:00-04:00"));

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND email IS NULL AND first_name IS NULL AND deleted_at IS NOT NULL", customer));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM churn_scores WHERE customer_id = $1", customer));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE idempotency_key = 'deleted-customer-tag'"));
        Assert.Equal(1, await app.CountAsync(
            "SELECT count(*) FROM orders WHERE id = 7480101 AND customer_id = $1 AND total_price = 45.00 AND email IS NOT NULL AND browser_ip IS NOT NULL AND redacted_at IS NULL", customer));
    }

    /// <summary>A customers/delete body must name the customer by its global id too, and a customer's own body sent again
    /// as her deletion is refused: either would otherwise erase whoever has that number.</summary>
    [Fact]
    public async Task CustomersDelete_OfAnotherTopicsBody_IsRefused_AndDeletesNoOne()
    {
        const long customer = 7_480_002;
        await Send("customers/create", ShopifyPayloads.Customer(customer, "kept@example.com"));

        var bare = await app.SendWebhookAsync("customers/delete", Shop, new System.Text.Json.Nodes.JsonObject { ["id"] = customer }.ToJsonString());
        var update = await app.SendWebhookAsync("customers/delete", Shop, ShopifyPayloads.Customer(customer, "kept@example.com").ToJsonString());

        Assert.Equal(HttpStatusCode.BadRequest, bare.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, update.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = $1 AND email = 'kept@example.com' AND deleted_at IS NULL", customer));
    }

    /// <summary>
    /// An order Shopify deleted (a test order, or one cancelled or archived, then deleted) leaves the store with its lines and
    /// refunds, and is no experiment's outcome and no upsell's revenue; the customer's other order stays whole. Its update,
    /// refund and transaction delivered after the deletion (Shopify sends webhooks in no set order) are answered 200 and
    /// write nothing. Until 7 Dec 2026 orders/delete was not subscribed, and a deleted order stayed in the store's figures,
    /// its training data and its review queue for good.
    /// </summary>
    [Fact]
    public async Task OrdersDelete_TakesTheOrderOutOfTheStore_AndLaterDeliveriesOfItWriteNothing()
    {
        const long order = 7_490_101, kept = 7_490_102, customer = 7_490_001;
        await Send("orders/create", ShopifyPayloads.Order(order, customerId: customer));
        await Send("orders/create", ShopifyPayloads.Order(kept, customerId: customer));
        await Send("refunds/create", ShopifyPayloads.Refund(7_490_201, order, order * 100));
        await app.ScalarAsync("""
            INSERT INTO experiment_outcomes (shop_id, experiment, order_id, arm, revenue, ordered_at)
            SELECT shop_id, 'cart-offers', id, 'treatment', total_price, created_at FROM orders WHERE id = ANY($1)
            """, new[] { order, kept });
        await app.ScalarAsync("""
            INSERT INTO recommendation_attributions (shop_id, line_id, order_id, product_id, event_type, revenue, attributed_at)
            SELECT shop_id, id, order_id, product_id, 'click', price, now() FROM order_lines WHERE order_id = ANY($1)
            """, new[] { order, kept });

        await Send("orders/delete", StoreReplay.ShopifyShapes.OrderDeletion(order));
        await Send("orders/updated", ShopifyPayloads.Order(order, customerId: customer, updatedAt: "2026-07-03T12:00:00-04:00"));
        await Send("refunds/create", ShopifyPayloads.Refund(7_490_202, order, order * 100 + 1));
        await Send("order_transactions/create", Risk.RiskOrders.Transaction(7_490_301, order, "sale", "success", "411111", "4242"));

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1", order));
        foreach (var table in new[] { "order_lines", "refunds", "refund_lines", "order_cards", "experiment_outcomes", "recommendation_attributions" })
            Assert.Equal(0, await app.CountAsync($"SELECT count(*) FROM {table} WHERE order_id = $1", order));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1 AND customer_id = $2 AND total_price = 45.00", kept, customer));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = $1", kept));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM experiment_outcomes WHERE order_id = $1", kept));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM recommendation_attributions WHERE order_id = $1", kept));
        Assert.Equal(3, await app.CountAsync("""
            SELECT count(*) FROM webhook_deliveries WHERE shop_domain = $1 AND outcome = 'order_deleted'
              AND topic IN ('orders/updated', 'refunds/create', 'order_transactions/create')
              AND body ->> 'withheld' = 'its order was deleted in Shopify: nothing of it is kept' AND NOT body ? 'email'
            """, Shop));
    }

    /// <summary>
    /// An orders/updated whose transaction was in flight when the order's orders/delete came (its statements began before
    /// the deletion committed, so neither saw the other) writes the order back, lines, outcome and credit. The recheck that
    /// runs every five minutes deletes it again, with what the features keep of it; the customer's other order stays.
    /// Until 7 Dec 2026 such an order stayed in the store for good.
    /// </summary>
    [Fact]
    public async Task AnOrderWrittenBackByAWriterInFlightAtItsDeletion_IsDeletedAgainByTheRecheck()
    {
        const long order = 7_491_101, kept = 7_491_102, customer = 7_491_001;
        await Send("orders/create", ShopifyPayloads.Order(kept, customerId: customer));
        var shopId = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", Shop))!;
        await using (var writer = await app.Db.OpenConnectionAsync())
        {
            await using var inFlight = await writer.BeginTransactionAsync();
            await using (var write = new Npgsql.NpgsqlCommand("""
                WITH o AS (INSERT INTO orders (shop_id, id, customer_id, total_price, currency, created_at, updated_at) VALUES ($1, $2, $3, 45, 'USD', now(), now())),
                l AS (INSERT INTO order_lines (shop_id, id, order_id, product_id, quantity, price) VALUES ($1, $2 * 10, $2, 1, 1, 45)),
                x AS (INSERT INTO experiment_outcomes (shop_id, experiment, order_id, arm, revenue, ordered_at) VALUES ($1, 'cart-offers', $2, 'treatment', 45, now()))
                INSERT INTO recommendation_attributions (shop_id, line_id, order_id, product_id, event_type, revenue, attributed_at) VALUES ($1, $2 * 10, $2, 1, 'click', 45, now())
                """, writer, inFlight))
            {
                write.Parameters.AddWithValue(shopId); write.Parameters.AddWithValue(order); write.Parameters.AddWithValue(customer);
                await write.ExecuteNonQueryAsync();
            }
            await Send("orders/delete", StoreReplay.ShopifyShapes.OrderDeletion(order));
            await inFlight.CommitAsync();
        }
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1", order)); // what the race left

        await ActivatorUtilities.CreateInstance<PluginApp.Webhooks.DeletedOrdersRecheck>(app.Factory.Services).RunAsync(CancellationToken.None);

        foreach (var table in new[] { "orders", "order_lines", "experiment_outcomes", "recommendation_attributions" })
            Assert.Equal(0, await app.CountAsync($"SELECT count(*) FROM {table} WHERE {(table == "orders" ? "id" : "order_id")} = $1", order));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1 AND customer_id = $2", kept, customer));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = $1", kept));
    }

    /// <summary>
    /// A chargeback's disputes/create for an order the store does not hold yet (its import has not reached it), whose
    /// transaction was in flight when the order's orders/delete came, writes its fraud label (and notes it as waiting for its
    /// order). The recheck deletes both: the chargeback of an order Shopify deleted would count in the chargeback rate the
    /// Governance page gives. Until 7 Dec 2026 the recheck looked only for the order's own rows, and the label stayed. (With
    /// the order held, the label's trigger locks the order's row, so the deletion waits for the dispute and removes it.)
    /// </summary>
    [Fact]
    public async Task ADisputesFraudLabelWrittenInFlightAtItsOrdersDeletion_IsDeletedByTheRecheck()
    {
        const long order = 7_492_101, kept = 7_492_102;
        await Send("orders/create", ShopifyPayloads.Order(kept, customerId: null));
        var shopId = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", Shop))!;
        const string label = """
            INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail) VALUES ($1, $2, 'dispute', true, now(), 'Shopify Payments chargeback 1: reason fraudulent, status needs_response')
            """;
        await app.ScalarAsync(label, shopId, kept);
        await WrittenInFlightAtItsDeletionAsync(label, shopId, order);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM risk_labels WHERE order_id = $1", order)); // what the race left

        await ActivatorUtilities.CreateInstance<PluginApp.Webhooks.DeletedOrdersRecheck>(app.Factory.Services).RunAsync(CancellationToken.None);

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM risk_labels WHERE order_id = $1", order));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM risk_labels_waiting WHERE order_id = $1", order));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM risk_labels WHERE order_id = $1 AND fraud", kept));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1", kept));
    }

    /// <summary>
    /// The import's refund lines are written after it asked Shopify for them, with no order row (their order may be deleted
    /// during the round trip): a refund line written in flight at its order's deletion is deleted by the recheck. Until 7 Dec
    /// 2026 it stayed, and recommendation training counted it as a return.
    /// </summary>
    [Fact]
    public async Task ARefundLineWrittenInFlightAtItsOrdersDeletion_IsDeletedByTheRecheck()
    {
        const long order = 7_493_101;
        await Send("orders/create", ShopifyPayloads.Order(order, customerId: null));
        var shopId = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", Shop))!;
        await WrittenInFlightAtItsDeletionAsync("""
            INSERT INTO refund_lines (shop_id, id, refund_id, order_id, line_item_id, quantity) VALUES ($1, $2 * 10, $2 * 10, $2, $2 * 10, 1)
            """, shopId, order);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE order_id = $1", order)); // what the race left

        await ActivatorUtilities.CreateInstance<PluginApp.Webhooks.DeletedOrdersRecheck>(app.Factory.Services).RunAsync(CancellationToken.None);

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE order_id = $1", order));
    }

    /// <summary>Runs <paramref name="sql"/> ($1 the shop, $2 the order) in a transaction that commits after the order's orders/delete was answered.</summary>
    private async Task WrittenInFlightAtItsDeletionAsync(string sql, long shopId, long order)
    {
        await using var writer = await app.Db.OpenConnectionAsync();
        await using var inFlight = await writer.BeginTransactionAsync();
        await using (var write = new Npgsql.NpgsqlCommand(sql, writer, inFlight))
        {
            write.Parameters.AddWithValue(shopId); write.Parameters.AddWithValue(order);
            await write.ExecuteNonQueryAsync();
        }
        await Send("orders/delete", StoreReplay.ShopifyShapes.OrderDeletion(order));
        await inFlight.CommitAsync();
    }

    /// <summary>
    /// An order's or a product's own body sent again as orders/delete is refused and deletes nothing (a bare {"id": …}
    /// cannot be told from products/delete's, README says so).
    /// </summary>
    [Fact]
    public async Task OrdersDelete_OfAnotherTopicsBody_IsRefused_AndDeletesNothing()
    {
        const long order = 7_490_401;
        await Send("orders/create", ShopifyPayloads.Order(order, customerId: null));

        var own = await app.SendWebhookAsync("orders/delete", Shop, ShopifyPayloads.Order(order, customerId: null).ToJsonString());
        var product = await app.SendWebhookAsync("orders/delete", Shop, ShopifyPayloads.Product(order).ToJsonString());

        Assert.Equal(HttpStatusCode.Forbidden, own.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, product.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1", order));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM deleted_orders WHERE order_id = $1", order));
    }

    [Fact]
    public async Task CustomersCreateAndUpdate_StoreTheLatestProfile()
    {
        await Send("customers/create", ShopifyPayloads.Customer(7401, "first@example.com"));
        await Send("customers/update", ShopifyPayloads.Customer(7401, "second@example.com", "2026-07-09T10:00:00-04:00"));

        Assert.Equal("second@example.com", await app.ScalarAsync("SELECT email FROM customers WHERE id = 7401"));
    }

    [Fact]
    public async Task AppUninstalled_MarksTheShopAndDropsItsTokens()
    {
        const string shop = "leaving.myshopify.com";
        await app.InstallShopAsync(shop);

        var response = await app.SendWebhookAsync("app/uninstalled", shop, "{\"id\": 9, \"myshopify_domain\": \"leaving.myshopify.com\"}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1 AND uninstalled_at IS NOT NULL AND access_token_enc IS NULL AND refresh_token_enc IS NULL", shop));
    }

    [Fact]
    public async Task AppUninstalled_RetriedAfterAReinstall_LeavesTheNewInstallConnected()
    {
        // The merchant uninstalls; Shopify's delivery fails and is retried later. Meanwhile the merchant installs again.
        const string shop = "came-back.myshopify.com";
        await app.InstallShopAsync(shop);
        var uninstalled = app.Clock.GetUtcNow();
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await app.InstallShopAsync(shop);

        var late = await app.SendWebhookAsync("app/uninstalled", shop, "{\"id\": 10, \"myshopify_domain\": \"came-back.myshopify.com\"}",
            triggeredAt: uninstalled);

        Assert.Equal(HttpStatusCode.OK, late.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1 AND uninstalled_at IS NULL AND access_token_enc IS NOT NULL", shop));
        var token = await app.Factory.Services.GetRequiredService<PluginApp.Install.OfflineTokenStore>().GetAccessTokenAsync(shop, CancellationToken.None);
        Assert.Equal($"shpat_{shop}_seed", token);

        // An uninstall after the new grant still acts.
        var again = await app.SendWebhookAsync("app/uninstalled", shop, "{\"id\": 10, \"myshopify_domain\": \"came-back.myshopify.com\"}");
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1 AND uninstalled_at IS NOT NULL AND access_token_enc IS NULL", shop));
    }

    /// <summary>
    /// The merchant uninstalls and installs again within the minute before the uninstall's check asks Shopify: the shop still
    /// read as installed, so opening the app exchanged no token, the check found the old one refused and uninstalled the
    /// shop (and shop/redact would have erased it two days later), until 7 Dec 2026. Now the app she opens exchanges a new
    /// token, and the check finds it accepted: the shop stays installed, with the new token.
    /// </summary>
    [Fact]
    public async Task AReinstallBeforeTheUninstallIsChecked_GetsANewToken_AndStaysInstalled()
    {
        const string shop = "quick-return.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        app.Shopify.Uninstalled(shop); // Shopify revokes the token at the uninstall
        var body = "{\"id\": 11, \"myshopify_domain\": \"quick-return.myshopify.com\"}";
        var uninstalled = await app.SendWebhookAsync("app/uninstalled", shop, body,
            hmac: ShopifySigning.WebhookHmac(AppFixture.ClientSecret, System.Text.Encoding.UTF8.GetBytes(body)));
        Assert.Equal(HttpStatusCode.OK, uninstalled.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));

        app.Clock.Advance(TimeSpan.FromSeconds(20)); // she installs again, and Shopify opens the app
        var opened = await app.Client.SendAsync(app.AdminGet("/api/admin/shop", shop));
        Assert.Equal(HttpStatusCode.OK, opened.StatusCode);
        app.Clock.Advance(PluginApp.Compliance.ShopTokenChecks.FirstAsk);
        await ActivatorUtilities.CreateInstance<PluginApp.Compliance.ShopTokenChecks>(app.Factory.Services).RunAsync(CancellationToken.None);

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shop_token_checks WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND token_revoked_at IS NULL", shopId));
        var token = await app.Factory.Services.GetRequiredService<PluginApp.Install.OfflineTokenStore>().GetAccessTokenAsync(shop, CancellationToken.None);
        Assert.NotEqual($"shpat_{shop}_seed", token);
        // Opened again: the grant is newer than the uninstall, so nothing is exchanged again.
        var exchanges = app.Shopify.Requests.Count(r => r.Shop == shop && r.Path == "/admin/oauth/access_token");
        Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(app.AdminGet("/api/admin/shop", shop))).StatusCode);
        Assert.Equal(exchanges, app.Shopify.Requests.Count(r => r.Shop == shop && r.Path == "/admin/oauth/access_token"));
    }
}

internal static class JsonObjectExtensions
{
    public static System.Text.Json.Nodes.JsonObject Also(this System.Text.Json.Nodes.JsonObject o, Action<System.Text.Json.Nodes.JsonObject> change)
    {
        change(o);
        return o;
    }
}
