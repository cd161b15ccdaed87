using System.Diagnostics.Metrics;
using Npgsql;
using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.StoreData;
using PluginApp.Tests.Infrastructure;
using PluginApp.Webhooks;

namespace PluginApp.Tests.Webhooks;

/// <summary>
/// The app with one writer that waits for a full batch of <see cref="Batch"/> deliveries (MaxWait is only a ceiling), so
/// deliveries a test sends together share one transaction; and a step that notes every order, and throws for one.
/// </summary>
public sealed class GroupCommitFixture : AppFixture
{
    public const int Batch = 6;
    public const long Throws = 777;

    /// <summary>How many times the probe step ran for each delivery: once when its batch is written at the first try.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, int> StepRuns { get; } = new();

    protected override void ConfigureMainInstance(IWebHostBuilder builder)
    {
        builder.UseSetting("Webhooks:Ingest:MaxBatch", Batch.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("Webhooks:Ingest:MaxWait", "00:00:10");
        builder.UseSetting("Webhooks:Ingest:Writers", "1");
        builder.ConfigureServices(s => s.AddIngestionStep<OrderRows>("group commit probe", (store, rows, at) =>
        {
            StepRuns.AddOrUpdate(at.DeliveryId, 1, (_, n) => n + 1);
            if (rows.Order.Id == Throws) throw new InvalidOperationException("a feature's step failed on this order");
            store.Add("INSERT INTO group_commit_probe (order_id, delivery_id) VALUES ($1, $2)", rows.Order.Id, at.DeliveryId);
        }));
    }

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await using var cmd = Db.CreateCommand("CREATE TABLE group_commit_probe (order_id bigint NOT NULL, delivery_id text NOT NULL)");
        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>Concurrent deliveries share one commit, and every guarantee of a lone delivery still holds for each of them.</summary>
public sealed class GroupCommitTests(GroupCommitFixture app) : IClassFixture<GroupCommitFixture>, IAsyncLifetime
{
    private const string Shop = "group-commit.myshopify.com";

    public async Task InitializeAsync() => await app.InstallShopAsync(Shop);
    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>How many transactions wrote these deliveries' rows.</summary>
    private Task<long> Transactions(string[] deliveries) =>
        app.CountAsync("SELECT count(DISTINCT xmin::text) FROM webhook_deliveries WHERE delivery_id = ANY($1)", (object)deliveries);

    private Task<long> Orders(long id) => app.CountAsync("SELECT count(*) FROM orders WHERE id = $1", id);

    [Fact]
    public async Task ConcurrentDeliveries_ShareOneCommit_AndEachIsStoredWhenItsAnswerArrives()
    {
        var ids = Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => (Order: 8_100_001L + i, Delivery: Guid.NewGuid().ToString())).ToArray();

        var answers = await Task.WhenAll(ids.Select(async x =>
        {
            var response = await app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(x.Order, lines: 3).ToJsonString(), x.Delivery);
            // Read at once, before any other answer is awaited: a 200 means the delivery and its rows are already committed.
            return (response.StatusCode, Stored: await Orders(x.Order),
                Lines: await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = $1", x.Order));
        }));

        Assert.All(answers, a => Assert.Equal((HttpStatusCode.OK, 1L, 3L), a));
        Assert.Equal(1, await Transactions(ids.Select(x => x.Delivery).ToArray()));
        Assert.Equal(GroupCommitFixture.Batch, await app.CountAsync("SELECT count(*) FROM group_commit_probe WHERE order_id BETWEEN 8100001 AND 8100006"));
    }

    [Fact]
    public async Task OneDeliveryPostgresRefuses_IsKeptAsideAlone_AndItsBatchMatesCommitTogether()
    {
        var ids = Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => (Order: 8_200_001L + i, Delivery: Guid.NewGuid().ToString())).ToArray();
        var bad = ids[2];

        var answers = await Task.WhenAll(ids.Select(x =>
        {
            var order = ShopifyPayloads.Order(x.Order);
            if (x == bad) order["total_price"] = "123456789012345678.00"; // beyond numeric(14,2)
            return app.SendWebhookAsync("orders/create", Shop, order.ToJsonString(), x.Delivery);
        }));

        Assert.All(answers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode)); // the bad one too: Shopify's retries would fail the same way
        Assert.Equal(0, await Orders(bad.Order));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM group_commit_probe WHERE order_id = $1", bad.Order));
        Assert.Equal("failed", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1 AND error LIKE '22003%'", bad.Delivery));
        foreach (var good in ids.Where(x => x != bad))
        {
            Assert.Equal(1, await Orders(good.Order));
            Assert.Equal("normalized", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", good.Delivery));
        }
        Assert.Equal(1, await Transactions(ids.Select(x => x.Delivery).ToArray()));
    }

    /// <summary>
    /// The deliveries of a batch are recorded by one statement, so when PostgreSQL refuses one body as jsonb (an escaped lone
    /// surrogate in a field we do not read: .NET parses it, PostgreSQL's jsonb does not) its error names no delivery. The
    /// batch is written again a delivery at a time, in the same one transaction: the bad one kept aside as its bytes.
    /// </summary>
    [Fact]
    public async Task OneBodyPostgresRefusesAsJson_IsKeptAsItsBytes_AndItsBatchMatesAreStoredInTheSameTransaction()
    {
        var ids = Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => (Order: 8_250_001L + i, Delivery: Guid.NewGuid().ToString())).ToArray();
        var bad = ids[3];

        // Why a topic the app does not act on: only such a body is kept raw, so only its body is read as jsonb.
        var answers = await Task.WhenAll(ids.Select(x => x == bad
            ? app.SendWebhookAsync("inventory_levels/update", Shop, $"{{\"inventory_item_id\":{x.Order},\"available\":3,\"app_extra\":\"\\ud800\"}}", x.Delivery)
            : app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(x.Order).ToJsonString(), x.Delivery)));

        Assert.All(answers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await app.CountAsync(
            "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND outcome = 'failed' AND raw_body IS NOT NULL" +
            " AND body->>'withheld' = 'kept as bytes in raw_body' AND body ? 'sha256'", bad.Delivery));
        foreach (var good in ids.Where(x => x != bad))
        {
            Assert.Equal(1, await Orders(good.Order));
            Assert.Equal("normalized", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", good.Delivery));
        }
        Assert.Equal(1, await Transactions(ids.Select(x => x.Delivery).ToArray()));
    }

    [Fact]
    public async Task DeliveryWhoseStepThrows_Answers500AndLeavesNoTrace_WhileItsBatchMatesAreStored()
    {
        var ids = Enumerable.Range(0, GroupCommitFixture.Batch)
            .Select(i => (Order: i == 0 ? GroupCommitFixture.Throws : 8_300_001L + i, Delivery: Guid.NewGuid().ToString())).ToArray();

        var answers = await Task.WhenAll(ids.Select(x => app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(x.Order).ToJsonString(), x.Delivery)));

        // Not a 200: nothing of it is stored, so Shopify must send it again.
        Assert.Equal(HttpStatusCode.InternalServerError, answers[0].StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", ids[0].Delivery));
        Assert.Equal(0, await Orders(GroupCommitFixture.Throws));
        Assert.All(answers.Skip(1), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        foreach (var good in ids.Skip(1)) Assert.Equal(1, await Orders(good.Order));
        Assert.Equal(1, await Transactions(ids.Skip(1).Select(x => x.Delivery).ToArray()));
    }

    /// <summary>
    /// A batch writes the order rows of a run of deliveries with one statement per table, which may hold each key once: two
    /// versions of one order and two orders of one customer, sent together, are still all written in one transaction, at the
    /// first try (not again one by one after an error), with the newer version of the order standing whichever came first.
    /// </summary>
    [Fact]
    public async Task TwoVersionsOfAnOrder_AndTwoOrdersOfOneCustomer_InOneBatch_AreWrittenAtTheFirstTry_TheNewerVersionStanding()
    {
        const long a = 8_950_001;
        var deliveries = new (string Topic, System.Text.Json.Nodes.JsonObject Body, string Id)[]
        {
            ("orders/create", ShopifyPayloads.Order(a, customerId: 7201, lines: 2), Guid.NewGuid().ToString()),
            ("orders/updated", ShopifyPayloads.Order(a, customerId: 7201, lines: 3, updatedAt: "2026-07-02T12:05:00-04:00"), Guid.NewGuid().ToString()),
            ("orders/create", ShopifyPayloads.Order(a + 1, customerId: 7202), Guid.NewGuid().ToString()),
            ("orders/create", ShopifyPayloads.Order(a + 2, customerId: 7202), Guid.NewGuid().ToString()),
            ("orders/create", ShopifyPayloads.Order(a + 3, customerId: 7203), Guid.NewGuid().ToString()),
            ("orders/create", ShopifyPayloads.Order(a + 4, customerId: 7204), Guid.NewGuid().ToString()),
        };

        var answers = await Task.WhenAll(deliveries.Select(d => app.SendWebhookAsync(d.Topic, Shop, d.Body.ToJsonString(), d.Id)));

        Assert.All(answers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await Transactions(deliveries.Select(d => d.Id).ToArray()));
        Assert.All(deliveries, d => Assert.Equal(1, app.StepRuns.GetValueOrDefault(d.Id)));
        Assert.Equal(new DateTime(2026, 7, 2, 16, 5, 0, DateTimeKind.Utc), await app.ScalarAsync("SELECT updated_at FROM orders WHERE id = $1", a));
        Assert.Equal(3, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = $1", a));
        Assert.Equal(5, await app.CountAsync("SELECT count(*) FROM orders WHERE id BETWEEN $1 AND $2", a, a + 4));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE customer_id = 7202 AND id BETWEEN $1 AND $2", a, a + 4));
        Assert.Equal(4, await app.CountAsync("SELECT count(*) FROM customers WHERE id BETWEEN 7201 AND 7204"));
    }

    /// <summary>
    /// The steps of a segment's orders (experiment outcomes, recommendation attribution, the risk queue) are one statement
    /// each for the whole segment: each order still gets what is its own, from its own lines and its own shopper.
    /// </summary>
    [Fact]
    public async Task SixOrdersInOneBatch_EachGetsItsOwnExperimentArmMarginAttributionAndRiskQueueEntry_AtTheFirstTry()
    {
        const long first = 8_960_001;
        var shopId = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", Shop))!;
        // Unit costs for the first two variants every order line uses (19000 once, 19001 twice); 19002 has none.
        await app.CountAsync("""
            INSERT INTO variants (shop_id, id, product_id, unit_cost) VALUES ($1, 19000, 9000, 2.5), ($1, 19001, 9001, 4), ($1, 19002, 9002, NULL)
            ON CONFLICT (shop_id, id) DO UPDATE SET unit_cost = excluded.unit_cost
            """, shopId);
        var customers = Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => 7401L + i).ToArray();
        var arms = customers.ToDictionary(c => c, c => c % 2 == 0 ? "treatment" : "control");
        foreach (var c in customers)
            await app.CountAsync("""
                INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, customer_id, first_at) VALUES ($1, 'batch-steps', $2, $3, $4, '2026-07-01T12:00:00Z')
                ON CONFLICT DO NOTHING
                """, shopId, $"c:{c}", arms[c], c);
        // Clicks on the first line's product by every other customer; one more click outside the 7 days credits nothing.
        foreach (var c in customers.Where(c => c % 2 == 1))
            await app.CountAsync("""
                INSERT INTO recommendation_events (shop_id, event_type, request_id, customer_id, product_id, occurred_at)
                VALUES ($1, 'click', $2, $3, 9000, '2026-07-01T12:00:00Z')
                """, shopId, $"req-{c}", c);
        await app.CountAsync("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, customer_id, product_id, occurred_at)
            VALUES ($1, 'click', 'req-stale', $2, 9000, '2026-06-20T12:00:00Z')
            """, shopId, customers[1]);
        // One, two or three lines: the third line's variant has no cost, so that order's margin is unknown.
        var deliveries = customers.Select((c, i) => (Order: first + i, Customer: c, Lines: i % 3 + 1, Id: Guid.NewGuid().ToString())).ToArray();

        var answers = await Task.WhenAll(deliveries.Select(d =>
            app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(d.Order, customerId: d.Customer, lines: d.Lines).ToJsonString(), d.Id)));

        Assert.All(answers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await Transactions(deliveries.Select(d => d.Id).ToArray()));
        Assert.All(deliveries, d => Assert.Equal(1, app.StepRuns.GetValueOrDefault(d.Id)));
        foreach (var d in deliveries)
        {
            Assert.Equal(arms[d.Customer], await app.ScalarAsync(
                "SELECT arm FROM experiment_outcomes WHERE shop_id = $1 AND experiment = 'batch-steps' AND order_id = $2 AND customer_id = $3",
                shopId, d.Order, d.Customer));
            var subtotal = (decimal)(await app.ScalarAsync("SELECT subtotal_price FROM orders WHERE shop_id = $1 AND id = $2", shopId, d.Order))!;
            decimal? expected = d.Lines switch { 1 => subtotal - 2.5m, 2 => subtotal - 2.5m - 2 * 4m, _ => null };
            Assert.Equal(expected, (decimal?)await app.ScalarAsync(
                "SELECT margin FROM experiment_outcomes WHERE shop_id = $1 AND experiment = 'batch-steps' AND order_id = $2", shopId, d.Order));
            Assert.Equal(d.Customer % 2 == 1 ? $"req-{d.Customer}" : null, await app.ScalarAsync(
                "SELECT request_id FROM recommendation_attributions WHERE shop_id = $1 AND order_id = $2 AND line_id = $3 AND product_id = 9000",
                shopId, d.Order, d.Order * 100));
            Assert.Equal(d.Customer % 2 == 1 ? 1 : 0, await app.CountAsync(
                "SELECT count(*) FROM recommendation_attributions WHERE shop_id = $1 AND order_id = $2", shopId, d.Order));
            // Queued for scoring, or already scored (the scorer takes an order off the queue in the transaction that scores it).
            Assert.Equal(1, await app.CountAsync("""
                SELECT (SELECT count(*) FROM risk_pending WHERE shop_id = $1 AND order_id = $2) + (SELECT count(*) FROM risk_scores WHERE shop_id = $1 AND order_id = $2)
                """, shopId, d.Order));
        }
    }

    /// <summary>
    /// Two erasures and two data requests in one batch: each finds its customer's orders in a table of its own transaction, and
    /// each is carried out at the first try. Before, the second found the first's table still there, was answered 500 and
    /// left to Shopify's retries, which a burst of erasures could spend without it ever being done.
    /// </summary>
    [Fact]
    public async Task TwoErasuresAndTwoDataRequestsInOneBatch_AreEachCarriedOutAtTheFirstTry()
    {
        var orders = Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => (Order: 8_700_101L + i, Customer: 8_700_001L + i)).ToArray();
        var placed = await Task.WhenAll(orders.Select(o => app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(o.Order, o.Customer).ToJsonString())));
        Assert.All(placed, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));

        // As Shopify sends them: only a data request names its request (a redaction naming one is another topic's body).
        string Subject(string list, (long Order, long Customer) o, int request)
        {
            var body = new System.Text.Json.Nodes.JsonObject
            {
                ["shop_id"] = 1, ["shop_domain"] = Shop, ["customer"] = new System.Text.Json.Nodes.JsonObject { ["id"] = o.Customer },
                [list] = new System.Text.Json.Nodes.JsonArray(o.Order),
            };
            if (list == "orders_requested") body["data_request"] = new System.Text.Json.Nodes.JsonObject { ["id"] = request };
            return body.ToJsonString();
        }
        var deliveries = Enumerable.Range(0, GroupCommitFixture.Batch).Select(_ => Guid.NewGuid().ToString()).ToArray();
        var answers = await Task.WhenAll(
            app.SendWebhookAsync("customers/redact", Shop, Subject("orders_to_redact", orders[0], 0), deliveries[0]),
            app.SendWebhookAsync("customers/redact", Shop, Subject("orders_to_redact", orders[1], 0), deliveries[1]),
            app.SendWebhookAsync("customers/data_request", Shop, Subject("orders_requested", orders[2], 87_001), deliveries[2]),
            app.SendWebhookAsync("customers/data_request", Shop, Subject("orders_requested", orders[3], 87_002), deliveries[3]),
            app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(8_700_201, null).ToJsonString(), deliveries[4]),
            app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(8_700_202, null).ToJsonString(), deliveries[5]));

        Assert.All(answers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await Transactions(deliveries));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE id = ANY($1) AND email IS NOT NULL", (object)new[] { orders[0].Order, orders[1].Order }));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1 AND email IS NOT NULL", orders[4].Order));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM customer_data_requests WHERE data_request_id IN (87001, 87002) AND export IS NOT NULL"));
    }

    [Fact]
    public async Task CopiesOfADeliveryInOneBatch_AreStoredOnce_AndItsStepsRunOnce()
    {
        var (a, b) = (Guid.NewGuid().ToString(), Guid.NewGuid().ToString());
        var orderA = ShopifyPayloads.Order(8_400_001, lines: 4).ToJsonString();
        var orderB = ShopifyPayloads.Order(8_400_002, lines: 2).ToJsonString();

        var answers = await Task.WhenAll(Enumerable.Range(0, GroupCommitFixture.Batch).Select(i =>
            i % 2 == 0 ? app.SendWebhookAsync("orders/create", Shop, orderA, a) : app.SendWebhookAsync("orders/create", Shop, orderB, b)));

        Assert.All(answers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id IN ($1, $2)", a, b));
        Assert.Equal(1, await Orders(8_400_001));
        Assert.Equal(4, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = 8400001"));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = 8400002"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM group_commit_probe WHERE delivery_id = $1", a));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM group_commit_probe WHERE delivery_id = $1", b));
        Assert.Equal(1, await Transactions([a, b]));
    }

    /// <summary>
    /// A batch records its deliveries before writing their rows; a body replayed for another shop in the same batch must
    /// still meet the rows of the delivery before it, as it would one transaction later.
    /// </summary>
    [Fact]
    public async Task BodyReplayedForAnotherShop_InTheSameBatch_IsRefused()
    {
        const string other = "group-commit-other.myshopify.com";
        var otherId = await app.InstallShopAsync(other);
        var shopId = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", Shop))!;
        var order = ShopifyPayloads.Order(8_600_001, customerId: 8_600_101).ToJsonString();

        var answers = await Task.WhenAll(Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => i switch
        {
            0 => app.SendWebhookAsync("orders/create", Shop, order),
            1 => app.SendWebhookAsync("orders/create", other, order),
            _ => app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(8_600_001 + i).ToJsonString()),
        }));

        // Whichever came first in the batch holds the order; the other is refused and stored nothing.
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Forbidden], new[] { answers[0].StatusCode, answers[1].StatusCode }.Order());
        Assert.Equal(1, await Orders(8_600_001));
        var holder = answers[0].StatusCode == HttpStatusCode.OK ? shopId : otherId;
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = 8600001 AND shop_id = $1", holder));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = 8600101"));
        Assert.All(answers.Skip(2), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, await Transactions(await DeliveriesOf(8_600_001, 8_600_006)));
    }

    /// <summary>An order writes its customer too: a customer body replayed for another shop after it, in the same batch, is refused.</summary>
    [Fact]
    public async Task CustomerReplayedForAnotherShop_AfterAnOrderOfTheirsInTheSameBatch_IsRefused()
    {
        const string other = "group-commit-third.myshopify.com";
        var otherId = await app.InstallShopAsync(other);
        var order = app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(8_700_001, customerId: 8_700_101).ToJsonString());
        // Queued first (the batch then waits for five more).
        var batcher = app.Factory.Services.GetRequiredService<IngestBatcher>();
        for (var deadline = DateTime.UtcNow.AddSeconds(10); batcher.Waiting < 1 && DateTime.UtcNow < deadline;) await Task.Delay(10);
        await Task.Delay(100);
        var rest = Enumerable.Range(0, GroupCommitFixture.Batch - 1).Select(i => i == 0
            ? app.SendWebhookAsync("customers/update", other, ShopifyPayloads.Customer(8_700_101).ToJsonString())
            : app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(8_700_001 + i).ToJsonString())).ToArray();

        Assert.Equal(HttpStatusCode.OK, (await order).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await rest[0]).StatusCode);
        Assert.All(await Task.WhenAll(rest.Skip(1)), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM customers WHERE id = 8700101 AND shop_id = $1", otherId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = 8700101"));
        Assert.Equal(1, await Transactions(await DeliveriesOf(8_700_001, 8_700_005)));
    }

    [Fact]
    public async Task CopiesOfARefusedDelivery_InOneBatch_AreEachRefused()
    {
        const string other = "group-commit-fourth.myshopify.com";
        await app.InstallShopAsync(other);
        // No customer in common: the copies must share a segment of the batch, as nothing else separates them.
        var order = ShopifyPayloads.Order(8_800_001, customerId: null).ToJsonString();
        string Filler(int i) => ShopifyPayloads.Order(8_800_001 + i, customerId: 8_800_100 + i).ToJsonString();
        Assert.All(await Task.WhenAll(Enumerable.Range(0, GroupCommitFixture.Batch).Select(i =>
            app.SendWebhookAsync("orders/create", Shop, i == 0 ? order : Filler(i)))), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var replayed = Guid.NewGuid().ToString();

        var answers = await Task.WhenAll(Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => i < 2
            ? app.SendWebhookAsync("orders/updated", other, order, replayed)
            : app.SendWebhookAsync("orders/create", Shop, Filler(10 + i))));

        // Refused both times, never "delivered": the copy meets its original's outcome, as it would a moment later.
        Assert.Equal(HttpStatusCode.Forbidden, answers[0].StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, answers[1].StatusCode);
        Assert.All(answers.Skip(2), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", replayed));
        Assert.Equal(1, await Orders(8_800_001));
    }

    /// <summary>
    /// Two transactions that take the same rows in opposite orders deadlock, and PostgreSQL ends one of them after its
    /// deadlock timeout. When that is a batch of deliveries, the batch is written again: every delivery is stored once and
    /// answered 200, not 503 (which would have Shopify send the whole batch again), and operators see the retry counted.
    /// </summary>
    [Fact]
    public async Task BatchThatDeadlocksWithAnotherTransaction_IsWrittenAgain_AndEachDeliveryIsStoredOnce()
    {
        const long first = 8_900_101, second = 8_900_102; // customers: the batch writes the first, then waits on the second
        var orders = Enumerable.Range(0, GroupCommitFixture.Batch).Select(i => 8_900_001L + i).ToArray();
        var shopId = await app.CountAsync("SELECT id FROM shops WHERE domain = $1", Shop);
        long deadlocks = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == PluginApp.Operations.OperatorMetrics.MeterName && instrument.Name == "pluginapp.webhook.batch_retries")
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag is { Key: "reason", Value: "deadlock" }) Interlocked.Add(ref deadlocks, value);
        });
        listener.Start();

        await using var conn = await app.Db.OpenConnectionAsync();
        await using var other = await conn.BeginTransactionAsync(); // rolled back
        // Why a long deadlock timeout here: PostgreSQL ends the transaction whose timeout passes first, and on a busy machine
        // the batch's check could come after this one's even though the batch waited first (the full suite at 20:41 UTC, 3 Dec).
        await using (var patient = new NpgsqlCommand("SET LOCAL deadlock_timeout = '30s'", conn, other)) await patient.ExecuteNonQueryAsync();
        async Task InsertCustomer(long id)
        {
            await using var cmd = new NpgsqlCommand("INSERT INTO customers (shop_id, id) VALUES ($1, $2)", conn, other);
            cmd.Parameters.AddWithValue(shopId);
            cmd.Parameters.AddWithValue(id);
            await cmd.ExecuteNonQueryAsync();
        }
        await InsertCustomer(second);
        var batcher = app.Factory.Services.GetRequiredService<IngestBatcher>();
        var answers = orders.Take(GroupCommitFixture.Batch - 1)
            .Select(o => app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(o, customerId: first).ToJsonString())).ToList();
        for (var deadline = DateTime.UtcNow.AddSeconds(10); batcher.Waiting < GroupCommitFixture.Batch - 1 && DateTime.UtcNow < deadline;) await Task.Delay(10);
        answers.Add(app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(orders[^1], customerId: second).ToJsonString()));
        for (var deadline = DateTime.UtcNow.AddSeconds(10); DateTime.UtcNow < deadline;)
        {
            // Why waiting on this transaction, not any lock wait: had the second insert below come before the batch waits on
            // this transaction, this one would wait first and be the one PostgreSQL ends (seen once in the full suite).
            if (await app.CountAsync("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))", conn.ProcessID) > 0) break;
            await Task.Delay(10);
        }
        await InsertCustomer(first); // waits on the batch, which waits on this transaction: PostgreSQL ends the batch's
        await other.RollbackAsync();

        Assert.All(await Task.WhenAll(answers), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        foreach (var o in orders) Assert.Equal(1, await Orders(o));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM customers WHERE id = ANY($1)", (object)new[] { first, second }));
        Assert.True(Interlocked.Read(ref deadlocks) >= 1, "the retry was not counted");
    }

    private async Task<string[]> DeliveriesOf(long firstOrder, long lastOrder)
    {
        await using var cmd = app.Db.CreateCommand("SELECT delivery_id FROM webhook_deliveries WHERE (body->>'id')::bigint BETWEEN $1 AND $2");
        cmd.Parameters.AddWithValue(firstOrder);
        cmd.Parameters.AddWithValue(lastOrder);
        var ids = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) ids.Add(r.GetString(0));
        return ids.ToArray();
    }

    [Fact]
    public async Task Stop_WithDeliveriesWaitingForTheirBatch_StoresThemBeforeAnswering_AndRefusesLaterOnesWith503()
    {
        // A second instance whose batch would only close after ten seconds: stopping must not wait for it, nor drop it.
        await using var instance = app.CreateFactory(app.Database.ConnectionString, b =>
        {
            b.UseSetting("Webhooks:Ingest:MaxBatch", "64");
            b.UseSetting("Webhooks:Ingest:MaxWait", "00:00:10");
            b.UseSetting("Scheduling:Enabled", "false");
        });
        using var client = instance.CreateClient(new() { BaseAddress = new Uri("https://localhost") });
        var batcher = instance.Services.GetRequiredService<IngestBatcher>();
        var ids = Enumerable.Range(0, 3).Select(i => (Order: 8_500_001L + i, Delivery: Guid.NewGuid().ToString())).ToArray();

        var sending = ids.Select(x => app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(x.Order).ToJsonString(), x.Delivery, client: client)).ToArray();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (batcher.Waiting < ids.Length && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(ids.Length, batcher.Waiting);
        await batcher.StopAsync(CancellationToken.None);
        var answers = await Task.WhenAll(sending);
        var late = await app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(8_500_009).ToJsonString(), client: client);

        Assert.All(answers, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        foreach (var x in ids) Assert.Equal(1, await Orders(x.Order));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, late.StatusCode);
        Assert.True(late.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal(0, await Orders(8_500_009));
    }

    [Fact]
    public async Task IngestOptions_OutOfRange_StopTheAppFromStarting_NamingEveryBadValue()
    {
        var e = await app.StartRefusalAsync(b =>
        {
            b.UseSetting("Webhooks:Ingest:MaxBatch", "0");
            b.UseSetting("Webhooks:Ingest:MaxWait", "00:01:00");
            b.UseSetting("Webhooks:Ingest:Writers", "99");
        });

        Assert.Contains("Webhooks:Ingest:MaxBatch 0", e.ToString());
        Assert.Contains("Webhooks:Ingest:MaxWait 00:01:00", e.ToString());
        Assert.Contains("Webhooks:Ingest:Writers 99", e.ToString());
    }

    /// <summary>
    /// The batch keeps one plan per statement for a connection's life (until ANALYZE), made at its first use: on a fresh
    /// deploy, while the tables are nearly empty. The replay check of every delivery must still look ids up by index, or each
    /// delivery reads every other shop's orders and customers until autovacuum comes round (seen as the benchmark's largest cost).
    /// </summary>
    [Fact]
    public async Task DeliveryRecord_PlannedWhileTablesAreEmpty_LooksIdsUpByIndex()
    {
        await using var conn = await app.Db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        async Task<List<string>> Run(string sql)
        {
            await using var cmd = new NpgsqlCommand(sql, conn, tx);
            await using var r = await cmd.ExecuteReaderAsync();
            var rows = new List<string>();
            while (await r.ReadAsync()) rows.Add(r.GetValue(0).ToString()!);
            return rows;
        }
        foreach (var setting in IngestBatcher.PlanSettings) await Run(setting);
        await Run("PREPARE record_deliveries (text[], text[], text[], text[], text[], timestamptz[], timestamptz[], boolean[], boolean[], " +
                  "bytea[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], text[], bigint[], text[]) AS " +
                  WebhookIngestor.RecordSegmentSql);

        var plan = await Run("EXPLAIN EXECUTE record_deliveries('{d-1,d-2}', '{plan.myshopify.com,plan.myshopify.com}', " +
                             "'{orders/create,orders/create}', '{NULL,NULL}', '{NULL,NULL}', '{NULL,NULL}', ARRAY[now(), now()], " +
                             "'{false,false}', '{true,true}', ARRAY[convert_to('{}', 'UTF8'), convert_to('{}', 'UTF8')], '{NULL,NULL}', " +
                             "'{1,2}', '{1,11}', '{1}', '{2}', '{2}', '{3}', '{1}', '{k}', '{2}', '{t}', '{2,NULL}', ARRAY['{}', '{}'])");

        var all = string.Join("\n", plan);
        Assert.DoesNotMatch(@"Seq Scan on (orders|customers|products|checkouts|carts)\b", all);
        foreach (var (table, index) in new[] { ("orders", "orders_id_idx"), ("customers", "customers_id_idx"), ("products", "products_id_idx"),
                                               ("checkouts", "checkouts_token_idx"), ("carts", "carts_token_idx") })
            Assert.Matches($@"Index (Only )?Scan using {index} on {table}\b", all);
    }
}
