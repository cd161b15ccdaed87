using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using PluginApp.Backfill;
using PluginApp.StoreData;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Backfill;

/// <summary>
/// The backfill's set-based merge against the webhook path: the same store data gives the same rows either way, under the
/// same rules (older versions lose, redacted customers stay erased), a re-run rewrites nothing, and a run resumes after its cursor.
/// </summary>
public sealed class BackfillMergeTests(AppFixture app) : IClassFixture<AppFixture>, IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bulk-merge-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    // The columns both paths write (other features keep columns of their own in some of these tables).
    private static readonly (string Table, IReadOnlyList<string> Columns)[] StoreTables =
    [
        ("customers", StoreWriter.CustomerUpsert.Columns), ("products", StoreWriter.ProductUpsert.Columns), ("variants", StoreWriter.VariantUpsert.Columns),
        ("product_collections", ["shop_id", "product_id", "collection_id"]), ("orders", StoreWriter.OrderUpsert.Columns),
        ("order_lines", StoreWriter.OrderLineUpsert.Columns), ("refunds", StoreWriter.RefundUpsert.Columns), ("refund_lines", StoreWriter.RefundLineUpsert.Columns),
    ];

    [Fact]
    public async Task Backfill_OfTheStoreDataWebhooksDelivered_WritesIdenticalRows_AndARerunRewritesNone()
    {
        const string shop = "merge-same.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var customer = ShopifyPayloads.Customer(7301);
        var product = ShopifyPayloads.Product(9301);
        product["variants"]![1]!["inventory_management"] = null; // stock Shopify does not track: no count on either path
        var orders = new[] { Rest(ShopifyPayloads.Order(63001, customerId: 7301)), Rest(ShopifyPayloads.Order(63002, customerId: 7301, lines: 3)) };
        orders[0]["fulfillment_status"] = "fulfilled";
        orders[1]["fulfillment_status"] = "partial";
        var refund = ShopifyPayloads.Refund(65001, 63002, 6300200, quantity: 2);
        Serve(products: BulkProduct(product), customers: [BulkCustomer(customer)],
            orders: [.. BulkOrder(orders[0], []), .. BulkOrder(orders[1], [refund])]);

        await RunBackfillAsync(shop);
        var backfilled = await SnapshotAsync(shopId, withVersions: false);
        foreach (var (table, _) in StoreTables.Reverse()) await app.ScalarAsync($"DELETE FROM {table} WHERE shop_id = $1", shopId);
        await app.SendWebhookAsync("customers/create", shop, customer.ToJsonString());
        await app.SendWebhookAsync("products/create", shop, product.ToJsonString());
        foreach (var o in orders) await app.SendWebhookAsync("orders/create", shop, o.ToJsonString());
        await app.SendWebhookAsync("refunds/create", shop, refund.ToJsonString());
        var delivered = await SnapshotAsync(shopId, withVersions: true);
        await RunBackfillAsync(shop);
        var rerun = await SnapshotAsync(shopId, withVersions: true);

        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(5, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE shop_id = $1 AND quantity = 2", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM variants WHERE shop_id = $1 AND NOT inventory_tracked", shopId));
        foreach (var (table, _) in StoreTables)
            Assert.Equal(Strip(delivered[table]), backfilled[table]);
        foreach (var (table, _) in StoreTables)
            Assert.Equal(delivered[table], rerun[table]); // same values and the same row versions: nothing rewritten
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
    }

    /// <summary>
    /// The backfill reads no cart or checkout token (GraphQL's Order has none): merging an order its webhook brought keeps
    /// them, as a guest's erasure and export find her carts, checkouts and cart-offer codes through them.
    /// </summary>
    [Fact]
    public async Task Backfill_OfAnOrderItsWebhookBrought_KeepsItsCartAndCheckoutTokens()
    {
        const string shop = "merge-tokens.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var order = ShopifyPayloads.Order(63101, customerId: null);
        await app.SendWebhookAsync("orders/create", shop, order.ToJsonString());
        Serve(products: [], customers: [], orders: BulkOrder(order, []));

        await RunBackfillAsync(shop);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
        Assert.Equal(1, await app.CountAsync(
            "SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 63101 AND cart_token = 'cart63101' AND checkout_token = 'chk63101'", shopId));
    }

    /// <summary>
    /// A variant's cost is versioned by its inventory item: the newer of the snapshot's item and its own webhook's stands.
    /// A cost the merchant changed while the import ran (its webhook already applied) is not written back to the snapshot's,
    /// and an item's older webhook retried after the import does not write its older cost over the snapshot's. Until 7 Dec
    /// 2026 both did, and the cart offers' margin used the stale cost.
    /// </summary>
    [Fact]
    public async Task Backfill_VariantCosts_AreTheNewerOfTheSnapshotsAndTheirItemsWebhooks()
    {
        const string shop = "merge-costs.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        async Task ItemAsync(long item, string cost, string updatedAt) =>
            Assert.Equal(System.Net.HttpStatusCode.OK, (await app.SendWebhookAsync("inventory_items/update", shop, new JsonObject
            {
                ["id"] = item, ["admin_graphql_api_id"] = $"gid://shopify/InventoryItem/{item}", ["tracked"] = true, ["cost"] = cost, ["updated_at"] = updatedAt,
            }.ToJsonString())).StatusCode);
        await ItemAsync(950100, "9.00", "2026-07-05T10:00:00Z"); // changed while the import ran
        Serve(products: [.. BulkProduct(ShopifyPayloads.Product(9501, variants: 1), unitCost: 8.5m, itemUpdatedAt: "2026-07-04T10:00:00Z"),
                         .. BulkProduct(ShopifyPayloads.Product(9502, variants: 1), unitCost: 10m, itemUpdatedAt: "2026-07-04T10:00:00Z")],
            customers: [], orders: []);

        await RunBackfillAsync(shop);
        await ItemAsync(950200, "7.00", "2026-07-03T10:00:00Z"); // an older delivery, retried after the import

        Assert.Equal(9.00m, await app.ScalarAsync("SELECT unit_cost FROM variants WHERE shop_id = $1 AND id = 95010", shopId));
        Assert.Equal(10.00m, await app.ScalarAsync("SELECT unit_cost FROM variants WHERE shop_id = $1 AND id = 95020", shopId));
    }

    [Fact]
    public async Task Backfill_OlderVersionsAndRedactedCustomers_LeaveWhatWebhooksWrote()
    {
        const string shop = "merge-rules.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        // Stored by webhooks: a newer order and product than the bulk files hold, and a customer who asked to be erased.
        var newerOrder = Rest(ShopifyPayloads.Order(64001, customerId: 7401, updatedAt: "2026-07-03T12:00:00-04:00"));
        await app.SendWebhookAsync("orders/create", shop, newerOrder.ToJsonString());
        await app.SendWebhookAsync("products/create", shop, ShopifyPayloads.Product(9401, variants: 2, updatedAt: "2026-07-03T08:00:00-04:00").ToJsonString());
        await app.SendWebhookAsync("products/create", shop, ShopifyPayloads.Product(9402, variants: 3).ToJsonString());
        // A guest's order, erased by her email: no customer row remembers it, the order row does.
        var guestOrder = Rest(ShopifyPayloads.Order(64004, customerId: null));
        guestOrder["email"] = "guest-erased@example.com";
        await app.SendWebhookAsync("orders/create", shop, guestOrder.ToJsonString());
        await app.SendWebhookAsync("customers/redact", shop, new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["customer"] = new JsonObject { ["id"] = 7402, ["email"] = "erased@example.com" }, ["orders_to_redact"] = new JsonArray(),
        }.ToJsonString());
        await app.SendWebhookAsync("customers/redact", shop, new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["customer"] = new JsonObject { ["id"] = 7403, ["email"] = "guest-erased@example.com" }, ["orders_to_redact"] = new JsonArray(64004, 64005),
        }.ToJsonString());

        // The newer version of 9402 the bulk file holds was taken off the Online Store.
        var unpublished = ShopifyPayloads.Product(9402, variants: 1, updatedAt: "2026-07-04T08:00:00-04:00");
        unpublished["published_at"] = null;
        var olderOrder = Rest(ShopifyPayloads.Order(64001, customerId: 7401, lines: 3, financialStatus: "refunded"));
        var erasedOrder = Rest(ShopifyPayloads.Order(64002, customerId: 7402));
        erasedOrder["email"] = "erased@example.com";
        var testOrder = Rest(ShopifyPayloads.Order(64003, customerId: 7401));
        testOrder["test"] = true;
        var guestLater = Rest(ShopifyPayloads.Order(64004, customerId: null, updatedAt: "2026-07-08T12:00:00-04:00"));
        guestLater["email"] = "guest-erased@example.com";
        // Another of her guest orders, listed by the erasure but not held until the import brings it.
        var guestUnheld = Rest(ShopifyPayloads.Order(64005, customerId: null));
        guestUnheld["email"] = "guest-erased@example.com";
        Serve(
            products: [.. BulkProduct(ShopifyPayloads.Product(9401, variants: 1), unitCost: 4.5m, itemUpdatedAt: "2026-07-01T08:00:00-04:00"), .. BulkProduct(unpublished, collection: 88)],
            customers: [BulkCustomer(ShopifyPayloads.Customer(7402, email: "erased@example.com", updatedAt: "2026-07-05T10:00:00-04:00"))],
            orders: [.. BulkOrder(olderOrder, []), .. BulkOrder(erasedOrder, []), .. BulkOrder(testOrder, []), .. BulkOrder(guestLater, []), .. BulkOrder(guestUnheld, [])]);

        await RunBackfillAsync(shop);

        // The newer order stands, with its lines: the older version's status and third line are not applied.
        Assert.Equal("paid", await app.ScalarAsync("SELECT financial_status FROM orders WHERE shop_id = $1 AND id = 64001", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1 AND order_id = 64001", shopId));
        // An older product keeps its variants; a newer one drops the variants it no longer has and joins its collection.
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM variants WHERE shop_id = $1 AND product_id = 9401", shopId));
        // Its webhook carried no cost nor whether stock is tracked: the older snapshot's inventory item gives the cost, and its flag fills the variant's.
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM variants WHERE shop_id = $1 AND id = 94010 AND unit_cost = 4.5 AND inventory_tracked IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM variants WHERE shop_id = $1 AND product_id = 9402", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM product_collections WHERE shop_id = $1 AND product_id = 9402 AND collection_id = 88", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM products WHERE shop_id = $1 AND id = 9402 AND NOT published", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM products WHERE shop_id = $1 AND id = 9401 AND published", shopId));
        // The erased customer stays erased, and their order comes in without personal data.
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7402 AND email IS NULL AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 64002 AND email IS NULL AND browser_ip IS NULL", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1 AND order_id = 64002", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 64003 AND test", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 64004 AND updated_at > '2026-07-05' AND email IS NULL AND browser_ip IS NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 64005 AND email IS NULL AND browser_ip IS NULL", shopId));
        // Those stored blank are marked as erased (what reads only the mark, training and Stripe's metadata, needs it); the
        // others are not, and a second import changes none of the marks.
        const string marked = "SELECT string_agg(id::text, ',' ORDER BY id) FROM orders WHERE shop_id = $1 AND redacted_at IS NOT NULL";
        var erased = await app.ScalarAsync(marked, shopId);
        Assert.Equal("64002,64004,64005", erased);
        var times = await app.ScalarAsync("SELECT string_agg(redacted_at::text, ',' ORDER BY id) FROM orders WHERE shop_id = $1", shopId);
        await RunBackfillAsync(shop);
        Assert.Equal(times, await app.ScalarAsync("SELECT string_agg(redacted_at::text, ',' ORDER BY id) FROM orders WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task Backfill_OfOrdersCancelledForFraud_GivesTheLabelsTheirCancellationsWould_Once_AndScoresNoHistory()
    {
        const string shop = "merge-fraud.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var fraud = Rest(ShopifyPayloads.Order(67001, cancelledAt: "2026-06-20T10:00:00Z"));
        fraud["cancel_reason"] = "fraud";
        var changedMind = Rest(ShopifyPayloads.Order(67002, cancelledAt: "2026-06-21T10:00:00Z")); // cancelled for reason "customer"
        var kept = Rest(ShopifyPayloads.Order(67003));
        Serve(products: [], customers: [], orders: [.. BulkOrder(fraud, []), .. BulkOrder(changedMind, []), .. BulkOrder(kept, [])]);

        await RunBackfillAsync(shop);
        const string label = """
            SELECT count(*) FROM risk_labels WHERE shop_id = $1 AND order_id = 67001 AND fraud AND source = 'cancelled'
              AND labelled_at = '2026-06-20T10:00:00Z'
            """;
        Assert.Equal(1, await app.CountAsync(label, shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM risk_labels WHERE shop_id = $1", shopId));

        // A second backfill, and the same cancellation arriving as a webhook, add nothing.
        await RunBackfillAsync(shop);
        await app.SendWebhookAsync("orders/cancelled", shop, fraud.ToJsonString());
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM risk_labels WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync(label, shopId));
        // History is learnt from, not scored: nothing is queued for scoring or written to Shopify for it.
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM risk_pending WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// A live order scored while a backfill chunk is between dropping the days its orders belong to and committing: its day
    /// is computed once the chunk's orders are there, not from a snapshot without them. The test holds the chunk at its drop
    /// with a lock on one of the days it drops. Until 5 Dec 2026 the live order's day was computed from no history and, being
    /// committed after the drop, stayed so.
    /// </summary>
    [Fact]
    public async Task ALiveOrdersDay_ComputedWhileABackfillChunkCommits_CountsTheChunksOrders()
    {
        const string shop = "merge-store-days-race.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("INSERT INTO risk_store_days (shop_id, day, mean, sd, p90) VALUES ($1, '2026-07-04T00:00:00Z', NULL, NULL, NULL)", shopId);
        await app.ScalarAsync("""
            INSERT INTO orders (shop_id, id, name, currency, total_price, subtotal_price, total_discounts, created_at, updated_at, processed_at)
            VALUES ($1, 68199, '#live', 'USD', 50, 50, 0, '2026-07-06T12:00:00Z', '2026-07-06T12:00:00Z', '2026-07-06T12:00:00Z')
            """, shopId);
        Serve(products: [], customers: [], orders: [.. BulkOrder(Rest(ShopifyPayloads.Order(68101)), []), .. BulkOrder(Rest(ShopifyPayloads.Order(68102)), [])]);

        await using var holder = await app.Db.OpenConnectionAsync();
        await using var hold = await holder.BeginTransactionAsync();
        await using (var row = new NpgsqlCommand("SELECT 1 FROM risk_store_days WHERE shop_id = $1 AND day = '2026-07-04T00:00:00Z' FOR UPDATE", holder, hold))
        {
            row.Parameters.AddWithValue(shopId);
            await row.ExecuteNonQueryAsync();
        }
        var backfill = RunBackfillAsync(shop);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await app.CountAsync("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM risk_store_days%'") == 0)
        {
            Assert.False(backfill.IsCompleted, "the backfill ended without reaching its drop of the store days");
            if (DateTime.UtcNow > deadline) Assert.Fail("the backfill chunk did not reach its drop of the store days within 30 s");
            await Task.Delay(50);
        }

        var scored = Task.Run(async () =>
        {
            await using var conn = await app.Db.OpenConnectionAsync();
            return await PluginApp.Risk.OrderFeatures.BuildAsync(conn, shopId, [68199], CancellationToken.None);
        });
        await Task.Delay(1000);
        await hold.CommitAsync();
        await backfill;
        await scored;

        // The day of the live order, from the 90 days before it: the chunk's two orders.
        Assert.NotNull(await app.ScalarAsync("SELECT mean FROM risk_store_days WHERE shop_id = $1 AND day = '2026-07-06T00:00:00Z'", shopId));
    }

    /// <summary>
    /// A day's usual order computed while the history was still coming in (a live order scored during the install's
    /// backfill) is computed again once the history's orders of its 90 days have come; days those orders do not reach keep
    /// theirs. Until 5 Dec 2026 the install day stayed as computed from no history, for scoring and training alike.
    /// </summary>
    [Fact]
    public async Task Backfill_DropsTheUsualOrderOfDaysItsOrdersBelongTo_SoTheyAreComputedWithThem()
    {
        const string shop = "merge-store-days.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        foreach (var day in new[] { "2026-06-01", "2026-07-10", "2026-12-01" })
            await app.ScalarAsync("INSERT INTO risk_store_days (shop_id, day, mean, sd, p90) VALUES ($1, ($2 || 'T00:00:00Z')::timestamptz, NULL, NULL, NULL)", shopId, day);
        Serve(products: [], customers: [], orders: [.. BulkOrder(Rest(ShopifyPayloads.Order(68001)), []), .. BulkOrder(Rest(ShopifyPayloads.Order(68002)), [])]);

        await RunBackfillAsync(shop);

        Assert.Equal("2026-06-01,2026-12-01", await app.ScalarAsync("SELECT string_agg((day AT TIME ZONE 'UTC')::date::text, ',' ORDER BY day) FROM risk_store_days WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task Backfill_InterruptedAfterAChunk_ResumesAfterItsCursor_AndClearsItsStagedRows()
    {
        const string shop = "merge-resume.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        // A run that staged its orders and had merged the first chunk (through line 2) when its process died.
        var run = await OrdersStagedAsync(shopId, lines: 4, cursor: 2, objectsDone: 2);
        await StageAsync([StagedOrder("$1", 1, 66001), StagedLine("$1", 2, 66001, 1), StagedOrder("$1", 3, 66002), StagedLine("$1", 4, 66002, 3)], run!);

        await RunBackfillAsync(shop);

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 66001", shopId)); // merged before the crash, not again
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1 AND order_id = 66002 AND quantity = 3", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed' AND rows_done = 4 AND attempts = 2", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM backfill_lines WHERE run_id = $1", run!));
    }

    [Fact]
    public async Task Backfill_DroppingItsMergedLines_LeavesOtherRunsStagedLinesAlone()
    {
        // Runs of two other shops, staged before and after this one's and not merged yet (one staged only a child line, the
        // other only a parent line), while this shop's run merges its orders.
        var before = await OrdersStagedAsync(await app.InstallShopAsync("staged-before.myshopify.com"), lines: 1, cursor: 0, objectsDone: 0);
        const string shop = "staged-own.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var own = await OrdersStagedAsync(shopId, lines: 2, cursor: 0, objectsDone: 0);
        var after = await OrdersStagedAsync(await app.InstallShopAsync("staged-after.myshopify.com"), lines: 1, cursor: 0, objectsDone: 0);
        await StageAsync([StagedLine("$1", 1, 66101, 1), StagedOrder("$2", 1, 66201), StagedLine("$2", 2, 66201, 2), StagedOrder("$3", 1, 66301)],
            before!, own!, after!);

        await RunBackfillAsync(shop);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1 AND order_id = 66201 AND quantity = 2", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM backfill_lines WHERE run_id = $1", own!));
        const string kept = "SELECT string_agg(format('%s:%s', run_id, coalesce(body ->> 'id', item_id::text)), ',' ORDER BY run_id) FROM backfill_lines WHERE run_id IN ($1, $2)";
        Assert.Equal($"{before}:6610100,{after}:gid://shopify/Order/66301", await app.ScalarAsync(kept, before!, after!));

        // Alone now (the others' runs are gone with their lines), a run's merged lines are dropped as well.
        await app.ScalarAsync("DELETE FROM backfill_runs WHERE id IN ($1, $2)", before!, after!);
        var again = await OrdersStagedAsync(shopId, lines: 1, cursor: 0, objectsDone: 0);
        await StageAsync([StagedOrder("$1", 1, 66202)], again!);
        await RunBackfillAsync(shop);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 66202", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM backfill_lines WHERE run_id = $1", again!));
    }

    [Fact]
    public async Task Backfill_MergingChunksOnTwoConnections_OneFailing_ResumesWithoutLosingItOrMergingTheOthersTwice()
    {
        const string shop = "merge-parallel.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        // Six orders with a line each, staged; a chunk is one order, and two chunks are merged at once.
        var run = await OrdersStagedAsync(shopId, lines: 12, cursor: 0, objectsDone: 0);
        await StageAsync(Enumerable.Range(1, 6).SelectMany(i => new[] { StagedOrder("$1", 2 * i - 1, 77000 + i), StagedLine("$1", 2 * i, 77000 + i, i) }), run!);
        // The third order's chunk fails after two seconds, while the other connection merges the chunks after it.
        var failing = new BackfillMergeStep("fails on order 77003", StoreMerge.Orders, $"""
            SELECT CASE WHEN 77003 IN ({StoreMerge.ChunkIds(StoreMerge.Orders)}) THEN (SELECT 1 FROM pg_sleep(2)) / 0 END
            """);

        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => Backfill(failing).RunAsync(shop, CancellationToken.None));

        const string stored = "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM orders WHERE shop_id = $1";
        Assert.Equal("77001,77002,77004,77005,77006", await app.ScalarAsync(stored, shopId));
        // Each chunk is an order's line and its item's. The cursor stops at line 4 (the second order's item), where the failed
        // chunk begins; the three merged after it are recorded (each as the line before its first and its last), and every
        // object merged is counted once.
        const string progress = "SELECT format('%s, cursor %s, merged ahead %s, %s objects', state, phase_cursor, merged_ahead, rows_done) FROM backfill_runs WHERE id = $1";
        Assert.Equal("failed, cursor 4, merged ahead {6,8,8,10,10,12}, 10 objects", await app.ScalarAsync(progress, run!));

        // Gone before the resume: merging its chunk again would bring it back.
        await app.ScalarAsync("DELETE FROM orders WHERE shop_id = $1 AND id = 77005", shopId);
        await Backfill().RunAsync(shop, CancellationToken.None);

        Assert.Equal("77001,77002,77003,77004,77006", await app.ScalarAsync(stored, shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1 AND order_id = 77003 AND quantity = 3", shopId));
        Assert.Equal("completed, cursor 0, merged ahead {}, 12 objects", await app.ScalarAsync(progress, run!));

        BackfillService Backfill(params BackfillMergeStep[] extra) => ActivatorUtilities.CreateInstance<BackfillService>(app.Factory.Services,
            Microsoft.Extensions.Options.Options.Create(new BackfillOptions { ChunkSize = 1, MergeConnections = 2 }),
            app.Factory.Services.GetServices<BackfillMergeStep>().Concat(extra).ToArray());
    }

    [Fact]
    public async Task Backfill_IntoAStoreHoldingNoneOfItsRows_Inserts_UntilARowStoredMeanwhile_ThenMergesByTheRules()
    {
        const string shop = "merge-empty.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        // The file names order 78002 twice, in two chunks: a version of 16:00, then one of 18:00 with its line's quantity 5.
        var run = await OrdersStagedAsync(shopId, lines: 8, cursor: 0, objectsDone: 0);
        await StageAsync([
            StagedOrder("$1", 1, 78001), StagedLine("$1", 2, 78001, 1), StagedOrder("$1", 3, 78002), StagedLine("$1", 4, 78002, 2),
            StagedOrder("$1", 5, 78002, "2026-07-02T18:00:00Z"), StagedLine("$1", 6, 78002, 5), StagedOrder("$1", 7, 78003), StagedLine("$1", 8, 78003, 3),
        ], run!);
        var logs = new LogCapture();
        using var logging = LoggerFactory.Create(b => b.AddProvider(logs));

        await ActivatorUtilities.CreateInstance<BackfillService>(app.Factory.Services,
            Microsoft.Extensions.Options.Options.Create(new BackfillOptions { ChunkSize = 1, MergeConnections = 2 }),
            app.Factory.Services.GetServices<BackfillMergeStep>().ToArray(), logging.CreateLogger<BackfillService>()).RunAsync(shop, CancellationToken.None);

        Assert.Equal("completed", await app.ScalarAsync("SELECT state FROM backfill_runs WHERE id = $1", run!));
        Assert.Equal("78001 16:00, 78002 18:00, 78003 16:00", await app.ScalarAsync(
            "SELECT string_agg(id || to_char(updated_at AT TIME ZONE 'UTC', ' HH24:MI'), ', ' ORDER BY id) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal("78001:1, 78002:5, 78003:3", await app.ScalarAsync(
            "SELECT string_agg(order_id || ':' || quantity, ', ' ORDER BY order_id) FROM order_lines WHERE shop_id = $1", shopId));
        // Merged by plain inserts while nothing was stored; the order's second chunk met its first and went on by upserts.
        var said = logs.Entries.Where(e => e.Category == typeof(BackfillService).FullName).Select(e => e.Message).ToArray();
        Assert.Contains(said, m => m.Contains("holds none of the orders yet", StringComparison.Ordinal));
        Assert.Contains(said, m => m.Contains("met a row stored meanwhile (orders_pkey)", StringComparison.Ordinal));
    }

    [Theory]
    // As Shopify writes one.
    [InlineData("""{"id":"gid://shopify/LineItem/501","sku":"85123A","title":"WHITE HANGING HEART T-LIGHT HOLDER","quantity":6,"product":{"id":"gid://shopify/Product/1000000"},"variant":{"id":"gid://shopify/ProductVariant/2000000"},"originalUnitPriceSet":{"shopMoney":{"amount":"2.55","currencyCode":"GBP"}},"totalDiscountSet":{"shopMoney":{"amount":"0.00","currencyCode":"GBP"}},"__parentId":"gid://shopify/Order/50"}""")]
    // A deleted product and variant, no sku, a custom item without money sets.
    [InlineData("""{"id":"gid://shopify/LineItem/502","sku":null,"title":"Gift wrap","quantity":1,"product":null,"variant":null,"__parentId":"gid://shopify/Order/50"}""")]
    // Escaped and non-ASCII text, members in another order and spaced, an id with a query, amounts as numbers, shopMoney null.
    [InlineData("""{ "__parentId" : "gid://shopify/Order/50", "title" : "Tasse \"Caf\u00e9\" ☕ \/ 12\u00bd cm", "quantity" : "  7 ", "id" : "gid://shopify/LineItem/503?v=2", "originalUnitPriceSet" : { "shopMoney" : { "amount" : 12.5 } }, "totalDiscountSet" : { "shopMoney" : null }, "sku" : "Ü-1" }""")]
    // Named twice (the last stands, as in jsonb), a product without an id, extra members and nesting to pass over.
    [InlineData("""{"id":"gid://shopify/LineItem/1","id":"gid://shopify/LineItem/504","quantity":1,"quantity":-3,"product":{"title":"x"},"variant":{"id":"gid://shopify/ProductVariant/9","id":"gid://shopify/ProductVariant/10"},"customAttributes":[{"key":"id","value":"gid://shopify/LineItem/9"}],"originalUnitPriceSet":{"presentmentMoney":{"amount":"9.99"},"shopMoney":{"amount":"1.00"},"shopMoney":{"currencyCode":"EUR","amount":"1e3"}},"title":true,"sku":123,"__parentId":"gid://shopify/Order/50"}""")]
    public async Task StagedLineItem_HoldsWhatTheMergeReadFromItsJsonBefore(string line)
    {
        var shopId = await app.InstallShopAsync($"item-values-{Math.Abs(line.GetHashCode()):x}.myshopify.com");
        var run = await OrdersStagedAsync(shopId, lines: 1, cursor: 0, objectsDone: 0);
        var bytes = System.Text.Encoding.UTF8.GetBytes(line);
        var item = new BulkLineItem();
        item.Read(bytes);
        await using (var conn = await app.Db.OpenConnectionAsync())
        await using (var copy = await conn.BeginRawBinaryCopyAsync($"COPY backfill_lines ({StagedLineWriter.Columns}) FROM STDIN (FORMAT binary)"))
        {
            var rows = new StagedLineWriter(copy, (long)run!, StoreMerge.Orders);
            await rows.AddAsync(item, BulkLine.ParentId(bytes)!.Value, CancellationToken.None);
            await rows.CompleteAsync(CancellationToken.None);
        }

        // The merge's expressions for a line item before it was staged as values, on the line's jsonb.
        var before = await app.ScalarAsync("""
            SELECT ROW(bulk_id(j ->> 'id'), bulk_id(j ->> '__parentId'), bulk_id(j -> 'product' ->> 'id'), bulk_id(j -> 'variant' ->> 'id'), j ->> 'title',
                       j ->> 'sku', (j ->> 'quantity')::int4, (j -> 'originalUnitPriceSet' -> 'shopMoney' ->> 'amount')::numeric,
                       (j -> 'totalDiscountSet' -> 'shopMoney' ->> 'amount')::numeric)::text
            FROM (SELECT $1::jsonb AS j) x
            """, line);
        var staged = await app.ScalarAsync("""
            SELECT ROW(item_id, parent_id, item_product_id, item_variant_id, item_title, item_sku, item_quantity, item_price::numeric, item_total_discount::numeric)::text
            FROM backfill_lines WHERE run_id = $1 AND body IS NULL
            """, run!);
        Assert.Equal(before, staged);
    }

    /// <summary>Staged lines as the staging leaves them: rows of <see cref="StagedOrder"/> and <see cref="StagedLine"/>, each naming its run by parameter.</summary>
    private async Task StageAsync(IEnumerable<string> rows, params object[] runs) =>
        await app.ScalarAsync($"INSERT INTO backfill_lines (run_id, phase, line_no, body, parent_id, item_id, item_quantity) VALUES {string.Join(", ", rows)}", runs);

    /// <summary>An order's line in the orders file (named after its last two digits).</summary>
    private static string StagedOrder(string run, int line, long order, string updatedAt = "2026-07-02T16:00:00Z") =>
        $$"""({{run}}, 'orders', {{line}}, '{"id":"gid://shopify/Order/{{order}}","name":"#{{order % 100}}","updatedAt":"{{updatedAt}}"}', NULL, NULL, NULL)""";

    /// <summary>The line item (id: the order's id and 00) of an order, as a child line: staged as its values.</summary>
    private static string StagedLine(string run, int line, long order, int quantity) =>
        $$"""({{run}}, 'orders', {{line}}, NULL, {{order}}, {{order}}00, {{quantity}})""";

    /// <summary>A run of the shop whose products and customers are merged and whose orders' file is staged, as its process left it.</summary>
    private async Task<object?> OrdersStagedAsync(long shopId, long lines, long cursor, long objectsDone) => await app.ScalarAsync("""
        INSERT INTO backfill_runs (shop_id, state, phase, staged, phase_cursor, phases_done, rows_done, started_at, updated_at)
        VALUES ($1, 'running', 'orders', jsonb_build_object('orders', $2::int8), $3, '{products,customers}', $4, now(), now()) RETURNING id
        """, shopId, lines, cursor, objectsDone);

    private async Task RunBackfillAsync(string shop) =>
        await app.Factory.Services.GetRequiredService<BackfillService>().RunAsync(shop, CancellationToken.None);

    /// <summary>Every store row of the shop as text, table by table; with each row's version (xmin) when asked.</summary>
    private async Task<Dictionary<string, string>> SnapshotAsync(long shopId, bool withVersions)
    {
        var tables = new Dictionary<string, string>();
        foreach (var (table, columns) in StoreTables)
            tables[table] = (string)(await app.ScalarAsync($"""
                SELECT coalesce(string_agg(r, E'\n' ORDER BY r), '') FROM (
                  SELECT ROW({string.Join(", ", columns.Where(c => c != "shop_id"))})::text {(withVersions ? "|| ' @' || xmin::text" : "")} AS r
                  FROM {table} WHERE shop_id = $1) x
                """, shopId))!;
        return tables;
    }

    private static string Strip(string withVersions) =>
        string.Join('\n', withVersions.Split('\n').Select(r => r.Contains(" @", StringComparison.Ordinal) ? r[..r.LastIndexOf(" @", StringComparison.Ordinal)] : r));

    private void Serve(IEnumerable<JsonObject> products, IEnumerable<JsonObject> customers, IEnumerable<JsonObject> orders)
    {
        foreach (var (root, lines) in new[] { ("products", products), ("customers", customers), ("orders", orders) })
        {
            var path = Path.Combine(_dir, $"{root}-{Guid.NewGuid():N}.jsonl");
            File.WriteAllLines(path, lines.Select(l => l.ToJsonString()));
            app.Shopify.Admin.ServeBulk(root, path);
        }
    }

    /// <summary>Fields the bulk query cannot read (GraphQL's Order has no cart or checkout token) are left out of the webhook too.</summary>
    private static JsonObject Rest(JsonObject order)
    {
        order["cart_token"] = null;
        order["checkout_token"] = null;
        return order;
    }

    // The same objects as bulk-operation lines, in the GraphQL shape (gids, enums in capitals, money in shopMoney, tags as lists).
    private static string Gid(string type, JsonNode? id) => $"gid://shopify/{type}/{id!.GetValue<long>().ToString(CultureInfo.InvariantCulture)}";
    private static JsonObject? Money(JsonNode? amount) => amount is null ? null : new JsonObject { ["shopMoney"] = new JsonObject { ["amount"] = amount.DeepClone() } };
    private static string? Upper(JsonNode? s) => s?.GetValue<string>().ToUpperInvariant();
    private static JsonArray Tags(JsonNode? tags) =>
        new([.. (tags?.GetValue<string>() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => (JsonNode)t)]);
    private static JsonNode? Copy(JsonNode? n) => n?.DeepClone();

    private static JsonObject BulkCustomer(JsonObject c)
    {
        var bulk = new JsonObject
        {
            ["id"] = Gid("Customer", c["id"]), ["firstName"] = Copy(c["first_name"]), ["lastName"] = Copy(c["last_name"]),
            ["state"] = Upper(c["state"]), ["createdAt"] = Copy(c["created_at"]), ["updatedAt"] = Copy(c["updated_at"]),
            // Shopify's current shape (since 2025-04): the address with its consent, and the phone number, each null when absent.
            ["defaultEmailAddress"] = c["email"] is null ? null : new JsonObject
            {
                ["emailAddress"] = Copy(c["email"]), ["marketingState"] = Upper(c["email_marketing_consent"]?["state"]),
                ["marketingUpdatedAt"] = Copy(c["email_marketing_consent"]?["consent_updated_at"]),
            },
            ["defaultPhoneNumber"] = c["phone"] is null ? null : new JsonObject { ["phoneNumber"] = Copy(c["phone"]) },
        };
        if (c["tags"] is { } tags) bulk["tags"] = Tags(tags); // a webhook's customer carries no tags since API version 2025-01
        return bulk;
    }

    private static IEnumerable<JsonObject> BulkProduct(JsonObject p, long? collection = null, decimal? unitCost = null, string? itemUpdatedAt = null)
    {
        var gid = Gid("Product", p["id"]);
        yield return new JsonObject
        {
            ["id"] = gid, ["title"] = Copy(p["title"]), ["handle"] = Copy(p["handle"]), ["productType"] = Copy(p["product_type"]), ["vendor"] = Copy(p["vendor"]),
            ["status"] = Upper(p["status"]), ["publishedAt"] = Copy(p["published_at"]), ["tags"] = Tags(p["tags"]), ["createdAt"] = Copy(p["created_at"]), ["updatedAt"] = Copy(p["updated_at"]),
            ["featuredMedia"] = p["image"] is { } image ? new JsonObject { ["preview"] = new JsonObject { ["image"] = new JsonObject { ["url"] = Copy(image["src"]) } } } : null,
        };
        foreach (var v in p["variants"]!.AsArray())
            yield return new JsonObject
            {
                ["id"] = Gid("ProductVariant", v!["id"]), ["title"] = Copy(v["title"]), ["sku"] = Copy(v["sku"]), ["price"] = Copy(v["price"]),
                ["compareAtPrice"] = Copy(v["compare_at_price"]), ["inventoryQuantity"] = Copy(v["inventory_quantity"]), ["inventoryPolicy"] = Upper(v["inventory_policy"]),
                ["updatedAt"] = Copy(v["updated_at"]), ["inventoryItem"] = new JsonObject
                {
                    ["id"] = Gid("InventoryItem", v["inventory_item_id"]), ["tracked"] = v["inventory_management"] is not null,
                    ["unitCost"] = unitCost is { } cost ? new JsonObject { ["amount"] = cost.ToString(System.Globalization.CultureInfo.InvariantCulture), ["currencyCode"] = "USD" } : null,
                    ["updatedAt"] = itemUpdatedAt,
                },
                ["__parentId"] = gid,
            };
        if (collection is { } c) yield return new JsonObject { ["id"] = $"gid://shopify/Collection/{c}", ["__parentId"] = gid };
    }

    /// <summary>The order's line, then its line items as child lines, with its refunds inside it (as the bulk query nests them).</summary>
    private static IEnumerable<JsonObject> BulkOrder(JsonObject o, JsonObject[] refunds)
    {
        var gid = Gid("Order", o["id"]);
        yield return new JsonObject
        {
            ["id"] = gid, ["name"] = Copy(o["name"]), ["email"] = Copy(o["email"]), ["createdAt"] = Copy(o["created_at"]), ["updatedAt"] = Copy(o["updated_at"]),
            ["processedAt"] = Copy(o["processed_at"]), ["cancelledAt"] = Copy(o["cancelled_at"]), ["cancelReason"] = Upper(o["cancel_reason"]),
            ["displayFinancialStatus"] = Upper(o["financial_status"]), ["displayFulfillmentStatus"] = (o["fulfillment_status"]?.GetValue<string>()) switch
            {
                "fulfilled" => "FULFILLED", "partial" => "PARTIALLY_FULFILLED", "restocked" => "RESTOCKED", _ => "UNFULFILLED",
            },
            ["currencyCode"] = Copy(o["currency"]), ["taxesIncluded"] = Copy(o["taxes_included"]), ["test"] = Copy(o["test"]), ["tags"] = Tags(o["tags"]), ["sourceName"] = Copy(o["source_name"]),
            ["clientIp"] = Copy(o["browser_ip"]), ["customer"] = o["customer"] is { } c ? new JsonObject { ["id"] = Gid("Customer", c["id"]) } : null,
            ["discountCodes"] = new JsonArray([.. o["discount_codes"]!.AsArray().Select(d => Copy(d!["code"]))]),
            ["paymentGatewayNames"] = Copy(o["payment_gateway_names"]),
            ["totalPriceSet"] = Money(o["total_price"]), ["subtotalPriceSet"] = Money(o["subtotal_price"]),
            ["totalDiscountsSet"] = Money(o["total_discounts"]), ["totalTaxSet"] = Money(o["total_tax"]),
            ["billingAddress"] = new JsonObject { ["countryCodeV2"] = Copy(o["billing_address"]?["country_code"]) },
            ["shippingAddress"] = new JsonObject { ["countryCodeV2"] = Copy(o["shipping_address"]?["country_code"]) },
            ["refunds"] = new JsonArray([.. refunds.Select(r => (JsonNode)new JsonObject
            {
                ["id"] = Gid("Refund", r["id"]), ["createdAt"] = Copy(r["created_at"]), ["processedAt"] = Copy(r["processed_at"]), ["note"] = Copy(r["note"]),
                ["totalRefundedSet"] = Money(r["transactions"]!.AsArray().Single()!["amount"]),
                ["refundLineItems"] = new JsonObject
                {
                    ["nodes"] = new JsonArray([.. r["refund_line_items"]!.AsArray().Select(l => (JsonNode)new JsonObject
                    {
                        ["id"] = Gid("RefundLineItem", l!["id"]), ["lineItem"] = new JsonObject { ["id"] = Gid("LineItem", l["line_item_id"]) },
                        ["quantity"] = Copy(l["quantity"]), ["restockType"] = Upper(l["restock_type"]), ["subtotalSet"] = Money(l["subtotal"]),
                        ["totalTaxSet"] = Money(l["total_tax"]),
                    })]),
                },
            })]),
        };
        foreach (var l in o["line_items"]!.AsArray())
            yield return new JsonObject
            {
                ["id"] = Gid("LineItem", l!["id"]), ["title"] = Copy(l["title"]), ["sku"] = Copy(l["sku"]), ["quantity"] = Copy(l["quantity"]),
                ["product"] = l["product_id"] is { } p ? new JsonObject { ["id"] = Gid("Product", p) } : null,
                ["variant"] = l["variant_id"] is { } v ? new JsonObject { ["id"] = Gid("ProductVariant", v) } : null,
                ["originalUnitPriceSet"] = Money(l["price"]), ["totalDiscountSet"] = Money(l["total_discount"]), ["__parentId"] = gid,
            };
    }
}
