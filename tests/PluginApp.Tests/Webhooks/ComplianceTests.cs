using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PluginApp.Tests.Infrastructure;
using ShopifyStandIn;
using WireMock.ResponseBuilders;

namespace PluginApp.Tests.Webhooks;

public sealed class ComplianceTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>
    /// Her order's cart and guest checkout had not reached the app when she was erased; Shopify delivers them afterwards
    /// (webhooks come in no set order, and are retried for hours). They are stored without her note and email: the erasure
    /// held their tokens as erased. Until 7 Dec 2026 only a row held at the erasure was marked, and these kept them.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_HerCartAndCheckoutDeliveredAfterwards_AreStoredWithoutHerData()
    {
        const string shop = "redact-late-cart.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var order = ShopifyPayloads.Order(6_451_001, customerId: 6_451_101);
        order["cart_token"] = "cart-late-6451";
        order["checkout_token"] = "chk-late-6451";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order.ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(6_451_001), ["customer"] = new JsonObject { ["id"] = 6_451_101, ["email"] = "ada@example.com" } }.ToJsonString())).StatusCode);

        var cart = ShopifyPayloads.Cart("cart-late-6451", "2026-07-02T10:00:00-04:00", (2001, 1));
        cart["note"] = "for Ada's birthday";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, cart.ToJsonString())).StatusCode);
        var checkout = ShopifyPayloads.Checkout(6451, null); // a guest's, as she checked out
        checkout["token"] = "chk-late-6451";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("checkouts/update", shop, checkout.ToJsonString())).StatusCode);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token = 'cart-late-6451' AND note IS NULL AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM cart_lines WHERE shop_id = $1 AND cart_token = 'cart-late-6451'", shopId)); // what she bought stays, as for her orders
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM checkouts WHERE shop_id = $1 AND token = 'chk-late-6451' AND email IS NULL AND redacted_at IS NOT NULL", shopId));
    }

    /// <summary>
    /// A guest who left a checkout (found by her email) and no order: the cart block answered on its cart under her visitor
    /// id. That visitor's storefront events are hers, erased with her; another visitor's stay. Until 7 Dec 2026 the visitor
    /// ids were gathered before her carts were found, and hers, known only through that cart, kept its events.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_AGuestsVisitorKnownOnlyThroughHerCheckoutsCart_IsErased()
    {
        const string shop = "redact-visitor-by-cart.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var checkout = ShopifyPayloads.Checkout(6461, null); // a guest's: ada@example.com, cart "cart-6461"
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("checkouts/create", shop, checkout.ToJsonString())).StatusCode);
        var hers = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-by-cart-6461")!;
        var other = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-someone-6461")!;
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "offer-by-cart-6461", shopId, app.Clock.GetUtcNow(), "model")
            { CartToken = "cart-6461", VisitorHash = hers, Subject = "nudge" });
        // Another cart of that visitor's, with a note: hers too, found through the visitor id once it is known.
        var second = ShopifyPayloads.Cart("cart-6461-b", "2026-07-02T10:00:00-04:00", (2001, 1));
        second["note"] = "leave it with the neighbour";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, second.ToJsonString())).StatusCode);
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "offer-by-cart-6461-b", shopId, app.Clock.GetUtcNow(), "model")
            { CartToken = "cart-6461-b", VisitorHash = hers, Subject = "nudge" });
        foreach (var visitor in new[] { hers, other })
            await app.ScalarAsync("""
                INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, product_id, occurred_at) VALUES ($1, 'click', 'r-by-cart-' || $2, $2, 2, now())
                """, shopId, visitor);

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = new JsonObject { ["id"] = 6_461_101, ["email"] = "ada@example.com" } }.ToJsonString())).StatusCode);

        Assert.Equal(other, await app.ScalarAsync("SELECT string_agg(visitor_hash, ',') FROM recommendation_events WHERE shop_id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND visitor_hash IS NOT NULL", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND note IS NOT NULL", shopId));
        // Her checkout's cart, not held at the erasure, is held as erased: its late delivery keeps no note.
        var late = ShopifyPayloads.Cart("cart-6461", "2026-07-02T10:00:00-04:00", (2001, 1));
        late["note"] = "gift for Ada";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, late.ToJsonString())).StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token = 'cart-6461' AND note IS NULL AND redacted_at IS NOT NULL", shopId));
    }

    /// <summary>
    /// A guest's order the erasure listed had not reached the app, nor its checkout; its cart had, with her note, and the
    /// cart block had answered on it under her visitor id and handed it a code. The order arrives afterwards: it is stored
    /// erased, its cart is emptied, and its checkout, delivered last, is stored without her email. Until 7 Dec 2026 the
    /// erasure could not know the tokens of an order it did not hold, and both kept them; until 7 Dec 2026 the answers on
    /// that cart kept her visitor id and cart, the code its cart and visitor, and her visitors' storefront events stayed:
    /// the order's late arrival now queues a pass of her erasure over what it leads to.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_AListedOrderArrivingAfterwards_ErasesItsCartAndCheckout()
    {
        const string shop = "redact-listed-late.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var cart = ShopifyPayloads.Cart("cart-listed-6452", "2026-07-02T10:00:00-04:00", (2001, 1));
        cart["note"] = "gift wrap for Bea";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, cart.ToJsonString())).StatusCode);
        var answered = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-cart-6452")!; // the visitor the cart block answered
        var ordered = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-order-6452")!; // the one her order names
        var someone = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-someone-6452")!;
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "offer-listed-6452", shopId, app.Clock.GetUtcNow(), "model")
            { CartToken = "cart-listed-6452", VisitorHash = answered, Subject = "nudge" });
        await app.ScalarAsync("""
            INSERT INTO discount_codes (shop_id, code, percent, state, created_at, expires_at, cart_token, visitor_hash, amount, handed_out_at)
            VALUES ($1, 'PA-LISTED6452', 10, 'handed_out', now(), now() + interval '2 days', 'cart-listed-6452', $2, 5, now())
            """, shopId, answered);
        foreach (var visitor in new[] { answered, ordered, someone })
            await app.ScalarAsync("""
                INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, product_id, occurred_at) VALUES ($1, 'click', 'r-listed-' || $2, $2, 2, now())
                """, shopId, visitor);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(6_452_001), ["customer"] = new JsonObject { ["id"] = 6_452_101, ["email"] = "bea@example.com" } }.ToJsonString())).StatusCode);
        await app.RunErasureSecondPassAsync(shopId); // her erasure's own second pass, before the order came
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token = 'cart-listed-6452' AND note IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND cart_token = 'cart-listed-6452'", shopId));

        var order = ShopifyPayloads.Order(6_452_001, customerId: null);
        order["email"] = "bea@example.com";
        order["cart_token"] = "cart-listed-6452";
        order["checkout_token"] = "chk-listed-6452";
        order["note_attributes"] = new JsonArray(new JsonObject { ["name"] = "_pluginapp_visitor", ["value"] = "vid-order-6452" });
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order.ToJsonString())).StatusCode);
        var checkout = ShopifyPayloads.Checkout(6452, null);
        checkout["token"] = "chk-listed-6452";
        checkout["email"] = "bea@example.com";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("checkouts/update", shop, checkout.ToJsonString())).StatusCode);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6452001 AND email IS NULL AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token = 'cart-listed-6452' AND note IS NULL AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM checkouts WHERE shop_id = $1 AND token = 'chk-listed-6452' AND email IS NULL AND redacted_at IS NOT NULL", shopId));

        // A pass of her erasure is queued, under her customer id (a guest's order names none: her erasure's listing does).
        Assert.Equal(6_452_101L, await app.ScalarAsync("SELECT customer_id FROM erasure_second_passes WHERE shop_id = $1 AND 'cart-listed-6452' = ANY(carts)", shopId));
        await app.RunErasureSecondPassAsync(shopId); // the pass the order's arrival queued
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'offer-listed-6452' AND cart_token IS NULL AND visitor_hash IS NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM discount_codes WHERE shop_id = $1 AND code = 'PA-LISTED6452' AND cart_token IS NULL AND visitor_hash IS NULL", shopId));
        Assert.Equal(someone, await app.ScalarAsync("SELECT string_agg(visitor_hash, ',') FROM recommendation_events WHERE shop_id = $1", shopId));
        // Delivered again, the order finds its cart erased, and queues nothing more.
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/updated", shop, order.ToJsonString())).StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM erasure_second_passes WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// The same listed order, imported by the backfill after the erasure (an import carries no cart or checkout token) in a
    /// version newer than the webhook that comes last: the webhook's older version is not stored, but its tokens still find
    /// her cart and checkout.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_AListedOrderImportedFirst_ErasesItsCartAndCheckout_ByAnOlderWebhooksTokens()
    {
        const string shop = "redact-listed-imported.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var cart = ShopifyPayloads.Cart("cart-listed-6459", "2026-07-02T10:00:00-04:00", (2001, 1));
        cart["note"] = "gift wrap for Cleo";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, cart.ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(6_459_001), ["customer"] = new JsonObject { ["id"] = 6_459_101, ["email"] = "cleo@example.com" } }.ToJsonString())).StatusCode);
        // As the import stores it: erased, without tokens, at a version later than the webhook below.
        await app.CountAsync("""
            INSERT INTO orders (shop_id, id, name, currency, total_price, created_at, updated_at, processed_at, redacted_at)
            VALUES ($1, 6459001, '#6459001', 'USD', 10, '2026-07-01T12:00:00Z', '2026-07-05T12:00:00Z', '2026-07-01T12:00:00Z', now())
            """, shopId);

        var order = ShopifyPayloads.Order(6_459_001, customerId: null, updatedAt: "2026-07-02T12:00:00-04:00");
        order["email"] = "cleo@example.com";
        order["cart_token"] = "cart-listed-6459";
        order["checkout_token"] = "chk-listed-6459";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/updated", shop, order.ToJsonString())).StatusCode);
        var checkout = ShopifyPayloads.Checkout(6459, null);
        checkout["token"] = "chk-listed-6459";
        checkout["email"] = "cleo@example.com";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("checkouts/update", shop, checkout.ToJsonString())).StatusCode);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token = 'cart-listed-6459' AND note IS NULL AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM checkouts WHERE shop_id = $1 AND token = 'chk-listed-6459' AND email IS NULL AND redacted_at IS NOT NULL", shopId));
    }

    /// <summary>An erased customer's order the erasure did not list, arriving afterwards: its cart, held before with her
    /// note, is emptied too, and (once the pass it queues has run) the cart offers' answer on it keeps neither the cart nor
    /// the visitor it was given to.</summary>
    [Fact]
    public async Task CustomersRedact_AnErasedCustomersLaterOrder_ErasesItsCart()
    {
        const string shop = "redact-customer-late-order.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var cart = ShopifyPayloads.Cart("cart-erased-6460", "2026-07-02T10:00:00-04:00", (2001, 1));
        cart["note"] = "leave with Dora's neighbour";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, cart.ToJsonString())).StatusCode);
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "offer-erased-6460", shopId, app.Clock.GetUtcNow(), "model")
            { CartToken = "cart-erased-6460", VisitorHash = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-6460"), Subject = "nudge" });
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = new JsonObject { ["id"] = 6_460_101, ["email"] = "dora@example.com" } }.ToJsonString())).StatusCode);
        await app.RunErasureSecondPassAsync(shopId);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'offer-erased-6460' AND cart_token IS NOT NULL", shopId)); // not hers yet

        var order = ShopifyPayloads.Order(6_460_001, customerId: 6_460_101);
        order["cart_token"] = "cart-erased-6460";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order.ToJsonString())).StatusCode);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6460001 AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token = 'cart-erased-6460' AND note IS NULL AND redacted_at IS NOT NULL", shopId));
        await app.RunErasureSecondPassAsync(shopId);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'offer-erased-6460' AND cart_token IS NULL AND visitor_hash IS NULL", shopId));
    }

    /// <summary>
    /// A guest's order the import brought (no cart token: GraphQL's Order has none) is held when she is erased, found by her
    /// email. Its webhook comes afterwards with the cart the cart block answered on: that answer's cart and visitor id are
    /// erased by the pass the webhook queues, under the customer her erasure named, which the guest's order does not.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_AGuestOrderHeldWithoutItsCart_WhoseWebhookBringsIt_QueuesHerPass()
    {
        const string shop = "redact-held-no-cart.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.CountAsync("""
            INSERT INTO orders (shop_id, id, name, email, currency, total_price, created_at, updated_at, processed_at)
            VALUES ($1, 6454001, '#6454001', 'gwen@example.com', 'USD', 10, '2026-07-01T12:00:00Z', '2026-07-05T12:00:00Z', '2026-07-01T12:00:00Z')
            """, shopId);
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "offer-held-6454", shopId, app.Clock.GetUtcNow(), "model")
            { CartToken = "cart-held-6454", VisitorHash = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-6454"), Subject = "nudge" });
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = new JsonObject { ["id"] = 6_454_101, ["email"] = "gwen@example.com" } }.ToJsonString())).StatusCode);
        await app.RunErasureSecondPassAsync(shopId);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6454001 AND email IS NULL AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'offer-held-6454' AND cart_token IS NOT NULL", shopId));

        var order = ShopifyPayloads.Order(6_454_001, customerId: null, updatedAt: "2026-07-02T12:00:00-04:00");
        order["email"] = "gwen@example.com";
        order["cart_token"] = "cart-held-6454";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/updated", shop, order.ToJsonString())).StatusCode);

        Assert.Equal(6_454_101L, await app.ScalarAsync("SELECT customer_id FROM erasure_second_passes WHERE shop_id = $1 AND 'cart-held-6454' = ANY(carts)", shopId));
        await app.RunErasureSecondPassAsync(shopId);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'offer-held-6454' AND cart_token IS NULL AND visitor_hash IS NULL", shopId));
    }

    /// <summary>
    /// The customer's customers/redact request, and its second pass queued ten minutes before now and seen a day ago (by the
    /// database's clock, which the writers' start times are read by); returns the request and now.
    /// </summary>
    private async Task<(string Request, DateTimeOffset At)> HerSecondPassSeenAsync(long shopId, long customer)
    {
        var request = new JsonObject { ["customer"] = new JsonObject { ["id"] = customer }, ["orders_to_redact"] = new JsonArray() }.ToJsonString();
        var at = app.Clock.GetUtcNow();
        await app.ScalarAsync("""
            INSERT INTO erasure_second_passes (shop_id, customer_id, request, requested_at, seen_at) VALUES ($1, $2, $3::jsonb, $4, now() - interval '1 day')
            """, shopId, customer, request, at.AddMinutes(-10));
        return (request, at);
    }

    /// <summary>
    /// Her second pass and a pass a late order of hers queued are both pending, the late one earlier in time (its delivery's)
    /// but first seen while a writer was in flight, which goes on to commit an event of the visitor that late order named.
    /// Her second pass waits behind the held one rather than deleting it with its own, and once the writer ends both run:
    /// the event it committed is erased too.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_ASecondPass_WaitsForAnOlderPassOfHersThatIsHeldBack()
    {
        const string shop = "redact-two-passes.myshopify.com";
        const long customer = 6_455_101;
        var shopId = await app.InstallShopAsync(shop);
        var visitor = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-6455")!;
        const string Event = "INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, product_id, occurred_at) VALUES ($1, 'click', $2, $3, 2, now())";
        await app.ScalarAsync(Event, shopId, "r-6455", visitor);
        var (request, at) = await HerSecondPassSeenAsync(shopId, customer);
        await using var writer = await app.Db.OpenConnectionAsync();
        await using var inFlight = await writer.BeginTransactionAsync(); // a delivery's batch, say, begun after her second pass was seen
        await using (var write = new Npgsql.NpgsqlCommand(Event, writer, inFlight))
        {
            write.Parameters.AddWithValue(shopId); write.Parameters.AddWithValue("r-6455-late"); write.Parameters.AddWithValue(visitor);
            await write.ExecuteNonQueryAsync();
        }
        // The late order's pass: dated by its delivery, before her second pass; first seen now, behind that writer.
        await app.ScalarAsync("""
            INSERT INTO erasure_second_passes (shop_id, customer_id, request, requested_at, visitors) VALUES ($1, $2, $3::jsonb, $4, ARRAY[$5])
            """, shopId, customer, request, at.AddMinutes(-11), visitor);

        var job = ActivatorUtilities.CreateInstance<PluginApp.Compliance.ErasureSecondPassJob>(app.Factory.Services);
        app.Clock.Advance(PluginApp.Compliance.ErasureSecondPassJob.Delay);
        await job.RunAsync(CancellationToken.None);
        // Both wait (the app's own minute job may have run her pass before the late one was queued: that one waits still).
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM erasure_second_passes WHERE shop_id = $1 AND visitors = ARRAY[$2]", shopId, visitor));
        await inFlight.CommitAsync();

        await app.RunErasureSecondPassAsync(shopId);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM recommendation_events WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// A pass a late order of hers queues while her second pass runs (dated by its delivery, so older than that pass, and
    /// not yet weighed by the job's check for writers in flight) is not deleted by it: it runs on its own, once seen and
    /// once no writer holds it. Until 7 Dec 2026 her second pass deleted it, and the rows of the writer that delivery
    /// raced escaped her erasure.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_APassQueuedWhileHerSecondPassRuns_IsKeptForItsOwnRun()
    {
        const string shop = "redact-pass-during.myshopify.com";
        const long customer = 6_456_101;
        var shopId = await app.InstallShopAsync(shop);
        var visitor = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-6456")!;
        var (request, at) = await HerSecondPassSeenAsync(shopId, customer);

        // Her second pass, as the job runs it, with the late one queued after the job looked (in the erasure's own
        // transaction here, so that the app's own minute job cannot see it first).
        var catalog = app.Factory.Services.GetRequiredService<PluginApp.Compliance.PersonalDataCatalog>();
        await using (var conn = await app.Db.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await using (var late = new Npgsql.NpgsqlCommand("""
                INSERT INTO erasure_second_passes (shop_id, customer_id, request, requested_at, visitors) VALUES ($1, $2, $3::jsonb, $4, ARRAY[$5])
                """, conn, tx))
            {
                foreach (var p in new object[] { shopId, customer, request, at.AddMinutes(-11), visitor }) late.Parameters.AddWithValue(p);
                await late.ExecuteNonQueryAsync();
            }
            using var payload = JsonDocument.Parse(request);
            await using var batch = new Npgsql.NpgsqlBatch(conn, tx);
            new PluginApp.Compliance.ComplianceService(new PluginApp.StoreData.StoreWriter(batch, shopId), shopId, catalog)
                .AddCustomerRedaction(payload.RootElement, at.AddMinutes(-10).AddMilliseconds(1), ([], [], []));
            await batch.ExecuteNonQueryAsync();
            await tx.CommitAsync();
        }

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM erasure_second_passes WHERE shop_id = $1 AND seen_at IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM erasure_second_passes WHERE shop_id = $1 AND visitors = ARRAY[$2]", shopId, visitor));
    }

    [Fact]
    public async Task CustomersDataRequest_RecordsWhatWeHoldForTheMerchant()
    {
        const string shop = "export-shop.myshopify.com";
        await app.InstallShopAsync(shop);
        var shopId = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", shop))!;
        var order = ShopifyPayloads.Order(6001, customerId: 8001);
        order["cart_token"] = "cart-export";
        await app.SendWebhookAsync("orders/create", shop, order.ToJsonString());
        var cart = ShopifyPayloads.Cart("cart-export", "2026-07-02T10:00:00-04:00", (2001, 2));
        cart["note"] = "gift wrap please";
        await app.SendWebhookAsync("carts/update", shop, cart.ToJsonString());
        await app.SendWebhookAsync("refunds/create", shop, ShopifyPayloads.Refund(6501, 6001, 600100, quantity: 1).ToJsonString());
        // Her order's checkout, under another email, and the cart it came from: hers through the order, as the erasure finds it.
        var checkout = ShopifyPayloads.Checkout(7101, null);
        checkout["token"] = "chk6001";
        checkout["email"] = "someone-else@example.com";
        await app.SendWebhookAsync("checkouts/create", shop, checkout.ToJsonString());
        var checkoutCart = ShopifyPayloads.Cart("cart-7101");
        checkoutCart["note"] = "leave at the door";
        await app.SendWebhookAsync("carts/update", shop, checkoutCart.ToJsonString());
        // What the storefront, the experiments and purchase intent kept on her.
        await app.ScalarAsync("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, customer_id, product_id, occurred_at) VALUES ($1, 'click', 'r-export', 8001, 2, now())
            """, shopId);
        await app.ScalarAsync("INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, customer_id, first_at) VALUES ($1, 'upsells', 'c:8001', 'model', 8001, now())", shopId);
        await app.ScalarAsync("""
            INSERT INTO checkout_signals (shop_id, checkout_token, customer_id, score, model_version, signalled_at) VALUES ($1, 'ck7001', 8001, 0.2, 1, now())
            """, shopId);
        // What order risk decided and learned about her order: its score with reasons, a fraud label, a fulfillment hold.
        await app.ScalarAsync("""
            INSERT INTO risk_scores (shop_id, order_id, score, level, model_version, prior_weight, reasons, features, queued_at, scored_at)
            VALUES ($1, 6001, 0.82, 'HIGH', 3, 0.1, '[{"code": "countries", "text": "billing and shipping countries differ", "weight": 0.4}]', '{"customer_orders_before": 2}', now(), now())
            ON CONFLICT (shop_id, order_id) DO UPDATE SET score = excluded.score, level = excluded.level, reasons = excluded.reasons, features = excluded.features
            """, shopId);
        await app.ScalarAsync("""
            INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail)
            VALUES ($1, 6001, 'dispute', true, now(), 'fraudulent'), ($1, 6001, 'review', true, now() + interval '1 second', 'marked as fraud by Reviewer Zed')
            """, shopId);
        await app.ScalarAsync("""
            INSERT INTO risk_holds (shop_id, order_id, state, earlier_orders, earlier_spend, decided_at, updated_at) VALUES ($1, 6001, 'held', 0, 0, now(), now())
            """, shopId);
        var request = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_requested"] = new JsonArray(6001),
            ["customer"] = new JsonObject { ["id"] = 8001, ["email"] = "ada@example.com", ["phone"] = "+15555550100" },
            ["data_request"] = new JsonObject { ["id"] = 99 },
        };

        var response = await app.SendWebhookAsync("customers/data_request", shop, request.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var export = JsonNode.Parse((string)(await app.ScalarAsync("SELECT export::text FROM customer_data_requests WHERE customer_id = 8001 AND data_request_id = 99"))!)!;
        Assert.Equal("ada@example.com", export["customer"]!["email"]!.GetValue<string>());
        Assert.Equal(6001, export["orders"]![0]!["id"]!.GetValue<long>());
        Assert.Equal(2, export["orders"]![0]!["lines"]!.AsArray().Count);
        // The order as the store sent it: not risk scoring's copy of our fraud labels, which the export does not carry.
        Assert.DoesNotContain(export["orders"]![0]!.AsObject(), p => p.Key is "label_known_at" or "fraud_known_at");
        // Every table the erasure covers is in it, unless it says why not (until 4 Dec these were missing).
        Assert.Contains(export["carts"]!.AsArray(), c => c!["note"]?.GetValue<string>() == "gift wrap please");
        // Each cart, checkout and refund with its lines (until 5 Dec the lines were left out).
        Assert.Equal(2, export["carts"]!.AsArray().Single(c => c!["token"]!.GetValue<string>() == "cart-export")!["lines"]![0]!["quantity"]!.GetValue<int>());
        Assert.Contains(export["carts"]!.AsArray(), c => c!["note"]?.GetValue<string>() == "leave at the door");
        Assert.Equal(600100, export["orders"]![0]!["refunds"]![0]!["lines"]![0]!["line_item_id"]!.GetValue<long>());
        Assert.Equal("r-export", export["recommendation_events"]![0]!["request_id"]!.GetValue<string>());
        Assert.Equal("model", export["experiment_exposures"]![0]!["arm"]!.GetValue<string>());
        Assert.Equal("ck7001", export["checkout_signals"]![0]!["checkout_token"]!.GetValue<string>());
        Assert.Contains(export["webhook_deliveries"]!.AsArray(), d => d!["topic"]!.GetValue<string>() == "orders/create");
        // Order risk's part (until 5 Dec only the decision log's risk decisions, for its 90 days).
        Assert.Equal(6001, export["risk_scores"]![0]!["order_id"]!.GetValue<long>());
        Assert.NotEmpty(export["risk_scores"]![0]!["reasons"]![0]!["text"]!.GetValue<string>()); // ours, or the scorer's since
        // With what it was scored on, her history among it (until 5 Dec 2026 left out).
        Assert.NotNull(export["risk_scores"]![0]!["features"]?["customer_orders_before"]);
        Assert.Equal(["fraudulent", "marked as fraud by the store's staff"], export["fraud_labels"]!.AsArray().Select(l => l!["detail"]!.GetValue<string>()));
        Assert.DoesNotContain("Reviewer Zed", export.ToJsonString()); // who reviewed is the store's, not hers
        Assert.Equal("held", export["fulfillment_holds"]![0]!["state"]!.GetValue<string>());
        Assert.NotNull(export["fulfillment_holds"]![0]!["earlier_orders"]);
    }

    [Fact]
    public async Task CustomersRedact_LeavesNoPersonalDataOfThatCustomer()
    {
        const string shop = "redact-shop.myshopify.com";
        await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("customers/create", shop, ShopifyPayloads.Customer(8101, "gone@example.com").ToJsonString());
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6101, customerId: 8101).ToJsonString());
        await app.SendWebhookAsync("checkouts/create", shop, ShopifyPayloads.Checkout(6102, 8101).ToJsonString());
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6103, customerId: 8199).ToJsonString()); // someone else
        var redact = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(6101),
            ["customer"] = new JsonObject { ["id"] = 8101, ["email"] = "gone@example.com", ["phone"] = "+15555550100" },
        };

        var response = await app.SendWebhookAsync("customers/redact", shop, redact.ToJsonString());
        // A late retry of the original order or checkout delivery must not bring the data back.
        await app.SendWebhookAsync("orders/updated", shop, ShopifyPayloads.Order(6101, customerId: 8101, updatedAt: "2026-07-09T00:00:00Z").ToJsonString());
        await app.SendWebhookAsync("checkouts/update", shop, ShopifyPayloads.Checkout(6102, 8101).ToJsonString());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE id = 8101 AND redacted_at IS NOT NULL AND email IS NULL AND first_name IS NULL AND last_name IS NULL AND phone IS NULL"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE customer_id = 8101 AND (email IS NOT NULL OR browser_ip IS NOT NULL)"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM checkouts WHERE customer_id = 8101 AND email IS NOT NULL"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE body::text LIKE '%gone@example.com%'"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE body @> '{\"customer\": {\"id\": 8101}}'"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE customer_id = 8199 AND email = 'ada@example.com'"));
    }

    /// <summary>
    /// A guest's order the erasure lists but we do not hold yet (its delivery still to come, or the history not imported)
    /// arrives later without her email, browser address or card, by webhook as by the backfill (BackfillMergeTests). Until
    /// 5 Dec 2026 only orders of an erased customer id were kept erased, and this one was stored with all of them.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_AGuestOrderListedBeforeWeHeldIt_ArrivesWithoutHerData()
    {
        const string shop = "redact-unheld.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var redact = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(6151, 6153),
            ["customer"] = new JsonObject { ["id"] = 8151, ["email"] = "late-guest@example.com" },
        };
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, redact.ToJsonString())).StatusCode);

        // Her storefront visitor saw the upsell holdout, which the erasure could not know (it did not hold her order).
        var visitor = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-late-guest")!;
        await app.ScalarAsync("""
            INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, customer_id, first_at) VALUES ($1, 'upsell_holdout', 'v:' || $2, 'treatment', NULL, $3)
            """, shopId, visitor, DateTimeOffset.Parse("2026-07-01T00:00:00Z"));
        var late = ShopifyPayloads.Order(6151, customerId: null);
        late["email"] = "late-guest@example.com";
        late["contact_email"] = "late-guest@example.com";
        late["note_attributes"] = new JsonArray(new JsonObject { ["name"] = "_pluginapp_visitor", ["value"] = "vid-late-guest" });
        PluginApp.Tests.Risk.RiskOrders.PaidWithCard(late, "411111", "1111", "Y", "M");
        var other = ShopifyPayloads.Order(6152, customerId: null); // another guest's, not listed
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, late.ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, other.ToJsonString())).StatusCode);

        Assert.Equal("||||2", await app.ScalarAsync("""
            SELECT concat_ws('|', coalesce(email, ''), coalesce(browser_ip, ''), coalesce(card_bin, ''), coalesce(card_last4, ''),
                   (SELECT count(*) FROM order_lines l WHERE l.shop_id = o.shop_id AND l.order_id = o.id))
            FROM orders o WHERE shop_id = $1 AND id = 6151
            """, shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6152 AND email IS NOT NULL AND browser_ip IS NOT NULL", shopId));
        // Nor is it an experiment outcome under her visitor id.
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM experiment_outcomes WHERE shop_id = $1 AND order_id = 6151", shopId));

        // Another listed order that PostgreSQL refuses is kept aside for the operator without what she gave (until 5 Dec
        // 2026 with all of it: only orders held and erased were known there).
        var refused = ShopifyPayloads.Order(6153, customerId: null);
        refused["email"] = "late-guest@example.com";
        refused["total_price"] = "123456789012345678.00";
        var delivery = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, refused.ToJsonString(), delivery)).StatusCode);
        Assert.Equal(1, await app.CountAsync("""
            SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND outcome = 'failed' AND body ? 'redacted_at' AND raw_body IS NULL
              AND position('late-guest' in body::text) = 0
            """, delivery));
    }

    /// <summary>
    /// Deliveries PostgreSQL could keep only as bytes (a lone surrogate in what she typed): her cart's, her guest checkout's
    /// and her order's refund are found by her erasure as their parsed bodies would be, and erased. Until 6 Dec 2026 their
    /// records held only the resource's own id, and they stayed.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_FindsHerDeliveriesKeptOnlyAsBytes()
    {
        const string shop = "redact-raw.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var order = ShopifyPayloads.Order(6171, customerId: null);
        order["email"] = "raw-guest@example.com";
        order["cart_token"] = "cart-raw";
        order["checkout_token"] = "ck-raw";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, order.ToJsonString())).StatusCode);
        // What she typed, with a lone surrogate that .NET reads and PostgreSQL's jsonb refuses.
        static string Typed(JsonObject body, string field)
        {
            body[field] = "TYPED";
            return body.ToJsonString().Replace("\"TYPED\"", "\"\\ud800 ring the bell twice\"", StringComparison.Ordinal);
        }
        var cart = ShopifyPayloads.Cart("cart-raw");
        var checkout = ShopifyPayloads.Checkout(6172, customerId: null);
        checkout["token"] = "ck-raw";
        checkout["email"] = "raw-guest@example.com";
        var refund = ShopifyPayloads.Refund(6173, 6171, 617_100);
        var kept = new List<string>();
        foreach (var (topic, body) in new[] { ("carts/update", Typed(cart, "note")), ("checkouts/create", Typed(checkout, "email")), ("refunds/create", Typed(refund, "note")) })
        {
            var delivery = Guid.NewGuid().ToString();
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync(topic, shop, body, delivery)).StatusCode);
            kept.Add(delivery);
        }
        Assert.Equal("carts/update,checkouts/create,refunds/create", await app.ScalarAsync(
            "SELECT string_agg(topic || CASE WHEN raw_body IS NULL THEN ' ' || outcome || ' ' || left(body::text, 200) ELSE '' END, ',' ORDER BY topic) FROM webhook_deliveries WHERE delivery_id = ANY($1)",
            (object)kept.ToArray()));

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(6171),
            ["customer"] = new JsonObject { ["id"] = 8171, ["email"] = "raw-guest@example.com" },
        }.ToJsonString())).StatusCode);

        Assert.Equal("", await app.ScalarAsync("""
            SELECT coalesce(string_agg(topic, ','), '') FROM webhook_deliveries WHERE delivery_id = ANY($1) AND (raw_body IS NOT NULL OR NOT body ? 'redacted_at')
            """, (object)kept.ToArray()));
    }

    /// <summary>
    /// The card an order's transaction brought (order_transactions/create, kept for the order) is hers: erased with her
    /// orders, held or only listed, and a later transaction or order of hers brings no card back, nor does one naming her.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_ErasesTheCardsHerOrdersTransactionsBrought_AndNoLaterDeliveryBringsOneBack()
    {
        const string shop = "redact-cards.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        async Task SendAsync(string topic, JsonObject body) =>
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync(topic, shop, body.ToJsonString())).StatusCode);
        var held = ShopifyPayloads.Order(6162, customerId: 8161);
        await SendAsync("orders/create", held);
        await SendAsync("order_transactions/create", PluginApp.Tests.Risk.RiskOrders.Transaction(9_161, 6161, "sale", "success", "411111", "6161"));
        await SendAsync("order_transactions/create", PluginApp.Tests.Risk.RiskOrders.Transaction(9_162, 6162, "sale", "success", "411111", "6162"));
        Assert.Equal("6162", await app.ScalarAsync("SELECT card_last4 FROM orders WHERE shop_id = $1 AND id = 6162", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1 AND order_id = 6161", shopId)); // waiting for its order

        var redact = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(6161, 6162),
            ["customer"] = new JsonObject { ["id"] = 8161, ["email"] = "card-holder@example.com" },
        };
        await SendAsync("customers/redact", redact);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND (card_bin IS NOT NULL OR card_last4 IS NOT NULL)", shopId));

        // Late: another transaction of the order listed before we held it, then the order itself; and an order naming her
        // that the erasure did not list, whose transaction came first.
        await SendAsync("order_transactions/create", PluginApp.Tests.Risk.RiskOrders.Transaction(9_163, 6161, "authorization", "success", "411111", "6161"));
        await SendAsync("order_transactions/create", PluginApp.Tests.Risk.RiskOrders.Transaction(9_164, 6163, "sale", "success", "411111", "6163"));
        await SendAsync("orders/create", ShopifyPayloads.Order(6161, customerId: null));
        await SendAsync("orders/create", ShopifyPayloads.Order(6163, customerId: 8161));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM order_cards WHERE shop_id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND (card_bin IS NOT NULL OR card_last4 IS NOT NULL)", shopId));
        // Both stored blank are marked as erased, as what reads only the mark (training, Stripe's metadata) needs.
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id IN (6161, 6163) AND redacted_at IS NOT NULL", shopId));
    }

    /// <summary>
    /// Her carts' notes go wherever the cart is hers from: a cart she was logged in on (no order, no checkout) and a cart a
    /// guest checkout under her email came from; and a late carts/update of either brings no note back.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_ErasesHerCartNotes_FromHerLoginAndHerGuestCheckouts_AndALateCartDeliveryBringsNoneBack()
    {
        const string shop = "redact-carts.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        async Task CartAsync(string token, string note, string updatedAt)
        {
            var cart = ShopifyPayloads.Cart(token, updatedAt);
            cart["note"] = note;
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, cart.ToJsonString())).StatusCode);
        }
        await CartAsync("cart-login", "call me on +1 555 0100", "2026-07-02T10:00:00-04:00");
        await app.ScalarAsync("INSERT INTO cart_customers (shop_id, cart_token, customer_id, seen_at) VALUES ($1, 'cart-login', 8251, now())", shopId);
        // A cart she was logged in on today: only the decision log knows it yet (the nightly copy to cart_customers has not run).
        await CartAsync("cart-today", "ring the bell twice", "2026-07-02T10:00:00-04:00");
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "redact-carts-today", shopId, app.Clock.GetUtcNow(), "model")
        {
            CustomerId = 8251, CartToken = "cart-today", Subject = "nothing",
        });
        await app.SendWebhookAsync("checkouts/create", shop, ShopifyPayloads.Checkout(6252, null).ToJsonString());
        await CartAsync("cart-6252", "deliver to 12 Elm St", "2026-07-02T10:00:00-04:00");
        await CartAsync("cart-other", "someone else's note", "2026-07-02T10:00:00-04:00");
        var redact = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(),
            ["customer"] = new JsonObject { ["id"] = 8251, ["email"] = "ada@example.com", ["phone"] = "+15555550100" },
        };

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, redact.ToJsonString())).StatusCode);
        await CartAsync("cart-login", "call me on +1 555 0100", "2026-07-03T10:00:00-04:00");
        await CartAsync("cart-6252", "deliver to 12 Elm St", "2026-07-03T10:00:00-04:00");

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token IN ('cart-login', 'cart-6252', 'cart-today') AND note IS NOT NULL", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token IN ('cart-login', 'cart-6252') AND updated_at > '2026-07-03'", shopId));
        Assert.Equal("someone else's note", await app.ScalarAsync("SELECT note FROM carts WHERE shop_id = $1 AND token = 'cart-other'", shopId));

        // A late copy of her cart that PostgreSQL refuses is kept aside without its note (until 5 Dec 2026, with it).
        var refused = ShopifyPayloads.Cart("cart-login", "2026-07-04T10:00:00-04:00", (1010, 1));
        refused["note"] = "call me on +1 555 0100";
        refused["line_items"]![0]!["price"] = "123456789012345678.00";
        var delivery = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, refused.ToJsonString(), delivery)).StatusCode);
        Assert.Equal(1, await app.CountAsync("""
            SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND outcome = 'failed' AND body ? 'redacted_at' AND raw_body IS NULL
              AND position('call me' in body::text) = 0
            """, delivery));
    }

    /// <summary>
    /// A delivery about a cart of hers that PostgreSQL refused and that was kept aside, whole, before her erasure was asked
    /// for: a cart she was logged in on, or her guest checkout's. Her data export carries it, and her erasure empties it.
    /// Until 5 Dec 2026 only the carts her orders came from were looked up for such deliveries: both bodies were missing
    /// from the export and stayed whole, her notes in them, for the 30 days deliveries are kept.
    /// </summary>
    [Fact]
    public async Task AKeptAsideDeliveryAboutACartOfHersFoundThroughHerLoginOrHerGuestCheckout_IsInHerExport_AndErased()
    {
        const string shop = "redact-kept-carts.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("INSERT INTO cart_customers (shop_id, cart_token, customer_id, seen_at) VALUES ($1, 'cart-kept-login', 8261, now())", shopId);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("checkouts/create", shop, ShopifyPayloads.Checkout(6262, null).ToJsonString())).StatusCode);
        var kept = new List<string>();
        foreach (var (token, note) in new[] { ("cart-kept-login", "zk4471 leave at the back door"), ("cart-6262", "zk4472 gate code 1234") })
        {
            var refused = ShopifyPayloads.Cart(token, "2026-07-02T10:00:00-04:00", (1010, 1));
            refused["note"] = note;
            refused["line_items"]![0]!["price"] = "123456789012345678.00"; // more than PostgreSQL's numeric column holds: kept aside
            var delivery = Guid.NewGuid().ToString();
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("carts/update", shop, refused.ToJsonString(), delivery)).StatusCode);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND outcome = 'failed' AND position($2 in body::text) > 0",
                delivery, note));
            kept.Add(delivery);
        }
        // A cart offer answered for her guest checkout's cart, before the checkout named her.
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "redact-kept-carts-offer", shopId, app.Clock.GetUtcNow(), "model")
        {
            CartToken = "cart-6262", Subject = "nothing",
        });
        var subject = new JsonObject { ["id"] = 8261, ["email"] = "ada@example.com" };

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/data_request", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_requested"] = new JsonArray(), ["customer"] = subject.DeepClone(), ["data_request"] = new JsonObject { ["id"] = 42 } }.ToJsonString())).StatusCode);
        var export = (string)(await app.ScalarAsync("SELECT export::text FROM customer_data_requests WHERE shop_id = $1 AND data_request_id = 42", shopId))!;
        Assert.Contains("zk4471", export);
        Assert.Contains("zk4472", export);
        Assert.Contains(JsonNode.Parse(export)!["decisions"]!.AsArray(), d => d!["kind"]!.GetValue<string>() == PluginApp.Governance.DecisionKinds.Offer);

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = subject.DeepClone() }.ToJsonString())).StatusCode);
        Assert.Equal(2, await app.CountAsync(
            "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = ANY($1) AND body ? 'redacted_at' AND raw_body IS NULL AND position('zk447' in body::text) = 0",
            (object)kept.ToArray()));
        // Since 5 Dec 2026 the decision about that cart too (before, only her orders' carts were looked up for decisions).
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND cart_token = 'cart-6262'", shopId));
    }

    /// <summary>
    /// A guest order of hers, placed under another email than the request's, that PostgreSQL refused and that was kept aside
    /// whole, so the app holds no row of it: the request lists it by id, and her export carries it and her erasure empties
    /// it. Until 6 Dec 2026 a kept order body was found only through an order the app held, and it stayed whole.
    /// </summary>
    [Fact]
    public async Task AKeptAsideGuestOrderListedByTheRequest_IsInHerExport_AndErased()
    {
        const string shop = "redact-kept-listed-order.myshopify.com";
        await app.InstallShopAsync(shop);
        var refused = ShopifyPayloads.Order(8_263_001, null, lines: 1);
        refused["email"] = "old.address.zk4481@example.net";
        refused["note"] = "zk4481 leave it with the neighbour";
        refused["total_price"] = "123456789012345678.00"; // more than PostgreSQL's numeric column holds: kept aside
        var delivery = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, refused.ToJsonString(), delivery)).StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND outcome = 'failed' AND position('zk4481' in body::text) > 0", delivery));
        var subject = new JsonObject { ["id"] = 8263, ["email"] = "ada.zk4481@example.com" };

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/data_request", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_requested"] = new JsonArray(8_263_001), ["customer"] = subject.DeepClone(), ["data_request"] = new JsonObject { ["id"] = 43 } }.ToJsonString())).StatusCode);
        Assert.Contains("leave it with the neighbour", (string)(await app.ScalarAsync(
            "SELECT export::text FROM customer_data_requests WHERE data_request_id = 43 AND shop_id = (SELECT id FROM shops WHERE domain = $1)", shop))!);

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(8_263_001), ["customer"] = subject.DeepClone() }.ToJsonString())).StatusCode);
        Assert.Equal(1, await app.CountAsync(
            "SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND body ? 'redacted_at' AND raw_body IS NULL AND position('zk4481' in body::text) = 0", delivery));
    }

    /// <summary>
    /// An order of hers that a writer in flight commits after the erasure looked for her orders (its statement began before
    /// her tombstone was committed, so it did not see it) is erased by the second pass, once that writer has ended, and not
    /// before. Until 5 Dec 2026 such an order kept her email, IP and card. A long reader of the same tables does not hold the
    /// pass back, nor does another request whose pass fails.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_ASecondPass_ErasesHerOrderThatAWriterInFlightCommittedAfterTheErasure()
    {
        const string shop = "redact-race.myshopify.com";
        const long customer = 6_451_101, order = 6_451_001;
        var shopId = await app.InstallShopAsync(shop);
        var job = ActivatorUtilities.CreateInstance<PluginApp.Compliance.ErasureSecondPassJob>(app.Factory.Services);
        await using var reader = await app.Db.OpenConnectionAsync();
        await using var reading = await reader.BeginTransactionAsync(); // a training run's long read, say
        await using (var read = new Npgsql.NpgsqlCommand("SELECT count(*) FROM orders", reader, reading)) await read.ExecuteScalarAsync();
        // Another shop's request whose pass fails, kept first in line (a malformed copy here; a timeout in life).
        var failing = await app.InstallShopAsync("redact-race-failing.myshopify.com");
        await app.ScalarAsync("INSERT INTO erasure_second_passes (shop_id, customer_id, request, requested_at, seen_at) VALUES ($1, 1, '{}', now() - interval '1 day', now() - interval '1 day')", failing);
        await using var writer = await app.Db.OpenConnectionAsync();
        await using var inFlight = await writer.BeginTransactionAsync();
        await using (var insert = new Npgsql.NpgsqlCommand("""
            INSERT INTO orders (shop_id, id, customer_id, email, browser_ip, card_last4, created_at, updated_at)
            VALUES ($1, $2, $3, 'rq8830@example.com', '203.0.113.77', '4242', now(), now())
            """, writer, inFlight))
        {
            insert.Parameters.AddWithValue(shopId); insert.Parameters.AddWithValue(order); insert.Parameters.AddWithValue(customer);
            await insert.ExecuteNonQueryAsync();
        }

        var erased = await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = new JsonObject { ["id"] = customer, ["email"] = "rq8830@example.com" } }.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, erased.StatusCode);
        await job.RunAsync(CancellationToken.None); // the writer is still in flight: not yet
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM erasure_second_passes WHERE shop_id = $1", shopId));
        await inFlight.CommitAsync();
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND email IS NOT NULL", shopId)); // what the race left
        // The writer has ended, but the pass waits its delay (longer than a queued decision keeps a shopper's ids).
        await job.RunAsync(CancellationToken.None);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM erasure_second_passes WHERE shop_id = $1", shopId));

        await app.RunErasureSecondPassAsync(shopId);
        Assert.Equal(1, await app.CountAsync("""
            SELECT count(*) FROM orders WHERE shop_id = $1 AND id = $2 AND email IS NULL AND browser_ip IS NULL AND card_last4 IS NULL AND redacted_at IS NOT NULL
            """, shopId, order));
        await reading.CommitAsync();
        Assert.Equal(1, await app.CountAsync("DELETE FROM erasure_second_passes WHERE shop_id = $1 RETURNING 1", failing)); // still waiting, alone
    }

    /// <summary>
    /// A cart of hers that a writer in flight committed after the first pass, found then only through her login on the
    /// storefront (cart_customers, which the first pass deletes): the second pass still erases its note, with the carts the
    /// first pass found. Until 5 Dec 2026 the second pass had only her orders and visitor ids, and the cart kept its note.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_ASecondPass_ErasesACartOfHersFoundOnlyThroughHerLogin_ThatAWriterCommittedAfterTheFirst()
    {
        const string shop = "redact-race-cart.myshopify.com";
        const long customer = 6_452_101;
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("INSERT INTO cart_customers (shop_id, cart_token, customer_id, seen_at) VALUES ($1, 'cart-late-login', $2, now())", shopId, customer);

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = new JsonObject { ["id"] = customer } }.ToJsonString())).StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM cart_customers WHERE shop_id = $1", shopId));
        // The writer in flight: her cart, with her note, committed after the first pass looked (its row took the token
        // first, so the first pass's mark for a cart not held stood aside).
        await app.ScalarAsync("""
            INSERT INTO carts (shop_id, token, note, total_price, created_at, updated_at) VALUES ($1, 'cart-late-login', 'rq8840 ring twice', 30, now(), now())
            ON CONFLICT (shop_id, token) DO UPDATE SET note = excluded.note, total_price = excluded.total_price, created_at = excluded.created_at,
              updated_at = excluded.updated_at, redacted_at = NULL
            """, shopId);

        await app.RunErasureSecondPassAsync(shopId);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1 AND token = 'cart-late-login' AND note IS NULL AND redacted_at IS NOT NULL", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM erasure_second_passes WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// A guest's storefront visitor is tied to her only by the visitor id her order carries (the cart attribute our blocks set):
    /// no exposure outcome, no decision names her. Her events, exposures and answers as that visitor are exported and erased,
    /// another visitor's stay, and the order sent again does not tie them back. Until 5 Dec 2026 only visitors found through
    /// decisions naming her customer id were covered, so a guest's were neither exported nor erased.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_AGuestsStorefrontVisitor_IsFoundThroughHerOrder_ExportedAndErased()
    {
        const string shop = "redact-visitor.myshopify.com";
        const string email = "vq4410@example.com";
        var shopId = await app.InstallShopAsync(shop);
        var hers = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-vq4410")!;
        var other = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-someone-else")!;
        JsonObject Order(string updatedAt)
        {
            var o = ShopifyPayloads.Order(6_441_001, customerId: null, updatedAt: updatedAt);
            o["email"] = email;
            o["note_attributes"] = new JsonArray(new JsonObject { ["name"] = "_pluginapp_visitor", ["value"] = "vid-vq4410" });
            return o;
        }
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, Order("2026-07-02T12:00:00-04:00").ToJsonString())).StatusCode);
        foreach (var (visitor, request) in new[] { (hers, "r-vq-hers"), (other, "r-vq-other") })
        {
            await app.LogUpsellAsync(request, shopId, DateTimeOffset.UtcNow, [1], [2], visitorHash: visitor);
            await app.ScalarAsync("""
                INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, product_id, occurred_at) VALUES ($1, 'click', $2, $3, 2, now())
                """, shopId, request, visitor);
            await app.ScalarAsync("INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, first_at) VALUES ($1, 'upsells', 'v:' || $2, 'model', now())", shopId, visitor);
        }
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM experiment_outcomes WHERE shop_id = $1", shopId)); // exposed after the order
        var subject = new JsonObject { ["id"] = 6_441_101, ["email"] = email };

        await app.SendWebhookAsync("customers/data_request", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_requested"] = new JsonArray(), ["customer"] = subject.DeepClone(), ["data_request"] = new JsonObject { ["id"] = 41 } }.ToJsonString());
        var export = JsonNode.Parse((string)(await app.ScalarAsync("SELECT export::text FROM customer_data_requests WHERE shop_id = $1 AND data_request_id = 41", shopId))!)!;
        Assert.Equal(["r-vq-hers"], export["recommendation_events"]!.AsArray().Select(e => e!["request_id"]!.GetValue<string>()));
        Assert.Equal(["v:" + hers], export["experiment_exposures"]!.AsArray().Select(e => e!["unit"]!.GetValue<string>()));
        var decision = Assert.Single(export["decisions"]!.AsArray(), d => d!["kind"]!.GetValue<string>() == "upsell")!;
        // With what it read of her and answered her (until 5 Dec 2026 the export left out what the erasure clears).
        Assert.Equal([1L], decision["products_looked_at"]!.AsArray().Select(x => x!.GetValue<long>()));
        Assert.Equal([2L], decision["products_answered"]!.AsArray().Select(x => x!.GetValue<long>()));

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(6_441_001), ["customer"] = subject.DeepClone() }.ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/updated", shop, Order("2026-07-09T12:00:00-04:00").ToJsonString())).StatusCode);

        Assert.Equal(other, await app.ScalarAsync("SELECT string_agg(visitor_hash, ',') FROM recommendation_events WHERE shop_id = $1", shopId));
        Assert.Equal("v:" + other, await app.ScalarAsync("SELECT string_agg(unit, ',') FROM experiment_exposures WHERE shop_id = $1", shopId));
        Assert.Equal(other, await app.ScalarAsync("SELECT string_agg(visitor_hash, ',') FROM decisions WHERE shop_id = $1 AND visitor_hash IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND updated_at > '2026-07-05' AND visitor_hash IS NULL AND email IS NULL", shopId));

        // A decision of hers queued before the erasure and written after its first pass (the decision log's queue through a
        // database outage, flushed within its minute): the second pass still knows her visitor id, which the first blanked on
        // her order (until 5 Dec 2026 it read the request again, found no visitor, and the decision kept hers and its inputs).
        // Shopify asks again meanwhile: the second request carries on what the first found (until 5 Dec 2026 it replaced
        // the first's pending pass with its own, which could not find her visitor id any more).
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(6_441_001), ["customer"] = subject.DeepClone() }.ToJsonString())).StatusCode);
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Upsell, "r-vq-late", shopId, app.Clock.GetUtcNow(), "model")
        {
            Subject = "product", VisitorHash = hers, Inputs = "{\"viewed\": [1]}", InputIds = [1], OutputIds = [2],
        });
        await app.RunErasureSecondPassAsync(shopId);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND (visitor_hash = $2 OR inputs IS NOT NULL)", shopId, hers));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'r-vq-late'", shopId));
    }

    /// <summary>
    /// Two customers on one browser (a household's laptop): the browser's visitor id ties its anonymous rows to the customer
    /// who asks, but rows another customer left there logged in are hers, not the asker's. Until 6 Dec 2026 every row under
    /// the shared visitor id went into the asker's export and was erased with her (the other's events, decisions and
    /// exposures included).
    /// </summary>
    [Fact]
    public async Task ASharedBrowser_TheOtherCustomersLoggedInRows_AreNeitherExportedNorErasedWithTheAskers()
    {
        const string shop = "redact-shared-browser.myshopify.com";
        const long asker = 6_451_001, other = 6_451_002;
        var shopId = await app.InstallShopAsync(shop);
        var shared = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-household")!;
        foreach (var (request, customer) in new[] { ("r-hh-asker", (long?)asker), ("r-hh-other", other), ("r-hh-anonymous", null) })
        {
            await app.LogUpsellAsync(request, shopId, DateTimeOffset.UtcNow, [1], [2], visitorHash: shared, customerId: customer);
            await app.ScalarAsync("""
                INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, occurred_at) VALUES ($1, 'click', $2, $3, nullif($4, 0), 2, now())
                """, shopId, request, shared, customer ?? 0L);
        }
        await app.ScalarAsync("INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, first_at, customer_id) VALUES ($1, 'upsells', 'v:' || $2, 'model', now(), $3)", shopId, shared, other);
        await app.ScalarAsync("""
            INSERT INTO discount_codes (shop_id, code, percent, state, created_at, expires_at, visitor_hash, decision_id, handed_out_at)
            VALUES ($1, 'HH-OTHER', 10, 'handed_out', now(), now() + interval '2 days', $2, 'r-hh-other', now())
            """, shopId, shared);
        var subject = new JsonObject { ["id"] = asker, ["email"] = "hh-asker@example.com" };

        await app.SendWebhookAsync("customers/data_request", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_requested"] = new JsonArray(), ["customer"] = subject.DeepClone(), ["data_request"] = new JsonObject { ["id"] = 45 } }.ToJsonString());
        var export = JsonNode.Parse((string)(await app.ScalarAsync("SELECT export::text FROM customer_data_requests WHERE shop_id = $1 AND data_request_id = 45", shopId))!)!;
        Assert.Equal(["r-hh-anonymous", "r-hh-asker"], export["recommendation_events"]!.AsArray().Select(e => e!["request_id"]!.GetValue<string>()).Order());
        Assert.Empty(export["experiment_exposures"]!.AsArray());
        Assert.Empty(export["discount_codes"]!.AsArray());
        Assert.Equal(2, export["decisions"]!.AsArray().Count(d => d!["kind"]!.GetValue<string>() == "upsell"));

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = subject.DeepClone() }.ToJsonString())).StatusCode);

        Assert.Equal("r-hh-other", await app.ScalarAsync("SELECT string_agg(request_id, ',') FROM recommendation_events WHERE shop_id = $1 AND visitor_hash = $2 AND customer_id = $3", shopId, shared, other));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM recommendation_events WHERE shop_id = $1", shopId));
        Assert.Equal("r-hh-other", await app.ScalarAsync("SELECT string_agg(decision_id, ',') FROM decisions WHERE shop_id = $1 AND visitor_hash = $2 AND customer_id = $3", shopId, shared, other));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM experiment_exposures WHERE shop_id = $1 AND customer_id = $2", shopId, other));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM discount_codes WHERE shop_id = $1 AND code = 'HH-OTHER' AND visitor_hash = $2", shopId, shared));
    }

    /// <summary>
    /// A cart the asker's browser held anonymously that another customer then logged in on (a household's), and another
    /// customer's order that carries the asker's email (edited, or an address handed on): the other customer's offer decision
    /// on the cart, the code handed to them there, their login on it, and the third customer's order are neither exported nor
    /// erased with the asker's. Until 6 Dec 2026 what was found through her carts was taken whoever was logged in, and an
    /// order was hers by its email alone.
    /// </summary>
    [Fact]
    public async Task ASharedCart_AndAnotherCustomersOrderWithHerEmail_AreNotTheAskers()
    {
        const string shop = "redact-shared-cart.myshopify.com";
        const long asker = 6_452_001, other = 6_452_002, third = 6_452_003;
        var shopId = await app.InstallShopAsync(shop);
        var shared = PluginApp.Experiments.Assignment.VisitorHash(shop, "vid-household-cart")!;
        var now = DateTimeOffset.UtcNow;
        await app.LogUpsellAsync("r-hc-asker", shopId, now, [1], [2], visitorHash: shared, customerId: asker); // ties the browser to her
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "o-hc-anonymous", shopId, now, "model")
            { Subject = "nothing", VisitorHash = shared, CartToken = "cart-hc" });
        await app.LogDecisionAsync(new PluginApp.Governance.Decision(PluginApp.Governance.DecisionKinds.Offer, "o-hc-other", shopId, now.AddMinutes(5), "model")
            { Subject = "discount", VisitorHash = shared, CartToken = "cart-hc", CustomerId = other });
        await app.ScalarAsync("""
            INSERT INTO discount_codes (shop_id, code, percent, state, created_at, expires_at, cart_token, visitor_hash, decision_id, handed_out_at)
            VALUES ($1, 'HC-OTHER', 10, 'handed_out', now(), now() + interval '2 days', 'cart-hc', $2, 'o-hc-other', now())
            """, shopId, shared);
        await app.ScalarAsync("INSERT INTO cart_customers (shop_id, cart_token, customer_id, seen_at) VALUES ($1, 'cart-hc', $2, now())", shopId, other);
        var thirds = ShopifyPayloads.Order(6_452_101, customerId: third);
        thirds["email"] = "hc-asker@example.com";
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, thirds.ToJsonString())).StatusCode);
        var subject = new JsonObject { ["id"] = asker, ["email"] = "hc-asker@example.com" };

        await app.SendWebhookAsync("customers/data_request", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_requested"] = new JsonArray(), ["customer"] = subject.DeepClone(), ["data_request"] = new JsonObject { ["id"] = 46 } }.ToJsonString());
        var export = (string)(await app.ScalarAsync("SELECT export::text FROM customer_data_requests WHERE shop_id = $1 AND data_request_id = 46", shopId))!;
        var offers = JsonNode.Parse(export)!["decisions"]!.AsArray().Where(d => d!["kind"]!.GetValue<string>() == "offer").Select(d => d!["subject"]!.GetValue<string>());
        Assert.Equal(["nothing"], offers);
        Assert.DoesNotContain("HC-OTHER", export);
        Assert.DoesNotContain("6452101", export);
        Assert.DoesNotContain(other.ToString(System.Globalization.CultureInfo.InvariantCulture), export);

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(), ["customer"] = subject.DeepClone() }.ToJsonString())).StatusCode);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'o-hc-other' AND cart_token = 'cart-hc' AND customer_id = $2", shopId, other));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1 AND decision_id = 'o-hc-anonymous' AND cart_token IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM discount_codes WHERE shop_id = $1 AND code = 'HC-OTHER' AND cart_token = 'cart-hc'", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM cart_customers WHERE shop_id = $1 AND cart_token = 'cart-hc' AND customer_id = $2", shopId, other));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6452101 AND email = 'hc-asker@example.com' AND redacted_at IS NULL", shopId));
    }

    /// <summary>
    /// Her orders' lines credited to the upsell answers she saw are in her export (kept through her erasure: they hold no
    /// personal field). Until 6 Dec 2026 the table was not declared and the export left it out.
    /// </summary>
    [Fact]
    public async Task DataRequest_HoldsTheUpsellCreditOfHerOrders()
    {
        const string shop = "export-attributions.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6_453_001, customerId: 6_453_101).ToJsonString())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6_453_002, customerId: 6_453_102).ToJsonString())).StatusCode);
        await app.CountAsync("""
            INSERT INTO recommendation_attributions (shop_id, line_id, order_id, product_id, request_id, event_type, revenue, attributed_at)
            SELECT $1, l.id, l.order_id, coalesce(l.product_id, 0), 'r-credit-' || l.order_id, 'click', 12.50, now() FROM order_lines l
            WHERE l.shop_id = $1 AND l.order_id IN (6453001, 6453002)
            """, shopId);

        await app.SendWebhookAsync("customers/data_request", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_requested"] = new JsonArray(6_453_001), ["customer"] = new JsonObject { ["id"] = 6_453_101, ["email"] = "credit@example.com" },
            ["data_request"] = new JsonObject { ["id"] = 47 } }.ToJsonString());

        var export = JsonNode.Parse((string)(await app.ScalarAsync("SELECT export::text FROM customer_data_requests WHERE shop_id = $1 AND data_request_id = 47", shopId))!)!;
        var credit = export["recommendation_attributions"]!.AsArray();
        Assert.NotEmpty(credit);
        Assert.All(credit, c => Assert.Equal(6_453_001, c!["order_id"]!.GetValue<long>()));
        Assert.All(credit, c => Assert.Equal("click", c!["event"]!.GetValue<string>()));
    }

    /// <summary>
    /// A merchant who uninstalled and installed again before Shopify's shop/redact (48 hours after the uninstall) keeps
    /// their store: its token, its orders and its deliveries.
    /// </summary>
    [Fact]
    public async Task ShopRedact_ForAShopThatInstalledAgain_ErasesNothing()
    {
        const string shop = "returning-shop.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6361, customerId: 8361).ToJsonString());
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, $"{{\"id\": 6, \"myshopify_domain\": \"{shop}\"}}")).StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NOT NULL", shopId));
        Assert.Equal(shopId, await app.InstallShopAsync(shop));

        var response = await app.SendWebhookAsync("shop/redact", shop, $"{{\"shop_id\": 6, \"shop_domain\": \"{shop}\"}}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE id = $1 AND uninstalled_at IS NULL AND access_token_enc IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND id = 6361 AND email IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE shop_domain = $1 AND topic = 'orders/create'", shop));
    }

    [Fact]
    public async Task ShopRedact_ErasesEverythingHeldForTheShop()
    {
        const string shop = "closing-shop.myshopify.com";
        const string other = "staying-shop.myshopify.com";
        await app.InstallShopAsync(shop);
        await app.InstallShopAsync(other);
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(6201, customerId: 8201).ToJsonString());
        await app.SendWebhookAsync("products/create", shop, ShopifyPayloads.Product(6202).ToJsonString());
        await app.SendWebhookAsync("orders/create", other, ShopifyPayloads.Order(6203, customerId: 8203).ToJsonString());
        var shopId = (long)(await app.ScalarAsync("SELECT id FROM shops WHERE domain = $1", shop))!;
        // The order's risk scored and its calls to Shopify queued before the shop goes: they must go with it.
        for (var i = 0; i < 300 && await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1", shopId) == 0; i++)
            await Task.Delay(100);
        Assert.NotEqual(0, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1", shopId));
        await app.LogUpsellAsync("r-closing", shopId, DateTimeOffset.UtcNow, [6202], [6202], visitorHash: "abc");
        var run = await app.ScalarAsync("INSERT INTO backfill_runs (shop_id, state, started_at, updated_at) VALUES ($1, 'running', now(), now()) RETURNING id", shopId);
        await app.ScalarAsync("""
            INSERT INTO backfill_lines (run_id, phase, line_no, body) VALUES ($1, 'orders', 1, '{"id": "gid://shopify/Order/6201", "email": "ada@example.com"}')
            """, run!);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("app/uninstalled", shop, $"{{\"id\": 5, \"myshopify_domain\": \"{shop}\"}}")).StatusCode);

        var response = await app.SendWebhookAsync("shop/redact", shop, "{\"shop_id\": 5, \"shop_domain\": \"closing-shop.myshopify.com\"}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1", shop));
        foreach (var table in new[] { "orders", "order_lines", "customers", "products", "variants" })
            Assert.Equal(0, await app.CountAsync($"SELECT count(*) FROM {table} WHERE id IN (6201, 8201, 6202, 620100, 62020)"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE shop_domain = $1 AND topic <> 'shop/redact'", shop));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM decisions WHERE shop_id = $1", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM backfill_lines WHERE run_id = $1", run!)); // staged history goes with its run
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE id = 6203"));
        // Whatever a table keeps of a shop goes with it, whether by a foreign key's cascade or by a trigger (the order's
        // customer, its risk queue entry or score, ...).
        var tables = new List<string>();
        await using (var cmd = app.Db.CreateCommand("""
            SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema = 'public' AND c.column_name = 'shop_id' AND t.table_type = 'BASE TABLE' ORDER BY 1
            """))
        await using (var reader = await cmd.ExecuteReaderAsync())
            while (await reader.ReadAsync()) tables.Add(reader.GetString(0));
        Assert.Contains("risk_scores", tables);
        foreach (var table in tables)
            Assert.True(await app.CountAsync($"SELECT count(*) FROM {table} WHERE shop_id = $1", shopId) == 0, $"{table} still holds rows of the erased shop");
    }

    /// <summary>
    /// A request whose customer's email is blank (Shopify may send "" or a space for a customer without one) erases by the id
    /// alone. Until 5 Dec 2026 a space was searched for as an address, and every JSON text with two keys holds
    /// one: the running import's staged lines of every other customer were dropped with hers.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_WithABlankEmail_ErasesByTheIdAlone_AndLeavesOtherCustomersStagedLines()
    {
        const string shop = "redact-blank-email.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var run = await app.ScalarAsync("INSERT INTO backfill_runs (shop_id, state, started_at, updated_at) VALUES ($1, 'running', now(), now()) RETURNING id", shopId);
        await app.ScalarAsync("""
            INSERT INTO backfill_lines (run_id, phase, line_no, body) VALUES
              ($1, 'customers', 1, '{"id": "gid://shopify/Customer/8301", "email": "hers@example.com"}'),
              ($1, 'customers', 2, '{"id": "gid://shopify/Customer/8302", "email": "other@example.com"}')
            """, run!);
        var redact = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(),
            ["customer"] = new JsonObject { ["id"] = 8301, ["email"] = " ", ["phone"] = null },
        };

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, redact.ToJsonString())).StatusCode);

        Assert.Equal(new[] { "gid://shopify/Customer/8302" }, (await app.ScalarAsync(
            "SELECT array_agg(body ->> 'id' ORDER BY line_no) FROM backfill_lines WHERE run_id = $1", run!) as string[]) ?? []);
    }

    /// <summary>
    /// Her erasure during an import drops her staged lines and a guest's order of hers found by her address, not another
    /// customer's staged order or record that carries it (their own, as the stored rows' erasure has it). Until 8 Dec 2026
    /// those were dropped too, and never imported.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_DuringAnImport_LeavesAnotherCustomersStagedLinesThatCarryHerAddress()
    {
        const string shop = "redact-staged-email.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var run = await app.ScalarAsync("INSERT INTO backfill_runs (shop_id, state, started_at, updated_at) VALUES ($1, 'running', now(), now()) RETURNING id", shopId);
        await app.ScalarAsync("""
            INSERT INTO backfill_lines (run_id, phase, line_no, body) VALUES
              ($1, 'customers', 1, '{"id": "gid://shopify/Customer/8311", "email": "hers@example.com"}'),
              ($1, 'customers', 2, '{"id": "gid://shopify/Customer/8312", "email": "other@example.com", "note": "gift from hers@example.com"}'),
              ($1, 'orders', 3, '{"id": "gid://shopify/Order/8321", "email": "hers@example.com", "customer": {"id": "gid://shopify/Customer/8311"}}'),
              ($1, 'orders', 4, '{"id": "gid://shopify/Order/8322", "email": "hers@example.com", "customer": null}'),
              ($1, 'orders', 5, '{"id": "gid://shopify/Order/8323", "email": "hers@example.com", "customer": {"id": "gid://shopify/Customer/8312"}}')
            """, run!);
        var redact = new JsonObject
        {
            ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(),
            ["customer"] = new JsonObject { ["id"] = 8311, ["email"] = "hers@example.com", ["phone"] = null },
        };

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, redact.ToJsonString())).StatusCode);

        Assert.Equal(new[] { "gid://shopify/Customer/8312", "gid://shopify/Order/8323" }, (await app.ScalarAsync(
            "SELECT array_agg(body ->> 'id' ORDER BY line_no) FROM backfill_lines WHERE run_id = $1", run!) as string[]) ?? []);
    }

    [Fact]
    public async Task CustomersRedact_WithoutCustomerId_Returns400AndChangesNothing()
    {
        const string shop = "redact-bad.myshopify.com";
        await app.InstallShopAsync(shop);
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("customers/redact", shop, "{\"shop_domain\": \"redact-bad.myshopify.com\", \"customer\": {}}", delivery);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", delivery));
        _ = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
    }
}
