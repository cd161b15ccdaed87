using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Compliance;
using PluginApp.Ml.Recommenders;
using PluginApp.Recommendations;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Webhooks;

/// <summary>Every personal field is declared in one place, and customers/redact erases every declared field.</summary>
public sealed class PersonalDataTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>
    /// The Data and privacy page lists a store's newest 50 data requests and says how many there are; any older one is
    /// found by its customer's id, with its export. Until 6 Dec 2026 the page listed the newest 50 with no word of the
    /// others, and an older customer's export could not be downloaded from it.
    /// </summary>
    [Fact]
    public async Task PrivacyPage_SaysHowManyRequests_AndFindsAnOlderOneByItsCustomer()
    {
        const string shop = "privacy-many-requests.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.CountAsync("""
            INSERT INTO customer_data_requests (shop_id, customer_id, requested_at, export)
            SELECT $1, 96990000 + i, now() - interval '1 hour' * i, '{}' FROM generate_series(1, 60) i
            """, shopId);
        async Task<string> PageAsync(string query = "") =>
            await (await app.Client.GetAsync($"/admin/privacy?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}{query}")).Content.ReadAsStringAsync();

        var page = await PageAsync();
        var oldest = await PageAsync("&customer=96990060");

        Assert.Contains("The newest 50 of 60 requests", page);
        Assert.DoesNotContain("customer 96990060's data", page);
        Assert.Contains("customer 96990001's data", page);
        Assert.Contains("Download customer 96990060's data (JSON)", oldest);
        Assert.DoesNotContain("customer 96990001's data", oldest);
        Assert.Contains("No request from customer 5.", await PageAsync("&customer=5"));
        // A store no customer has asked shows no search box over "No customer has asked for their data".
        await app.InstallShopAsync("privacy-no-requests.myshopify.com");
        var none = await (await app.Client.GetAsync($"/admin/privacy?shop=privacy-no-requests.myshopify.com&embedded=1&id_token={app.SessionToken("privacy-no-requests.myshopify.com")}")).Content.ReadAsStringAsync();
        Assert.Contains("No customer has asked for their data.", none);
        Assert.DoesNotContain("Find a customer's requests", none);
    }

    [Fact]
    public async Task EveryTableWithAPersonLookingColumn_IsDeclared()
    {
        var catalog = app.Factory.Services.GetRequiredService<PersonalDataCatalog>();

        var undeclared = await PersonalDataAudit.UndeclaredAsync(app.Db, catalog);

        Assert.True(undeclared.Count == 0, "Declare these in a PersonalDataTable (with their erasure) or as not personal: " + string.Join(", ", undeclared.Select(c => $"{c.Table}.{c.Column}")));
        var missing = await PersonalDataAudit.DeclaredButAbsentAsync(app.Db, catalog);
        Assert.True(missing.Count == 0, "Declared but not in the schema: " + string.Join(", ", missing.Select(c => $"{c.Table}.{c.Column}")));
    }

    [Fact]
    public void ATableThatIsNeitherExportedNorSaysWhyNot_StopsTheAppFromStarting()
    {
        var erase = "DELETE FROM t WHERE shop_id = $1 AND customer_id = $2";
        var e = Assert.Throws<InvalidOperationException>(() => new PersonalDataCatalog([new PersonalDataTable("t", ["customer_id"], erase)], [], [], [], []));
        Assert.Contains("personal data of t", e.Message);
        Assert.All(app.Factory.Services.GetRequiredService<PersonalDataCatalog>().Tables, t => Assert.True(t.Export is not null ^ t.NotExported is not null, t.Table));
        // Rows may stay after an erasure only when they hold no personal field, and the reason is given.
        var kept = Assert.Throws<InvalidOperationException>(() => new PersonalDataCatalog(
            [new PersonalDataTable("t", ["customer_id"], null, Export: "SELECT '[]'::jsonb", NotErased: "evidence")], [], [], [], []));
        Assert.Contains("why its rows stay", kept.Message);
    }

    [Fact]
    public async Task CustomersRedact_ErasesEveryDeclaredPersonalField()
    {
        const string shop = "erase-all.myshopify.com";
        const long customer = 8_800_101, order = 8_800_201, guestOrder = 8_800_202;
        const string email = "zq7731@example.com", name = "Zqname", note = "zq7731-note", ip = "198.51.100.231";
        var shopId = await app.InstallShopAsync(shop);
        var c = ShopifyPayloads.Customer(customer, email);
        c["first_name"] = name;
        await Send("customers/create", c);
        var o = ShopifyPayloads.Order(order, customerId: customer);
        o["email"] = email; o["browser_ip"] = ip; o["cart_token"] = "cart-zq"; o["checkout_token"] = "ck-zq"; o["note"] = note;
        ((JsonObject)o["customer"]!)["email"] = email;
        ((JsonObject)o["customer"]!)["first_name"] = name;
        await Send("orders/create", o);
        var guest = ShopifyPayloads.Order(guestOrder, customerId: null);
        guest["email"] = email; guest["browser_ip"] = ip;
        await Send("orders/create", guest);
        var refund = ShopifyPayloads.Refund(8_800_301, order, order * 100);
        refund["note"] = note;
        await Send("refunds/create", refund);
        var cart = ShopifyPayloads.Cart("cart-zq");
        cart["note"] = note;
        await Send("carts/update", cart);
        var guestCheckout = ShopifyPayloads.Checkout(8_800_401, customerId: null);
        guestCheckout["email"] = email;
        await Send("checkouts/create", guestCheckout);
        var checkout = ShopifyPayloads.Checkout(8_800_402, customerId: customer);
        checkout["email"] = email; checkout["token"] = "ck-zq";
        await Send("checkouts/create", checkout);
        await Send("customers/data_request", new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_requested"] = new JsonArray(order),
            ["customer"] = new JsonObject { ["id"] = customer, ["email"] = email }, ["data_request"] = new JsonObject { ["id"] = 5 } });
        await app.LogUpsellAsync("r-zq", shopId, DateTimeOffset.UtcNow, [1], [2], visitorHash: "zq7731-visitor", customerId: customer);
        await app.ScalarAsync("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, occurred_at)
            VALUES ($1, 'click', 'r-zq', 'zq7731-visitor', NULL, 2, now()), ($1, 'click', 'r-zq2', NULL, $2, 2, now())
            """, shopId, customer);
        await app.ScalarAsync("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at)
            VALUES ($1, 'gid://shopify/Customer/' || $2, 'tagsAdd', jsonb_build_object('note', 'zq7731-note'), 'k-zq', now(), now())
            """, shopId, customer);
        // Churn's metafield batches: one sent and one waiting with her and another customer, one waiting with her alone.
        await app.ScalarAsync("""
            INSERT INTO outbox_messages (shop_id, resource_key, operation, variables, idempotency_key, created_at, next_attempt_at, completed_at)
            SELECT $1, 'churn-metafields', 'metafieldsSet', jsonb_build_object('metafields', jsonb_agg(jsonb_build_object('ownerId', 'gid://shopify/Customer/' || c,
                     'namespace', 'pluginapp', 'key', 'churn_segment', 'value', 'at_risk') ORDER BY c)), k, now(), now(), CASE WHEN k = 'mf-sent' THEN now() END
            FROM (VALUES ('mf-sent', $2), ('mf-sent', 8800999), ('mf-both', $2), ('mf-both', 8800999), ('mf-hers', $2)) AS b(k, c) GROUP BY k
            """, shopId, customer);
        await app.ScalarAsync("""
            INSERT INTO review_decisions (shop_id, order_id, decision, note, decided_by, decided_at)
            VALUES ($1, $2, 'note', 'zq7731 called, says the card is hers', 'staff user 42', now()), ($1, $3, 'fraud', NULL, 'staff user 42', now())
            """, shopId, order, guestOrder);
        var stripe = await app.ScalarAsync("""
            INSERT INTO stripe_connections (shop_id, endpoint_id, restricted_key_enc, webhook_secret_enc, livemode, connected_at, updated_at)
            VALUES ($1, 'erase-all-endpoint', 'enc', 'enc', false, now(), now()) RETURNING id
            """, shopId);
        await app.ScalarAsync("""
            INSERT INTO stripe_events (connection_id, shop_id, id, type, api_version, livemode, created_at, received_at, charge_id, charge, payload, state, order_id, matched_by)
            VALUES ($1, $2, 'evt_zq1', 'charge.dispute.created', 'v', false, now(), now(), 'ch_zq1', jsonb_build_object('metadata', jsonb_build_object('note', 'zq7731-note')),
                    '{"id": "dp_zq1"}', 'labelled', $3, 'charge metadata order_id'),
                   ($1, $2, 'evt_zq2', 'charge.dispute.created', 'v', false, now(), now(), 'ch_zq2', jsonb_build_object('metadata', jsonb_build_object('buyer', 'zq7731@example.com')),
                    '{"id": "dp_zq2"}', 'unmatched', NULL, NULL)
            """, stripe!, shopId, order);
        await app.ScalarAsync("UPDATE stripe_events SET retry_at = now() WHERE shop_id = $1 AND id = 'evt_zq2'", shopId); // due to be matched again
        var run = await app.ScalarAsync("INSERT INTO backfill_runs (shop_id, state, started_at, updated_at) VALUES ($1, 'running', now(), now()) RETURNING id", shopId);
        await app.ScalarAsync("""
            INSERT INTO backfill_lines (run_id, phase, line_no, body) VALUES ($1, 'customers', 1, json_build_object('id', 'gid://shopify/Customer/' || $2, 'email', 'zq7731@example.com'))
            """, run!, customer);
        // The storefront customer of a cart she filled logged in, kept for purchase-intent training.
        await app.ScalarAsync("INSERT INTO cart_customers (shop_id, cart_token, customer_id, seen_at) VALUES ($1, 'zq7731-cart', $2, now())", shopId, customer);
        // Her guest order's outcome, joined to a visitor no decision of hers names.
        await app.ScalarAsync("""
            INSERT INTO experiment_outcomes (shop_id, experiment, order_id, arm, visitor_hash, customer_id, revenue, ordered_at, unit)
            VALUES ($1, 'upsells', $2, 'model', 'zq7731-guest-visitor', NULL, 20, now(), 'v:zq7731-guest-visitor')
            """, shopId, guestOrder);

        var response = await Send("customers/redact", new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(order),
            ["customer"] = new JsonObject { ["id"] = customer, ["email"] = email } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await app.RunErasureSecondPassAsync(shopId); // the request is kept until then
        var catalog = app.Factory.Services.GetRequiredService<PersonalDataCatalog>();
        foreach (var table in catalog.Tables)
            foreach (var column in table.Columns)
            {
                var left = await app.CountAsync($"""
                    SELECT count(*) FROM {table.Table} WHERE {column}::text ILIKE ANY (ARRAY['%zq7731%', '%{name}%', '%{ip}%'])
                      {(column == "customer_id" ? $"OR {column} = {customer}" : "")}
                      {(column == "raw_body" ? "OR position(convert_to('zq7731', 'UTF8') in raw_body) > 0" : "")}
                    """);
                Assert.True(left == 0, $"{table.Table}.{column} still holds the erased customer in {left} rows");
            }
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND id = $2 AND redacted_at IS NOT NULL", shopId, customer));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1 AND id = 8800301 AND amount = 10", shopId)); // only the note goes
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1 AND variables::text LIKE '%Customer/' || $2 || '\"%'", shopId, customer));
        Assert.Equal("mf-both:8800999,mf-sent:8800999", await app.ScalarAsync("""
            SELECT string_agg(idempotency_key || ':' || substring(e ->> 'ownerId' FROM '[0-9]+$'), ',' ORDER BY idempotency_key)
            FROM outbox_messages, jsonb_array_elements(variables -> 'metafields') e WHERE shop_id = $1 AND resource_key = 'churn-metafields'
            """, shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1 AND idempotency_key = 'mf-hers'", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM review_decisions WHERE shop_id = $1", shopId)); // the decisions stay, without the note
        // The unmatched dispute is matched no more (matching reads the charge from Stripe again); the labelled one keeps its label.
        Assert.Equal("no_label/", await app.ScalarAsync("SELECT state || '/' || coalesce(retry_at::text, '') FROM stripe_events WHERE shop_id = $1 AND id = 'evt_zq2'", shopId));
        Assert.Equal("labelled", await app.ScalarAsync("SELECT state FROM stripe_events WHERE shop_id = $1 AND id = 'evt_zq1'", shopId));
    }

    /// <summary>
    /// A guest has no customer row to mark as erased: until 4 Dec the next orders/updated, checkouts/update or refund of her
    /// order wrote her email, address and card (and the refund's note) back.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_GuestOrderAndCheckout_StayErasedWhenShopifySendsThemAgain()
    {
        const string shop = "erase-guest.myshopify.com";
        const long guestOrder = 8_820_201, guestCheckout = 8_820_401;
        const string email = "gq5512@example.com";
        var shopId = await app.InstallShopAsync(shop);
        Task<HttpResponseMessage> SendTo(string topic, JsonObject body) => app.SendWebhookAsync(topic, shop, body.ToJsonString());
        JsonObject Guest(string updatedAt)
        {
            var o = ShopifyPayloads.Order(guestOrder, customerId: null, updatedAt: updatedAt);
            o["email"] = email;
            return o;
        }
        JsonObject Checkout(string updatedAt)
        {
            var k = ShopifyPayloads.Checkout(guestCheckout, customerId: null);
            k["email"] = email; k["updated_at"] = updatedAt;
            return k;
        }
        JsonObject Refund(long id)
        {
            var r = ShopifyPayloads.Refund(id, guestOrder, guestOrder * 100);
            r["note"] = $"{email} asked by phone";
            return r;
        }
        await SendTo("orders/create", Guest("2026-07-02T12:00:00-04:00"));
        await SendTo("checkouts/create", Checkout("2026-07-02T10:05:00-04:00"));
        await SendTo("refunds/create", Refund(8_820_301));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND email = $2 AND browser_ip IS NOT NULL", shopId, email));

        var erased = await SendTo("customers/redact", new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(guestOrder),
            ["customer"] = new JsonObject { ["id"] = 8_820_101, ["email"] = email } });
        Assert.Equal(HttpStatusCode.OK, erased.StatusCode);
        // Shopify then sends the order, the checkout and a refund again, newer and still carrying what she gave.
        Assert.Equal(HttpStatusCode.OK, (await SendTo("orders/updated", Guest("2026-07-09T12:00:00-04:00"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SendTo("checkouts/update", Checkout("2026-07-09T10:05:00-04:00"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SendTo("refunds/create", Refund(8_820_302))).StatusCode);

        Assert.Equal(1, await app.CountAsync("""
            SELECT count(*) FROM orders WHERE shop_id = $1 AND id = $2 AND updated_at > '2026-07-05'
              AND email IS NULL AND browser_ip IS NULL AND card_bin IS NULL AND card_last4 IS NULL
            """, shopId, guestOrder));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM checkouts WHERE shop_id = $1 AND token = $2 AND updated_at > '2026-07-05' AND email IS NULL", shopId, $"ck{guestCheckout}"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1 AND note IS NOT NULL", shopId));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1 AND order_id = $2", shopId, guestOrder));
        // A copy PostgreSQL refuses is kept aside as failed for the operator: without what she gave.
        var refused = Guest("2026-07-10T12:00:00-04:00");
        refused["total_price"] = "123456789012345678.00";
        var delivery = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/updated", shop, refused.ToJsonString(), delivery)).StatusCode);
        var refusedRefund = Refund(8_820_303);
        refusedRefund["transactions"]![0]!["amount"] = "123456789012345678.00";
        var refundDelivery = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("refunds/create", shop, refusedRefund.ToJsonString(), refundDelivery)).StatusCode);
        foreach (var kept in new[] { delivery, refundDelivery })
            Assert.Equal(1, await app.CountAsync("""
                SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1 AND outcome = 'failed' AND body ? 'redacted_at'
                  AND raw_body IS NULL AND position($2 in body::text) = 0
                """, kept, email));
    }

    /// <summary>
    /// Erasing a customer found by email leaves other customers whose addresses contain it, or match it with '_' read as any
    /// character: until 4 Dec their staged backfill lines were deleted (their rows then never arrived) with the erased one's.
    /// </summary>
    [Fact]
    public async Task CustomersRedact_ByEmail_LeavesCustomersWhoseAddressesOnlyResembleIt()
    {
        const string shop = "erase-lookalikes.myshopify.com";
        const long customer = 8_810_101;
        var shopId = await app.InstallShopAsync(shop);
        var run = await app.ScalarAsync("INSERT INTO backfill_runs (shop_id, state, started_at, updated_at) VALUES ($1, 'running', now(), now()) RETURNING id", shopId);
        string[] emails = ["A_N@example.com", "joa_n@example.com", "axn@example.com", "a_n@example.com.au", "a_n@example.co", "o'a_n@example.com"];
        for (var i = 0; i < emails.Length; i++)
            await app.ScalarAsync("""
                INSERT INTO backfill_lines (run_id, phase, line_no, body)
                VALUES ($1, 'orders', $2, json_build_object('id', 'gid://shopify/Order/' || (8810200 + $2), 'email', $3::text, 'note', 'ask ' || $3 || ', please'))
                """, run!, i + 1, emails[i]);

        var response = await app.SendWebhookAsync("customers/redact", shop, new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["customer"] = new JsonObject { ["id"] = customer, ["email"] = "a_n@example.com" } }.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var left = (string)(await app.ScalarAsync("SELECT string_agg(body ->> 'email', ',' ORDER BY line_no) FROM backfill_lines WHERE run_id = $1", run!))!;
        Assert.Equal("joa_n@example.com,axn@example.com,a_n@example.com.au,a_n@example.co,o'a_n@example.com", left);
    }

    [Fact]
    public async Task OldModelArtifactsWithShopperRows_AreRewrittenWithoutThem_AndServeTheSame()
    {
        var shopId = await app.InstallShopAsync("scrub-models.myshopify.com");
        Interaction[] data = [new(0, 0, 3), new(0, 1, 2), new(1, 1, 1), new(1, 2, 4), new(2, 0, 1), new(2, 2, 2), new(3, 3, 1), new(3, 1, 1)];
        var als = new AlsTrainer(new AlsOptions { Factors = 2, Iterations = 5, Seed = 1 }).Train(data, 4, 4);
        var pop = new PopularityTrainer(new PopularityOptions()).Train(data, 4);
        var co = new CoOccurrenceTrainer(new CoOccurrenceOptions()).Train(data, 4, 4);
        var v1 = FormatOne(als, pop, co, [11, 12, 13, 14]);
        await app.ScalarAsync("""
            INSERT INTO models (shop_id, kind, version, status, parameters, metrics, artifact, created_at) VALUES ($1, 'recommender', 1, 'active', '{}', '{}', $2, now())
            """, shopId, v1);

        var rewritten = await app.Factory.Services.GetRequiredService<ModelArtifactScrubber>().ScrubAsync(CancellationToken.None);

        Assert.True(rewritten >= 1);
        var stored = (byte[])(await app.ScalarAsync("SELECT artifact FROM models WHERE shop_id = $1", shopId))!;
        Assert.Equal(RecommenderBundle.FormatVersion, BitConverter.ToInt32(stored, 4));
        var bundle = RecommenderBundle.FromBytes(stored);
        Assert.Equal(0, bundle.Als.UserCount);
        Assert.Equal(als.RecommendForCart([0], 3).Select(s => s.Item), bundle.Als.RecommendForCart([0], 3).Select(s => s.Item));
    }

    [Fact]
    public async Task ModelRetention_KeepsTheActiveAndThreeNewest_DeletesOlderVersions()
    {
        var shopId = await app.InstallShopAsync("prune-models.myshopify.com");
        for (var v = 1; v <= 7; v++)
            await app.ScalarAsync("""
                INSERT INTO models (shop_id, kind, version, status, parameters, metrics, artifact, created_at)
                VALUES ($1, 'recommender', $2, CASE WHEN $2 = 2 THEN 'active' ELSE 'retired' END, '{}', '{}', '\x000000000000', now() - interval '60 days')
                """, shopId, v);
        await app.ScalarAsync("INSERT INTO models (shop_id, kind, version, status, parameters, metrics, artifact, created_at) VALUES ($1, 'recommender', 8, 'candidate', '{}', '{}', '\\x000000000000', now())", shopId);

        await ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services).RunAsync(CancellationToken.None);

        var left = (int[])(await app.ScalarAsync("SELECT array_agg(version ORDER BY version) FROM models WHERE shop_id = $1", shopId))!;
        Assert.Equal([2, 6, 7, 8], left);
    }

    /// <summary>
    /// A data request's export (a whole copy of what is held on her) is kept 90 days for the merchant to send on, then goes,
    /// and the page's retention card says so. Until 8 Dec 2026 it was kept as long as the app was installed.
    /// </summary>
    [Fact]
    public async Task DataRequestExports_AreKeptNinetyDays()
    {
        const string shop = "privacy-export-retention.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.CountAsync("""
            INSERT INTO customer_data_requests (shop_id, customer_id, requested_at, export)
            VALUES ($1, 96980001, $2::timestamptz - interval '91 days', '{"email":"a@example.com"}'), ($1, 96980002, $2::timestamptz - interval '89 days', '{}')
            """, shopId, app.Clock.GetUtcNow());

        await ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services).RunAsync(CancellationToken.None);

        var left = (long[])(await app.ScalarAsync("SELECT array_agg(customer_id) FROM customer_data_requests WHERE shop_id = $1", shopId))!;
        Assert.Equal(new[] { 96980002L }, left);
        var page = await (await app.Client.GetAsync($"/admin/privacy?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}")).Content.ReadAsStringAsync();
        Assert.Contains("customers&#x27; data-request exports</td><td class=\"num\">90 days", page);
    }

    /// <summary>
    /// A retention rule that fails (here its table is gone; in a store, a timeout on a month of deliveries) leaves the rules
    /// after it to run, and the job fails naming it. Until 8 Dec 2026 the first failure ended the run, and every later
    /// rule's rows (the decision log's last) stayed for as long as it kept failing.
    /// </summary>
    [Fact]
    public async Task Retention_ARuleThatFails_LeavesTheOthersToRun_AndTheJobFailsNamingIt()
    {
        var shopId = await app.InstallShopAsync("prune-after-failure.myshopify.com");
        await app.ScalarAsync("""
            INSERT INTO models (shop_id, kind, version, status, parameters, metrics, artifact, created_at)
            VALUES ($1, 'recommender', 1, 'retired', '{}', '{}', '\x000000000000', now() - interval '60 days')
            """, shopId);
        var catalog = new PersonalDataCatalog([], [], [
            new RetentionRule("a table since dropped", TimeSpan.FromDays(1), "DELETE FROM no_such_table WHERE created_at < $1"),
            new RetentionRule("this test's models", TimeSpan.FromDays(30), $"DELETE FROM models WHERE shop_id = {shopId} AND created_at < $1"),
        ], [], []);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services, catalog).RunAsync(CancellationToken.None));

        Assert.Contains("a table since dropped", failure.Message);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM models WHERE shop_id = $1", shopId));
    }

    /// <summary>
    /// Version 5 has served for two months while the nightly candidates 6–8 failed the gate: the version a rollback goes back
    /// to (4, the last that served before) is kept with them (until 5 Dec 2026 it was deleted, and Rollback had nothing).
    /// </summary>
    [Fact]
    public async Task ModelRetention_KeepsTheVersionARollbackGoesBackTo()
    {
        var shopId = await app.InstallShopAsync("prune-models-rollback.myshopify.com");
        for (var v = 3; v <= 8; v++)
            await app.ScalarAsync("""
                INSERT INTO models (shop_id, kind, version, status, parameters, metrics, artifact, created_at, activated_at)
                VALUES ($1, 'recommender', $2, CASE WHEN $2 = 5 THEN 'active' WHEN $2 < 5 THEN 'retired' ELSE 'candidate' END, '{}', '{}', '\x000000000000',
                        now() - interval '90 days' + $2 * interval '1 day', CASE WHEN $2 <= 5 THEN now() - interval '90 days' + $2 * interval '1 day' END)
                """, shopId, v);

        await ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services).RunAsync(CancellationToken.None);

        var left = (int[])(await app.ScalarAsync("SELECT array_agg(version ORDER BY version) FROM models WHERE shop_id = $1", shopId))!;
        Assert.Equal([4, 5, 6, 7, 8], left);
        Assert.Equal(4, await app.Factory.Services.GetRequiredService<PluginApp.Training.ModelRegistry>().RollbackAsync(shopId, "recommender", CancellationToken.None));
    }

    /// <summary>
    /// Versions 2, 3 and 4 served, then a rollback from 4 to 3, and three nightly candidates (5–7) failed the gate; two months
    /// on, the version a second rollback goes back to (2) is kept, not 4, which a rollback retired and no rollback returns to.
    /// Until 6 Dec 2026 retention kept 4 (the newest that served), deleted 2, and the second rollback had nothing.
    /// </summary>
    [Fact]
    public async Task ModelRetention_KeepsTheVersionASecondRollbackGoesBackTo()
    {
        var shopId = await app.InstallShopAsync("prune-models-rollback-twice.myshopify.com");
        for (var v = 2; v <= 7; v++)
            await app.ScalarAsync("""
                INSERT INTO models (shop_id, kind, version, status, status_reason, parameters, metrics, artifact, created_at, activated_at)
                VALUES ($1, 'recommender', $2, CASE WHEN $2 = 3 THEN 'active' WHEN $2 IN (2, 4) THEN 'retired' ELSE 'candidate' END,
                        CASE WHEN $2 = 4 THEN 'rolled back to version 3' END, '{}', '{}', '\x000000000000',
                        now() - interval '90 days' + $2 * interval '1 day', CASE WHEN $2 <= 4 THEN now() - interval '90 days' + $2 * interval '1 day' END)
                """, shopId, v);

        await ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services).RunAsync(CancellationToken.None);

        var left = (int[])(await app.ScalarAsync("SELECT array_agg(version ORDER BY version) FROM models WHERE shop_id = $1", shopId))!;
        Assert.Equal([2, 3, 5, 6, 7], left);
        Assert.Equal(2, await app.Factory.Services.GetRequiredService<PluginApp.Training.ModelRegistry>().RollbackAsync(shopId, "recommender", CancellationToken.None));
    }

    /// <summary>
    /// Training runs are kept 90 days (about four a store a day): older ones go, except each model kind's latest, which the
    /// new-orders check counts from however long ago it was, and a run still going.
    /// </summary>
    [Fact]
    public async Task TrainingRunRetention_DropsRunsOlderThan90Days_KeepingEachKindsLatestAndAnyStillRunning()
    {
        var shopId = await app.InstallShopAsync("prune-runs.myshopify.com");
        var now = app.Clock.GetUtcNow();
        var runs = new (string Kind, int DaysAgo, string State)[]
        {
            ("recommender", 200, "succeeded"), ("recommender", 120, "failed"), ("recommender", 95, "running"), ("recommender", 91, "skipped"),
            ("recommender", 80, "succeeded"), ("recommender", 2, "succeeded"),
            ("risk", 300, "skipped"), ("risk", 150, "skipped"),
        };
        foreach (var (kind, days, state) in runs)
            await app.ScalarAsync("""
                INSERT INTO training_runs (shop_id, kind, trigger, state, started_at, finished_at)
                VALUES ($1, $2, 'nightly', $3, $4, CASE WHEN $3 = 'running' THEN NULL ELSE $4 + interval '1 minute' END)
                """, shopId, kind, state, now.AddDays(-days));

        await ActivatorUtilities.CreateInstance<RetentionJob>(app.Factory.Services).RunAsync(CancellationToken.None);

        var left = (string[])(await app.ScalarAsync("SELECT array_agg(kind || ' ' || state ORDER BY kind, started_at) FROM training_runs WHERE shop_id = $1", shopId))!;
        Assert.Equal(["recommender running", "recommender succeeded", "recommender succeeded", "risk skipped"], left);
        Assert.Equal(now.AddDays(-150).UtcDateTime, ((DateTime)(await app.ScalarAsync("SELECT started_at FROM training_runs WHERE shop_id = $1 AND kind = 'risk'", shopId))!),
            TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// A refund Shopify sent for an order we never held (older than the import reached): the erasure lists the order, so the
    /// refund's note goes, and her export holds it.
    /// </summary>
    [Fact]
    public async Task ARefundOfAListedOrderWeNeverHeld_IsExportedAndErased()
    {
        const string shop = "erase-unheld-refund.myshopify.com";
        const long customer = 8_830_101, order = 8_830_201;
        var shopId = await app.InstallShopAsync(shop);
        Task<HttpResponseMessage> To(string topic, JsonObject body) => app.SendWebhookAsync(topic, shop, body.ToJsonString());
        var refund = ShopifyPayloads.Refund(8_830_301, order, order * 100);
        refund["note"] = "zq8830 called about the parcel";
        Assert.Equal(HttpStatusCode.OK, (await To("refunds/create", refund)).StatusCode);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        var who = new JsonObject { ["id"] = customer, ["email"] = "zq8830@example.com" };

        Assert.Equal(HttpStatusCode.OK, (await To("customers/data_request", new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_requested"] = new JsonArray(order), ["customer"] = who.DeepClone(), ["data_request"] = new JsonObject { ["id"] = 8830 } })).StatusCode);
        Assert.Contains("zq8830 called", (string)(await app.ScalarAsync("SELECT export::text FROM customer_data_requests WHERE shop_id = $1 AND data_request_id = 8830", shopId))!);
        Assert.Equal(HttpStatusCode.OK, (await To("customers/redact", new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop,
            ["orders_to_redact"] = new JsonArray(order), ["customer"] = who.DeepClone() })).StatusCode);

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1 AND note IS NOT NULL", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1 AND id = 8830301", shopId));
    }

    private Task<HttpResponseMessage> Send(string topic, JsonObject body) => app.SendWebhookAsync(topic, "erase-all.myshopify.com", body.ToJsonString());

    /// <summary>The bundle layout before format 2: the same, with the ALS model's user rows.</summary>
    private static byte[] FormatOne(AlsModel als, PopularityModel pop, CoOccurrenceModel co, long[] ids)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write(0x42524150u);
        w.Write(1);
        w.Write(ids.Length);
        foreach (var id in ids) w.Write(id);
        foreach (var save in new Action<Stream>[] { als.Save, pop.Save, co.Save })
        {
            using var blob = new MemoryStream();
            save(blob);
            w.Write((int)blob.Length);
            w.Write(blob.ToArray());
        }
        w.Flush();
        return ms.ToArray();
    }
}
