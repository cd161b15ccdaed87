using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Hangfire.Storage;
using PluginApp.Backfill;
using PluginApp.Tests.Infrastructure;
using ShopifyStandIn;
using WireMock.ResponseBuilders;

namespace PluginApp.Tests.Backfill;

public sealed class BackfillTests(AppFixture app) : IClassFixture<AppFixture>, IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bulk-").FullName;

    public Task InitializeAsync()
    {
        ServeStore(product: 910, orders: [1101, 1102], refund: 5501);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Bulk files of one store. Each test's store has ids of its own: Shopify's ids are unique across shops, and the app
    /// refuses a webhook whose resource is already held for another shop.
    /// </summary>
    private void ServeStore(long product, long[] orders, long refund)
    {
        // Children appear before and after their parents, as Shopify allows.
        var suffix = $"{product}";
        Write($"products-{suffix}.jsonl",
            $$$"""{"id":"gid://shopify/ProductVariant/{{{product}}}1","title":"Small","sku":"MUG-S","price":"12.00","compareAtPrice":null,"inventoryQuantity":4,"inventoryPolicy":"DENY","updatedAt":"2026-07-01T00:00:00Z","inventoryItem":{"id":"gid://shopify/InventoryItem/{{{product}}}01","unitCost":{"amount":"4.25","currencyCode":"USD"}},"__parentId":"gid://shopify/Product/{{{product}}}"}""",
            $$$$"""{"id":"gid://shopify/Product/{{{{product}}}}","title":"Mug","handle":"mug","productType":"Mugs","vendor":"Acme","status":"ACTIVE","tags":["kitchen","gift"],"featuredMedia":{"preview":{"image":{"url":"https://cdn.example.com/mug.jpg"}}},"createdAt":"2026-06-01T00:00:00Z","updatedAt":"2026-07-01T00:00:00Z"}""",
            $$$"""{"id":"gid://shopify/Collection/77","__parentId":"gid://shopify/Product/{{{product}}}"}""",
            $$$"""{"id":"gid://shopify/ProductVariant/{{{product}}}2","title":"Large","sku":"MUG-L","price":"15.00","compareAtPrice":"18.00","inventoryQuantity":0,"inventoryPolicy":"DENY","updatedAt":"2026-07-01T00:00:00Z","inventoryItem":{"id":"gid://shopify/InventoryItem/{{{product}}}02","unitCost":null},"__parentId":"gid://shopify/Product/{{{product}}}"}""");
        Write($"customers-{suffix}.jsonl",
            """{"id":"gid://shopify/Customer/7001","firstName":"Ada","lastName":"Lovelace","state":"ENABLED","tags":[],"createdAt":"2026-06-01T10:00:00Z","updatedAt":"2026-07-01T14:00:00Z","defaultEmailAddress":{"emailAddress":"ada@example.com","marketingState":"SUBSCRIBED","marketingUpdatedAt":null},"defaultPhoneNumber":{"phoneNumber":"+442071838750"}}""");
        Write($"orders-{suffix}.jsonl",
            Order(orders[0]), Line(orders[0], 0), Line(orders[0], 1),
            Line(orders[1], 0), Order(orders[1], refund), Line(orders[1], 1));
        app.Shopify.Admin.ServeBulk("products", Path.Combine(_dir, $"products-{suffix}.jsonl"));
        app.Shopify.Admin.ServeBulk("customers", Path.Combine(_dir, $"customers-{suffix}.jsonl"));
        app.Shopify.Admin.ServeBulk("orders", Path.Combine(_dir, $"orders-{suffix}.jsonl"));
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    private void Write(string name, params string[] lines) => File.WriteAllLines(Path.Combine(_dir, name), lines);

    // The same order as ShopifyPayloads.Order(id) sends by webhook: same ids, same updated_at.
    private static string Order(long id, long? refund = null)
    {
        var o = new JsonObject
        {
            ["id"] = $"gid://shopify/Order/{id}", ["name"] = $"#{id}", ["email"] = "ada@example.com",
            ["createdAt"] = "2026-07-02T15:59:00Z", ["updatedAt"] = "2026-07-02T16:00:00Z", ["processedAt"] = "2026-07-02T15:59:00Z",
            ["cancelledAt"] = null, ["cancelReason"] = null, ["displayFinancialStatus"] = "PAID", ["displayFulfillmentStatus"] = "UNFULFILLED",
            ["currencyCode"] = "USD", ["taxesIncluded"] = false, ["test"] = false, ["tags"] = new JsonArray(), ["sourceName"] = "web", ["clientIp"] = "203.0.113.7",
            ["discountCodes"] = new JsonArray("WELCOME10"), ["customer"] = new JsonObject { ["id"] = "gid://shopify/Customer/7001" },
            ["totalPriceSet"] = Money("45.00"), ["subtotalPriceSet"] = Money("40.00"), ["totalDiscountsSet"] = Money("0.00"), ["totalTaxSet"] = Money("0.00"),
            ["billingAddress"] = new JsonObject { ["countryCodeV2"] = "US" }, ["shippingAddress"] = new JsonObject { ["countryCodeV2"] = "CA" },
            ["refunds"] = refund is { } refundId ? new JsonArray(new JsonObject
            {
                ["id"] = $"gid://shopify/Refund/{refundId}", ["createdAt"] = "2026-07-05T13:00:00Z", ["processedAt"] = "2026-07-05T13:00:00Z", ["note"] = "Damaged", ["totalRefundedSet"] = Money("10.00"),
                ["refundLineItems"] = new JsonObject { ["nodes"] = new JsonArray(new JsonObject
                {
                    ["lineItem"] = new JsonObject { ["id"] = $"gid://shopify/LineItem/{id * 100}" }, ["quantity"] = 1, ["restockType"] = "RETURN", ["subtotalSet"] = Money("10.00"),
                }) },
            }) : new JsonArray(),
        };
        return o.ToJsonString();
    }

    private static string Line(long order, int i) => new JsonObject
    {
        ["id"] = $"gid://shopify/LineItem/{order * 100 + i}", ["sku"] = $"SKU-{i}", ["title"] = $"Product {i}", ["quantity"] = i + 1,
        ["product"] = new JsonObject { ["id"] = $"gid://shopify/Product/{9000 + i}" }, ["variant"] = new JsonObject { ["id"] = $"gid://shopify/ProductVariant/{19000 + i}" },
        ["originalUnitPriceSet"] = Money($"{10 + i * 5}.00"), ["totalDiscountSet"] = Money("0.00"), ["__parentId"] = $"gid://shopify/Order/{order}",
    }.ToJsonString();

    private static JsonObject Money(string amount) => new() { ["shopMoney"] = new JsonObject { ["amount"] = amount, ["currencyCode"] = "USD" } };

    /// <summary>Shopify refuses the shop's orders bulk query (the first <paramref name="times"/> times) as it does when too many run.</summary>
    private static Func<GraphQLCall, StandInAnswer?> RefuseOrdersQuery(string shop, int times = int.MaxValue)
    {
        var refused = 0;
        return call => call.Shop == shop && call.Query.Contains("bulkOperationRunQuery", StringComparison.Ordinal)
            && (call.Variables["query"]?.GetValue<string>() ?? "").Contains("orders", StringComparison.Ordinal) && Interlocked.Increment(ref refused) <= times
            ? StandInAnswer.Json(new { data = new { bulkOperationRunQuery = new { bulkOperation = (object?)null,
                userErrors = new[] { new { field = (string?)null, message = "Too many bulk operations are running" } } } } })
            : null;
    }

    private async Task RunBackfillAsync(string shop) =>
        await app.Factory.Services.GetRequiredService<BackfillService>().RunAsync(shop, CancellationToken.None);

    /// <summary>The Operations page's Import again, as the merchant's click sends it.</summary>
    private HttpRequestMessage ImportAgain(string shop)
    {
        var request = app.AdminGet("/api/admin/backfill/retry", shop);
        request.Method = HttpMethod.Post;
        return request;
    }

    /// <summary>Waits (30 s at most) for the shop's queued import to have left <paramref name="count"/> completed runs.</summary>
    private async Task WaitForCompletedRunsAsync(long shopId, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId) < count)
            await Task.Delay(200);
    }

    /// <summary>
    /// A consent webhook that came while the backfill's snapshot was read is newer than the snapshot's consent: the merge keeps
    /// it (she withdrew on 3 July; the snapshot says she consented on 1 July, in a customer row newer than ours). Until 6 Dec
    /// 2026 the snapshot's consent was written over it. A snapshot's consent without a time does not undo a dated one either.
    /// And a customer whose webhook (which carries no consent) is newer than the snapshot gets the snapshot's consent all the same.
    /// A withdrawal without a time, which keeps the date of the consent it withdrew, is not undone by the snapshot of that
    /// consent (until 7 Dec 2026 it was).
    /// </summary>
    [Fact]
    public async Task Backfill_ReadBeforeAConsentWebhook_KeepsTheNewerConsent()
    {
        const string shop = "backfill-consent.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 961, orders: [29611, 29612], refund: 59611);
        Write("customers-961.jsonl",
            """{"id":"gid://shopify/Customer/7961","firstName":"Ada","lastName":"Lovelace","state":"ENABLED","tags":["vip"],"createdAt":"2026-06-01T10:00:00Z","updatedAt":"2026-07-04T14:00:00Z","defaultEmailAddress":{"emailAddress":"ada@example.com","marketingState":"SUBSCRIBED","marketingUpdatedAt":"2026-07-01T10:00:00Z"},"defaultPhoneNumber":null}""",
            """{"id":"gid://shopify/Customer/7962","firstName":"Bo","lastName":"Lovelace","state":"ENABLED","tags":[],"createdAt":"2026-06-01T10:00:00Z","updatedAt":"2026-07-04T14:00:00Z","defaultEmailAddress":{"emailAddress":"bo@example.com","marketingState":"SUBSCRIBED","marketingUpdatedAt":"2026-06-01T10:00:00Z"},"defaultPhoneNumber":null}""",
            """{"id":"gid://shopify/Customer/7963","firstName":"Cy","lastName":"Lovelace","state":"ENABLED","tags":[],"createdAt":"2026-06-01T10:00:00Z","updatedAt":"2026-07-04T14:00:00Z","defaultEmailAddress":{"emailAddress":"cy@example.com","marketingState":"NOT_SUBSCRIBED","marketingUpdatedAt":null},"defaultPhoneNumber":null}""",
            """{"id":"gid://shopify/Customer/7965","firstName":"Ed","lastName":"Lovelace","state":"ENABLED","tags":[],"createdAt":"2026-06-01T10:00:00Z","updatedAt":"2026-07-04T14:00:00Z","defaultEmailAddress":{"emailAddress":"ed@example.com","marketingState":"SUBSCRIBED","marketingUpdatedAt":"2026-07-01T10:00:00Z"},"defaultPhoneNumber":null}""",
            """{"id":"gid://shopify/Customer/7964","firstName":"Di","lastName":"Lovelace","state":"ENABLED","tags":[],"createdAt":"2026-06-01T10:00:00Z","updatedAt":"2026-07-04T14:00:00Z","defaultEmailAddress":{"emailAddress":"di@example.com","marketingState":"SUBSCRIBED","marketingUpdatedAt":"2026-07-01T10:00:00Z"},"defaultPhoneNumber":null}""");
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers_email_marketing_consent/update", shop,
            ShopifyPayloads.Consent(7964, "subscribed", "2026-07-01T10:00:00Z").ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers_email_marketing_consent/update", shop,
            ShopifyPayloads.Consent(7964, "unsubscribed", null).ToJsonString())).StatusCode);
        // One whose consent was never dated here (webhook customers carry none) withdraws without a time.
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/create", shop, ShopifyPayloads.Customer(7965, email: "ed@example.com").ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers_email_marketing_consent/update", shop,
            ShopifyPayloads.Consent(7965, "unsubscribed", null).ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers_email_marketing_consent/update", shop,
            ShopifyPayloads.Consent(7963, "subscribed", "2026-07-02T10:00:00Z").ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers_email_marketing_consent/update", shop,
            ShopifyPayloads.Consent(7961, "unsubscribed", "2026-07-03T10:00:00Z").ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/update", shop,
            ShopifyPayloads.Customer(7962, email: "bo@example.com", updatedAt: "2026-07-05T10:00:00Z").ToJsonString())).StatusCode);

        await RunBackfillAsync(shop);

        Assert.Equal(1, await app.CountAsync(
            "SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7961 AND accepts_marketing = false AND tags = 'vip' AND email = 'ada@example.com'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7962 AND accepts_marketing AND updated_at > '2026-07-05'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7963 AND accepts_marketing AND email = 'cy@example.com'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7964 AND accepts_marketing = false AND email = 'di@example.com'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7965 AND accepts_marketing = false AND email = 'ed@example.com'", shopId));
    }

    [Fact]
    public async Task Backfill_BulkJsonlWithNestedChildren_LandsInTheRightTables()
    {
        const string shop = "backfill-a.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);

        await RunBackfillAsync(shop);

        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM variants WHERE shop_id = $1 AND product_id = 910", shopId));
        Assert.Equal(4.25m, await app.ScalarAsync("SELECT unit_cost FROM variants WHERE shop_id = $1 AND id = 9101", shopId));
        Assert.Equal("active", await app.ScalarAsync("SELECT status FROM products WHERE shop_id = $1 AND id = 910", shopId));
        // Read from the fields Shopify answers today (defaultEmailAddress, defaultPhoneNumber, featuredMedia), not from the
        // deprecated email, phone, emailMarketingConsent and featuredImage the import asked for until 7 Dec 2026.
        Assert.Equal(1, await app.CountAsync(
            "SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7001 AND accepts_marketing AND email = 'ada@example.com' AND phone = '+442071838750'", shopId));
        Assert.Equal("https://cdn.example.com/mug.jpg", await app.ScalarAsync("SELECT image_url FROM products WHERE shop_id = $1 AND id = 910", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND customer_id = 7001 AND total_price = 45.00 AND financial_status = 'paid'", shopId));
        Assert.Equal(4, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE shop_id = $1 AND line_item_id = 110200", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM product_collections WHERE shop_id = $1 AND product_id = 910 AND collection_id = 77", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed' AND rows_done = 11", shopId));
    }

    /// <summary>
    /// Import again while an import runs (its lock held by a worker) is refused; once no worker holds the run, as when its
    /// job was lost or deleted from the Hangfire dashboard, the same request resumes it rather than leaving it running for
    /// ever. Until 6 Dec 2026 a run left running could not be imported again at all.
    /// </summary>
    [Fact]
    public async Task Backfill_ImportAgain_IsRefusedWhileAnImportRuns_AndResumesARunNoWorkerHolds()
    {
        const string shop = "backfill-stuck.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 986, orders: [29861, 29862], refund: 59861);
        await RunBackfillAsync(shop);
        await app.ScalarAsync("UPDATE backfill_runs SET state = 'running', finished_at = NULL WHERE shop_id = $1", shopId);

        await using (await app.Factory.Services.GetRequiredService<PluginApp.Jobs.JobLocks>().AcquireAsync(BackfillService.LockKey(shop), CancellationToken.None))
        {
            var refused = await app.Client.SendAsync(ImportAgain(shop));
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            // Said in the problem's detail, which the page shows (until 8 Dec 2026 a bare string: "The app answered 409.").
            Assert.Equal("An import runs now; import again once it has finished.",
                System.Text.Json.JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString());
        }
        Assert.Equal(HttpStatusCode.Accepted, (await app.Client.SendAsync(ImportAgain(shop))).StatusCode);

        await WaitForCompletedRunsAsync(shopId, 1);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1", shopId)); // the same run, resumed
    }

    /// <summary>
    /// Shopify's bulk export refuses a connection inside a list, and a refund's line items are a connection inside the
    /// order's list of refunds: the orders' query asks for the refunds alone, and the backfill asks for their lines after,
    /// a few refunds at a time, paging a refund with more lines than the first page. Until 6 Dec 2026 the orders' query
    /// asked for them in the file, and Shopify refused it: no store's order history came in (the stand-in now refuses such
    /// a query as Shopify does).
    /// </summary>
    [Fact]
    public async Task Backfill_AsksForRefundLinesOutsideTheBulkQuery_PagingARefundWithManyLines()
    {
        const string shop = "backfill-refund-lines.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 995, orders: [29951, 29952], refund: 59951);
        const long order = 29953;
        var many = JsonNode.Parse(Order(order))!.AsObject();
        many["refunds"] = new JsonArray(new JsonObject
        {
            ["id"] = "gid://shopify/Refund/59953", ["createdAt"] = "2026-07-05T13:00:00Z", ["note"] = null, ["totalRefundedSet"] = Money("300.00"),
            ["refundLineItems"] = new JsonObject { ["nodes"] = new JsonArray([.. Enumerable.Range(0, 30).Select(i => (JsonNode)new JsonObject
            {
                ["id"] = $"gid://shopify/RefundLineItem/{59953 * 100 + i}", ["lineItem"] = new JsonObject { ["id"] = $"gid://shopify/LineItem/{order * 100 + i}" },
                ["quantity"] = 1, ["restockType"] = "NO_RESTOCK", ["subtotalSet"] = Money("10.00"),
            })]) },
        });
        File.AppendAllLines(Path.Combine(_dir, "orders-995.jsonl"), [many.ToJsonString(), .. Enumerable.Range(0, 30).Select(i => Line(order, i))]);

        await RunBackfillAsync(shop);

        var ordersQuery = app.Shopify.Requests.Where(r => r.Shop == shop && (r.Body["query"]?.GetValue<string>() ?? "").Contains("bulkOperationRunQuery", StringComparison.Ordinal))
            .Select(r => r.Body["variables"]!["query"]!.GetValue<string>()).Single(q => q.Contains("orders(", StringComparison.Ordinal));
        Assert.Null(ShopifyStandIn.DefaultAdminApi.ConnectionInList(ordersQuery));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE shop_id = $1 AND refund_id = 59951 AND line_item_id = 2995200 AND subtotal = 10", shopId));
        Assert.Equal(30, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE shop_id = $1 AND refund_id = 59953 AND order_id = $2 AND restock_type = 'no_restock'", shopId, order));
        var asked = app.Shopify.Requests.Where(r => r.Shop == shop && (r.Body["query"]?.GetValue<string>() ?? "").Contains("refundLineItems(", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, asked.Count); // both refunds at once, then the second page of the long one
        Assert.Equal("gid://shopify/Refund/59953", asked[1].Body["variables"]!["ids"]![0]!.GetValue<string>());
        // Nothing is asked again when every refund has its lines.
        await app.ScalarAsync("UPDATE backfill_runs SET state = 'failed' WHERE shop_id = $1", shopId);
        await RunBackfillAsync(shop);
        Assert.Equal(2, app.Shopify.Requests.Count(r => r.Shop == shop && (r.Body["query"]?.GetValue<string>() ?? "").Contains("refundLineItems(", StringComparison.Ordinal)));
    }

    /// <summary>The old orders' query shape is what the stand-in refuses, as Shopify does.</summary>
    [Fact]
    public void StandIn_RefusesAConnectionInsideAList_AsShopifysBulkExportDoes()
    {
        Assert.Equal("refunds.refundLineItems", ShopifyStandIn.DefaultAdminApi.ConnectionInList(
            "{ orders { edges { node { id refunds { id refundLineItems(first: 250) { nodes { quantity } } } lineItems { edges { node { id } } } } } } }"));
        Assert.Equal("refunds.refundLineItems", ShopifyStandIn.DefaultAdminApi.ConnectionInList(
            "{ orders { edges { node { refunds { refundLineItems(first: 5) { pageInfo { hasNextPage } nodes { quantity } } } } } } }"));
        Assert.Null(ShopifyStandIn.DefaultAdminApi.ConnectionInList("{ orders { edges { node { id refunds { id totalRefundedSet { shopMoney { amount } } } } } } }"));
    }

    /// <summary>
    /// Shopify refusing the refund lines' query (its errors) leaves those refunds without lines and the import completed:
    /// the store's history is merged by then, and a run failed there would be retried whole and never train.
    /// </summary>
    [Fact]
    public async Task Backfill_WhoseRefundLinesShopifyRefuses_CompletesWithoutThem()
    {
        const string shop = "backfill-refund-lines-refused.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 996, orders: [29961, 29962], refund: 59961);
        app.Shopify.GraphQL = call => call.Shop == shop && call.Query.Contains("refundLineItems(", StringComparison.Ordinal)
            ? StandInAnswer.Json(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["message"] = "Internal error" }) }) : null;

        try { await RunBackfillAsync(shop); }
        finally { app.Shopify.GraphQL = null; }

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1 AND id = 59961", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task Backfill_StartsEveryPhasesBulkQueryAtOnce_AndStagesOrdersWhileProductsAreStillBeingBuilt()
    {
        const string shop = "backfill-at-once.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 940, orders: [2401, 2402], refund: 5504);
        var (productQueries, orderQueries) = (app.Shopify.Admin.BulkOperationsStarted("products"), app.Shopify.Admin.BulkOperationsStarted("orders"));
        app.Shopify.Admin.HoldBulk("products"); // Shopify is still building the products file
        try
        {
            var backfill = RunBackfillAsync(shop);
            const string orders = "SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND (staged ->> 'orders')::int8 > 0 AND (staged ->> 'customers')::int8 > 0";
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !backfill.IsCompleted && await app.CountAsync(orders, shopId) == 0) await Task.Delay(50);

            // The orders and customers files are staged while products' is being built; nothing is merged out of order.
            Assert.Equal(1, await app.CountAsync(orders, shopId));
            Assert.Equal(productQueries + 1, app.Shopify.Admin.BulkOperationsStarted("products"));
            Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
            Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1", shopId));
            // The admin names the phase the run waits for.
            var shown = await BackfillAdminApi.RunsAsync(app.Factory.Services.GetRequiredService<Npgsql.NpgsqlDataSource>(), shopId, CancellationToken.None);
            Assert.Equal(("running", "products"), (shown[0].State, shown[0].Phase));

            app.Shopify.Admin.ReleaseBulk("products");
            await backfill;
        }
        finally { app.Shopify.Admin.ReleaseBulk("products"); }

        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM products WHERE shop_id = $1 AND id = 940", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed' AND staged = '{}' AND bulk_operations = '{}'", shopId));
        Assert.Equal(orderQueries + 1, app.Shopify.Admin.BulkOperationsStarted("orders"));
    }

    [Fact]
    public async Task Backfill_WhoseShopifyCallTimesOut_IsShownFailed_NotRunning()
    {
        const string shop = "backfill-timeouts.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await using var impatient = app.CreateFactory(app.Database.ConnectionString, b => b.UseSetting("Shopify:AdminApiTimeout", "00:00:01"));
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithDelay(TimeSpan.FromSeconds(3)).WithStatusCode(200), times: 40);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            impatient.Services.GetRequiredService<BackfillService>().RunAsync(shop, CancellationToken.None));

        var shown = await BackfillAdminApi.RunsAsync(app.Factory.Services.GetRequiredService<Npgsql.NpgsqlDataSource>(), shopId, CancellationToken.None);
        Assert.Equal("failed", shown[0].State);
    }

    [Fact]
    public async Task Backfill_WhoseOrdersQueryIsRefused_KeepsTheOtherPhases_AndTheRetryQueriesOrdersAlone()
    {
        const string shop = "backfill-refused.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 950, orders: [2501, 2502], refund: 5505);
        var (productQueries, orderQueries) = (app.Shopify.Admin.BulkOperationsStarted("products"), app.Shopify.Admin.BulkOperationsStarted("orders"));
        app.Shopify.GraphQL = RefuseOrdersQuery(shop, times: 1);
        try
        {
            var failure = await Assert.ThrowsAnyAsync<Exception>(() => RunBackfillAsync(shop));
            Assert.Contains("Too many bulk operations", failure.Message);
            // The phases whose files came are merged and kept; nothing of theirs is left staged.
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'failed' AND phases_done = '{products,customers}'", shopId));
            Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM backfill_lines l JOIN backfill_runs r ON r.id = l.run_id WHERE r.shop_id = $1", shopId));

            await RunBackfillAsync(shop);
        }
        finally { app.Shopify.GraphQL = null; }

        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed' AND attempts = 2", shopId));
        Assert.Equal(productQueries + 1, app.Shopify.Admin.BulkOperationsStarted("products")); // not queried again
        Assert.Equal(orderQueries + 1, app.Shopify.Admin.BulkOperationsStarted("orders"));
    }

    /// <summary>
    /// Shopify shows an app a store's last 60 days of orders unless the store granted read_all_orders: the import asks for
    /// what it will get (60 days, or the configured 365 with the permission), and the Operations page says which and why.
    /// </summary>
    [Theory]
    [InlineData(false, 60, 990L)]
    [InlineData(true, 365, 991L)]
    public async Task Backfill_AsksForTheOrdersShopifyShowsTheApp_AndTheOperationsPageSaysHowFarBack(bool granted, int days, long product)
    {
        var shop = $"backfill-history-{days}.myshopify.com";
        var configured = app.Factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PluginApp.Shopify.ShopifyOptions>>().Value.Scopes;
        await app.InstallShopAsync(shop, scopes: granted ? configured + ",read_all_orders" : configured);
        ServeStore(product: product, orders: [product * 10 + 1, product * 10 + 2], refund: product * 10 + 3);

        await RunBackfillAsync(shop);

        var ordersQuery = app.Shopify.Requests.Where(r => r.Shop == shop && (r.Body["query"]?.GetValue<string>() ?? "").Contains("bulkOperationRunQuery", StringComparison.Ordinal))
            .Select(r => r.Body["variables"]!["query"]!.GetValue<string>()).Single(q => q.Contains("orders(", StringComparison.Ordinal));
        Assert.Contains($"created_at:>={app.Clock.GetUtcNow().AddDays(-days):yyyy-MM-dd}", ordersQuery);
        var page = await (await app.Client.GetAsync($"/admin/operations?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}")).Content.ReadAsStringAsync();
        Assert.Contains($"the orders of the last {days} days are imported.", page);
        Assert.Equal(!granted, page.Contains("this store has not granted", StringComparison.Ordinal));
    }

    /// <summary>
    /// An import that failed before the merchant uninstalled is not resumed by the import of her next install: that one reads
    /// the whole store anew (what changed while the app was away was not stored). Until 7 Dec 2026 it resumed the old run,
    /// its products phase marked done and not read again. A run of the earlier install still marked running (stopped by a
    /// shutdown) is closed as failed: the new-orders training waits for a running import.
    /// </summary>
    [Fact]
    public async Task Backfill_OfAReinstall_StartsAnew_NotFromTheRunItsLastInstallLeft()
    {
        const string shop = "backfill-reinstall.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 981, orders: [2811, 2812], refund: 5518);
        var productQueries = app.Shopify.Admin.BulkOperationsStarted("products");
        app.Shopify.GraphQL = RefuseOrdersQuery(shop);
        try { await Assert.ThrowsAnyAsync<Exception>(() => RunBackfillAsync(shop)); }
        finally { app.Shopify.GraphQL = null; }
        Assert.Equal(productQueries + 1, app.Shopify.Admin.BulkOperationsStarted("products"));

        await app.ScalarAsync("UPDATE backfill_runs SET state = 'running' WHERE shop_id = $1", shopId); // as a shutdown leaves it
        await app.ScalarAsync("UPDATE shops SET uninstalled_at = $2 WHERE id = $1", shopId, app.Clock.GetUtcNow());
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        try
        {
            await app.InstallShopAsync(shop);
            await RunBackfillAsync(shop);
        }
        finally { app.Clock.Advance(TimeSpan.FromMinutes(-1)); }

        Assert.Equal(productQueries + 2, app.Shopify.Admin.BulkOperationsStarted("products")); // the store read anew
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'failed'", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task Backfill_ThatFailedForGood_IsImportedAgainFromTheOperationsPage_WhereItStopped()
    {
        const string shop = "backfill-import-again.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 980, orders: [2801, 2802], refund: 5508);
        var (productQueries, orderQueries) = (app.Shopify.Admin.BulkOperationsStarted("products"), app.Shopify.Admin.BulkOperationsStarted("orders"));
        app.Shopify.GraphQL = RefuseOrdersQuery(shop);
        async Task<string> OperationsPage() =>
            await (await app.Client.GetAsync($"/admin/operations?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}")).Content.ReadAsStringAsync();
        try
        {
            // The job's last retry failed as well: the run stays failed, and nothing queues it again.
            await Assert.ThrowsAnyAsync<Exception>(() => RunBackfillAsync(shop));
        }
        finally { app.Shopify.GraphQL = null; }
        var page = await OperationsPage();
        Assert.Contains("Too many bulk operations", page);
        Assert.Contains("Import again", page);

        Assert.Equal(HttpStatusCode.Accepted, (await app.Client.SendAsync(ImportAgain(shop))).StatusCode);

        await WaitForCompletedRunsAsync(shopId, 1);
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1", shopId)); // the same run, resumed
        Assert.Equal(productQueries + 1, app.Shopify.Admin.BulkOperationsStarted("products")); // not imported twice
        Assert.Equal(orderQueries + 1, app.Shopify.Admin.BulkOperationsStarted("orders"));
        page = await OperationsPage();
        Assert.DoesNotContain("The latest import failed", page);
        Assert.Contains("Importing again reads the store from Shopify once more", page); // a whole new import now, not a resumption
    }

    /// <summary>
    /// A merchant imports a store that was imported before again, from the Operations page: the orders the app missed come
    /// in, a customer's email consent that a webhook of the app before 6 Dec 2026 wrote over comes back, and what a newer
    /// webhook brought stands (the order cancelled after the snapshot stays cancelled). Asked twice before it finished, it
    /// imports once. Until 6 Dec 2026 only a failed import could be imported again, and such a store stayed as it was.
    /// </summary>
    [Fact]
    public async Task Backfill_OfAnImportedStore_IsImportedAgainFromTheOperationsPage_AddingWhatWasMissedAndKeepingNewerWebhooks()
    {
        const string shop = "backfill-again.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 985, orders: [29851, 29852], refund: 59851);
        await RunBackfillAsync(shop);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/cancelled", shop,
            ShopifyPayloads.Order(29851, updatedAt: "2026-07-03T12:00:00-04:00", cancelledAt: "2026-07-03T11:00:00-04:00").ToJsonString())).StatusCode);
        // What a customer webhook of the app before 6 Dec 2026 wrote (such webhooks carry no consent since API 2025-01).
        await app.ScalarAsync("UPDATE customers SET accepts_marketing = NULL, marketing_consent_at = NULL WHERE shop_id = $1 AND id = 7001", shopId);
        ServeStore(product: 985, orders: [29853, 29852], refund: 59851); // an order the webhooks missed
        var (productQueries, orderQueries) = (app.Shopify.Admin.BulkOperationsStarted("products"), app.Shopify.Admin.BulkOperationsStarted("orders"));
        var askedAt = app.Clock.GetUtcNow();
        Assert.Contains("Importing again reads the store from Shopify once more",
            await (await app.Client.GetAsync($"/admin/operations?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}")).Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.Accepted, (await app.Client.SendAsync(ImportAgain(shop))).StatusCode);

        await WaitForCompletedRunsAsync(shopId, 2);
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
        Assert.Equal(3, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 29851 AND cancelled_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND id = 7001 AND accepts_marketing", shopId));
        Assert.Equal((productQueries + 1, orderQueries + 1), (app.Shopify.Admin.BulkOperationsStarted("products"), app.Shopify.Admin.BulkOperationsStarted("orders")));

        // The same request again (a second click, or its job run twice): the import that completed since answers it.
        Assert.False(await app.Factory.Services.GetRequiredService<BackfillService>().RunQueuedAsync(shop, askedAt, CancellationToken.None));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1", shopId));
        Assert.Equal(orderQueries + 1, app.Shopify.Admin.BulkOperationsStarted("orders"));
    }

    /// <summary>
    /// An order Shopify deleted while the import ran (the bulk operation's file, written before, still holds it) is not
    /// imported: neither the order, nor its lines, nor its refund. The orders/delete webhook came first, and an import must
    /// not undo it.
    /// </summary>
    [Fact]
    public async Task Backfill_OfAnOrderDeletedWhileItRan_DoesNotBringItBack()
    {
        const string shop = "backfill-deleted-order.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 986, orders: [29861, 29862], refund: 59862);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/delete", shop,
            StoreReplay.ShopifyShapes.OrderDeletion(29862).ToJsonString())).StatusCode);

        await RunBackfillAsync(shop);

        Assert.Equal(29861L, await app.ScalarAsync("SELECT id FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1 AND order_id = 29861", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1 AND order_id = 29862", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// The staging writes lines to PostgreSQL in 64 KB messages: a file of many messages, a line longer than one message,
    /// text beyond ASCII, Windows line ends and a NUL escape (which jsonb refuses) must all land as they came.
    /// </summary>
    [Fact]
    public async Task Backfill_OfFilesLargerThanItsBuffers_StagesEveryLineWhole()
    {
        const string shop = "backfill-large.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var longTitle = "Crème brûlée set 🍮 " + new string('é', 70_000); // 140 KB of UTF-8 in one line
        Write("products-large.jsonl",
            $$$"""{"id":"gid://shopify/Product/930","title":"{{{longTitle}}}","handle":"creme","productType":"Kitchen","vendor":"Acme","status":"ACTIVE","tags":[],"createdAt":"2026-06-01T00:00:00Z","updatedAt":"2026-07-01T00:00:00Z"}""" + "\r",
            $$$"""{"id":"gid://shopify/Product/931","title":"Mug\u0000 with a NUL","handle":"mug-nul","productType":"Mugs","vendor":"Acme","status":"ACTIVE","tags":[],"createdAt":"2026-06-01T00:00:00Z","updatedAt":"2026-07-01T00:00:00Z"}""");
        // A byte that is not UTF-8 (PostgreSQL refuses it; the line is read as text, the byte as U+FFFD, and the phase goes on).
        using (var products = File.Open(Path.Combine(_dir, "products-large.jsonl"), FileMode.Append))
        {
            products.Write(System.Text.Encoding.UTF8.GetBytes("""{"id":"gid://shopify/Product/932","title":"Bad """));
            products.WriteByte(0xFF);
            products.Write(System.Text.Encoding.UTF8.GetBytes(""" byte","handle":"bad","productType":"Mugs","vendor":"Acme","status":"ACTIVE","tags":[],"createdAt":"2026-06-01T00:00:00Z","updatedAt":"2026-07-01T00:00:00Z"}""" + "\n"));
        }
        Write("customers-large.jsonl");
        var orders = Enumerable.Range(0, 400).Select(i => 3_000_000L + i).ToArray();
        Write("orders-large.jsonl", orders.SelectMany(o => new[] { Order(o), Line(o, 0), Line(o, 1) }).ToArray());
        Assert.True(new FileInfo(Path.Combine(_dir, "orders-large.jsonl")).Length > 4 * 65536);
        app.Shopify.Admin.ServeBulk("products", Path.Combine(_dir, "products-large.jsonl"));
        app.Shopify.Admin.ServeBulk("customers", Path.Combine(_dir, "customers-large.jsonl"));
        app.Shopify.Admin.ServeBulk("orders", Path.Combine(_dir, "orders-large.jsonl"));
        await app.ScalarAsync("ANALYZE order_lines"); // the planner's statistics: order lines without this shop's

        await RunBackfillAsync(shop);

        Assert.Equal(longTitle, await app.ScalarAsync("SELECT title FROM products WHERE shop_id = $1 AND id = 930", shopId));
        Assert.Equal("Mug with a NUL", await app.ScalarAsync("SELECT title FROM products WHERE shop_id = $1 AND id = 931", shopId));
        Assert.Equal("Bad \uFFFD byte", await app.ScalarAsync("SELECT title FROM products WHERE shop_id = $1 AND id = 932", shopId));
        Assert.Equal(400, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(800, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed' AND rows_done = 1203", shopId));
        // The planner knows the imported lines at once, for the trainings queued next (planned on the statistics from before,
        // a second large store's training query ran a nested loop for over 15 minutes).
        var plan = JsonNode.Parse($"{await app.ScalarAsync($"EXPLAIN (FORMAT JSON) SELECT * FROM order_lines WHERE shop_id = {shopId}")}")!;
        Assert.InRange(plan[0]!["Plan"]!["Plan Rows"]!.GetValue<double>(), 400, 1600);
    }

    /// <summary>
    /// The staging notes where each chunk of a file it stages ends (the line before every ChunkSize-th parent after the
    /// first), as the merge found them by query before: a chunk that fails leaves the cursor at the line its chunk began,
    /// and the resume (which finds the ends by query, the file staged earlier) merges the rest once.
    /// </summary>
    [Fact]
    public async Task Backfill_InChunksNotedWhileStaging_StopsAtTheFailedChunksStart_AndResumesFromIt()
    {
        const string shop = "backfill-chunks.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        long[] o = [3_100_001, 3_100_002, 3_100_003, 3_100_004, 3_100_005];
        Write("products-chunks.jsonl");
        Write("customers-chunks.jsonl");
        // Two orders a chunk; children before and after their orders. The chunks: lines 1-5 (orders 1 and 2, and order 3's
        // item), 6-8 (orders 3 and 4) and 9-10 (order 5).
        Write("orders-chunks.jsonl", Line(o[0], 0), Order(o[0]), Order(o[1]), Line(o[1], 0), Line(o[2], 0), Order(o[2]), Order(o[3]), Line(o[3], 0),
            Order(o[4]), Line(o[4], 0));
        app.Shopify.Admin.ServeBulk("products", Path.Combine(_dir, "products-chunks.jsonl"));
        app.Shopify.Admin.ServeBulk("customers", Path.Combine(_dir, "customers-chunks.jsonl"));
        app.Shopify.Admin.ServeBulk("orders", Path.Combine(_dir, "orders-chunks.jsonl"));
        var failing = new BackfillMergeStep("fails on the fourth order", BackfillPhase.Orders, $"""
            SELECT CASE WHEN {o[3]} IN ({PluginApp.StoreData.StoreMerge.ChunkIds(BackfillPhase.Orders)}) THEN (SELECT 1) / 0 END
            """);

        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => Backfill(failing).RunAsync(shop, CancellationToken.None));

        const string stored = "SELECT format('%s orders, %s lines', (SELECT count(*) FROM orders WHERE shop_id = $1), (SELECT count(*) FROM order_lines WHERE shop_id = $1))";
        const string progress = "SELECT format('%s, %s, cursor %s, %s objects', state, phase, phase_cursor, rows_done) FROM backfill_runs WHERE shop_id = $1";
        Assert.Equal("2 orders, 2 lines", await app.ScalarAsync(stored, shopId));
        Assert.Equal("failed, orders, cursor 5, 5 objects", await app.ScalarAsync(progress, shopId));

        await Backfill().RunAsync(shop, CancellationToken.None);

        Assert.Equal("5 orders, 5 lines", await app.ScalarAsync(stored, shopId));
        Assert.Equal("completed, , cursor 0, 10 objects", await app.ScalarAsync(progress, shopId));

        BackfillService Backfill(params BackfillMergeStep[] extra)
        {
            var configured = app.Factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BackfillOptions>>().Value;
            return ActivatorUtilities.CreateInstance<BackfillService>(app.Factory.Services, Microsoft.Extensions.Options.Options.Create(new BackfillOptions
            {
                OrderHistoryDays = configured.OrderHistoryDays, PollInterval = configured.PollInterval, MaxWait = configured.MaxWait, ChunkSize = 2, MergeConnections = 1,
            }), app.Factory.Services.GetServices<BackfillMergeStep>().Concat(extra).ToArray());
        }
    }

    /// <summary>
    /// A shop's backfill queued again (the install's setup is queued again when Shopify did not answer its settings read):
    /// a store imported since its install is not imported again, and while another worker imports it the job leaves at
    /// once instead of holding a long worker until it ends. Until 6 Dec 2026 the second job waited, then imported the whole
    /// store again.
    /// </summary>
    [Fact]
    public async Task ABackfillQueuedAgain_SkipsAStoreImportedSinceItsInstall_AndOneAnotherWorkerImports()
    {
        const string shop = "backfill-queued-again.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 930, orders: [2301, 2302], refund: 5503);
        var job = ActivatorUtilities.CreateInstance<BackfillJob>(app.Factory.Services);
        int BulkQueries() => app.Shopify.Requests.Count(r => r.Shop == shop && (r.Body["query"]?.GetValue<string>() ?? "").Contains("bulkOperationRunQuery", StringComparison.Ordinal));
        await job.RunAsync(shop, CancellationToken.None);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId));
        var queries = BulkQueries();
        Assert.NotEqual(0, queries);

        await job.RunAsync(shop, CancellationToken.None);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1", shopId));
        Assert.Equal(queries, BulkQueries());
        // Another worker holds the shop's import (a failed run it resumes): this job leaves it to it, at once.
        await app.ScalarAsync("UPDATE backfill_runs SET state = 'failed' WHERE shop_id = $1", shopId);
        var locks = app.Factory.Services.GetRequiredService<PluginApp.Jobs.JobLocks>();
        await using (await locks.AcquireAsync($"backfill:{shop}", CancellationToken.None))
        {
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await job.RunAsync(shop, patience.Token); // waiting for the other worker, it would be cancelled
        }
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'failed'", shopId));
        Assert.Equal(queries, BulkQueries());
    }

    [Fact]
    public async Task Backfill_TwiceAndInterleavedWithWebhooks_LeavesOneCopyOfEachRow()
    {
        const string shop = "backfill-b.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        ServeStore(product: 920, orders: [2101, 2102], refund: 5502);

        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(2101).ToJsonString());
        var backfills = Task.WhenAll(RunBackfillAsync(shop), RunBackfillAsync(shop));
        var webhooks = Task.WhenAll(
            app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(2102).ToJsonString()),
            app.SendWebhookAsync("refunds/create", shop, ShopifyPayloads.Refund(5502, 2102, 210200).ToJsonString()),
            app.SendWebhookAsync("products/create", shop, ShopifyPayloads.Product(920).ToJsonString()));
        await backfills;
        Assert.All(await webhooks, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));

        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(4, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refund_lines WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM products WHERE shop_id = $1", shopId));
    }

    [Fact]
    public async Task NewOrdersWhileTheBackfillRuns_TrainNothing_UntilItEnds()
    {
        const string shop = "backfill-new-orders.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("""
            INSERT INTO orders (shop_id, id, name, currency, total_price, created_at, updated_at)
            SELECT $1, 9100000 + i, '#' || i, 'USD', 10, now(), now() FROM generate_series(1, 3) i
            """, shopId);
        var run = await app.ScalarAsync("INSERT INTO backfill_runs (shop_id, state, started_at, updated_at) VALUES ($1, 'running', now(), now()) RETURNING id", shopId);
        var (job, queued) = RecordingJobs.NewOrdersTraining(app, retrainAfterNewOrders: 3);

        await job.RunAsync(CancellationToken.None);
        Assert.DoesNotContain(shop, queued.Shops); // three new orders, but the history is still coming in

        await app.ScalarAsync("UPDATE backfill_runs SET state = 'completed', finished_at = now() WHERE id = $1", run!);
        await job.RunAsync(CancellationToken.None);
        Assert.Equal(app.Factory.Services.GetRequiredService<PluginApp.Training.ModelKinds>().All.Count, queued.Shops.Count(s => s == shop));
    }

    [Fact]
    public async Task Install_WhoseRequestEndsWhileShopifyIsSlow_StillQueuesTheBackfillAndNightlyTraining()
    {
        const string shop = "backfill-install-abandoned.myshopify.com";
        ServeStore(product: 960, orders: [2601, 2602], refund: 5506);
        // Shopify is slow to give the shop's settings, and the merchant's tab is closed meanwhile.
        var settings = new StandInAnswer(200, new JsonObject { ["data"] = new JsonObject { ["shop"] = new JsonObject
            { ["id"] = "gid://shopify/Shop/960", ["ianaTimezone"] = "Europe/Paris", ["currencyCode"] = "EUR" } } }, Delay: TimeSpan.FromSeconds(2));
        try
        {
            // The tab closes once the install is under way: the app has saved the shop and is asking for its settings.
            using var closed = new CancellationTokenSource();
            app.Shopify.GraphQL = call =>
            {
                if (call.Shop != shop || !call.Query.Contains("ianaTimezone", StringComparison.Ordinal)) return null;
                closed.CancelAfter(TimeSpan.FromMilliseconds(200));
                return settings;
            };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => app.Client.SendAsync(app.AdminGet("/api/admin/shop", shop), closed.Token));

            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM backfill_runs r JOIN shops s ON s.id = r.shop_id WHERE s.domain = $1 AND r.state = 'completed'", shop) == 0)
                await Task.Delay(200);
            Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders o JOIN shops s ON s.id = o.shop_id WHERE s.domain = $1", shop));
            Assert.Equal("Europe/Paris", await app.ScalarAsync("SELECT iana_timezone FROM shops WHERE domain = $1", shop));
            using var storage = app.Factory.Services.GetRequiredService<Hangfire.JobStorage>().GetConnection();
            Assert.Equal("Europe/Paris", storage.GetRecurringJobs([PluginApp.Training.TrainingScheduler.NightlyId(shop, "recommender")]).Single().TimeZoneId);
        }
        finally
        {
            app.Shopify.GraphQL = null;
        }
    }

    [Fact]
    public async Task Install_WhoseProcessDiedBeforeQueueingItsJobs_IsSetUpByTheSweep()
    {
        const string shop = "backfill-install-died.myshopify.com";
        ServeStore(product: 970, orders: [2701, 2702], refund: 5507);
        var services = app.Factory.Services;
        using var storage = services.GetRequiredService<Hangfire.JobStorage>().GetConnection();
        var nightly = $"recurring-job:{PluginApp.Training.TrainingScheduler.NightlyId(shop, "recommender")}";
        // The install saved the shop, and its process died before it queued anything.
        await services.GetRequiredService<PluginApp.Install.OfflineTokenStore>().SaveGrantAsync(shop,
            new PluginApp.Install.TokenGrant("shpat_died", "read_orders,read_products,read_customers", 3600, "shprt_died", 7776000), CancellationToken.None);
        var installer = services.GetRequiredService<PluginApp.Install.ShopInstaller>();

        // An install that may still be under way is left to finish.
        await installer.SweepAsync(CancellationToken.None);
        Assert.Null(storage.GetAllEntriesFromHash(nightly));

        await using (var later = app.Db.CreateCommand("UPDATE shops SET setup_pending_since = setup_pending_since - $2 WHERE domain = $1"))
        {
            later.Parameters.AddWithValue(shop);
            later.Parameters.AddWithValue(PluginApp.Install.ShopInstaller.SetupGrace + TimeSpan.FromMinutes(1));
            await later.ExecuteNonQueryAsync();
        }
        await installer.SweepAsync(CancellationToken.None);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM backfill_runs r JOIN shops s ON s.id = r.shop_id WHERE s.domain = $1 AND r.state = 'completed'", shop) == 0)
            await Task.Delay(200);
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders o JOIN shops s ON s.id = o.shop_id WHERE s.domain = $1", shop));
        Assert.NotNull(storage.GetAllEntriesFromHash(nightly));
        // Set up once: the next sweep finds nothing left to do.
        Assert.Null(await app.ScalarAsync("SELECT setup_pending_since FROM shops WHERE domain = $1", shop));
    }

    /// <summary>
    /// A shop installed before a model kind existed (or whose nightly job was lost) gets every kind's nightly training in its
    /// time zone within the hour (until 5 Dec 2026 the jobs were registered at install only).
    /// </summary>
    [Fact]
    public async Task EveryInstalledShop_GetsEachKindsNightlyTraining_InItsTimeZone()
    {
        const string shop = "nightly-schedules.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("UPDATE shops SET iana_timezone = 'America/Chicago' WHERE id = $1", shopId);
        var services = app.Factory.Services;
        using var storage = services.GetRequiredService<Hangfire.JobStorage>().GetConnection();
        var kinds = services.GetRequiredService<PluginApp.Training.ModelKinds>().All.Select(k => k.Name).ToList();
        var ids = kinds.Select(k => PluginApp.Training.TrainingScheduler.NightlyId(shop, k)).ToList();
        services.GetRequiredService<Hangfire.IRecurringJobManager>().RemoveIfExists(ids[0]);
        Assert.True(storage.GetRecurringJobs(ids).First().Removed);

        // A shop whose time zone Shopify never said (UTC) beside it: both get theirs, and the next run finds nothing to do
        // (a time zone read back unlike the shop's would have every shop's jobs written again every hour).
        await app.InstallShopAsync("nightly-schedules-utc.myshopify.com");
        var job = ActivatorUtilities.CreateInstance<PluginApp.Training.NightlyTrainingSchedules>(services);
        Assert.True(await job.RunAsync(CancellationToken.None) >= 2);
        Assert.Equal(0, await job.RunAsync(CancellationToken.None));
        Assert.Equal("UTC", storage.GetRecurringJobs([PluginApp.Training.TrainingScheduler.NightlyId("nightly-schedules-utc.myshopify.com", kinds[0])]).Single().TimeZoneId);

        var jobs = storage.GetRecurringJobs(ids);
        Assert.Equal(kinds.Count, jobs.Count);
        Assert.All(jobs, j => Assert.False(j.Removed, j.Id));
        Assert.All(jobs, j => Assert.Equal("America/Chicago", j.TimeZoneId));
        Assert.Equal("0 3 * * *", jobs[0].Cron);
    }

    [Fact]
    public async Task Install_ByTokenExchange_QueuesABackfillThatRunsOnTheCluster()
    {
        const string shop = "backfill-install.myshopify.com";

        var response = await app.Client.SendAsync(app.AdminGet("/api/admin/shop", shop));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM backfill_runs r JOIN shops s ON s.id = r.shop_id WHERE s.domain = $1 AND r.state = 'completed'", shop) == 0)
            await Task.Delay(200);
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders o JOIN shops s ON s.id = o.shop_id WHERE s.domain = $1", shop));
        var progress = await app.Client.SendAsync(app.AdminGet("/api/admin/backfill", shop));
        Assert.Contains("\"state\":\"completed\"", await progress.Content.ReadAsStringAsync());
    }
}
