using System.Globalization;
using System.Text;
using System.Text.Json;
using PluginApp.StoreData;
using PluginApp.Data;

namespace PluginApp.Compliance;

/// <summary>
/// The three mandatory privacy actions, added to the delivery's batch so that a request is either fully carried out and
/// recorded, or not recorded at all and retried by Shopify. What is erased and exported is what features declared in the
/// <see cref="PersonalDataCatalog"/>.
/// </summary>
internal sealed class ComplianceService(StoreWriter store, long shopId, PersonalDataCatalog catalog)
{
    // Every order of the customer, found before anything is erased (a guest order is found by its email, which goes next;
    // see PersonalDataSql.GuestByEmail),
    // and every storefront visitor id tied to her (a guest's only through her orders' visitor). Why the tables are dropped
    // first: requests that share a batch share its transaction, and the tables of the one before are there until the commit
    // (the second was answered 500 and left to Shopify's retries).
    private const string DropFound = "DROP TABLE IF EXISTS pg_temp.redaction_orders, pg_temp.redaction_visitors, pg_temp.redaction_carts";

    private static readonly string FindOrders = $"""
        CREATE TEMP TABLE redaction_orders ON COMMIT DROP AS
        SELECT id, cart_token, checkout_token, visitor_hash FROM orders
        WHERE shop_id = $1 AND (customer_id = $2 OR id = ANY($3) OR {PersonalDataSql.GuestByEmail()})
        """;

    private string FindVisitors() =>
        "CREATE TEMP TABLE redaction_visitors ON COMMIT DROP AS SELECT DISTINCT v.visitor_hash FROM (SELECT visitor_hash FROM redaction_orders"
        + string.Concat(catalog.VisitorLinks.Select(l => $"\n  UNION ALL ({l.Sql})"))
        + ") v(visitor_hash) WHERE v.visitor_hash IS NOT NULL";

    // Every cart of hers: her orders' own, and those a feature ties to her (a checkout, her login, a decision logged for
    // her or her visitor id). Until 5 Dec 2026 only her orders' carts were looked up for the deliveries about carts, so a
    // body kept aside for a cart she was logged in on stayed whole, and her export left it out.
    private string FindCarts() => "CREATE TEMP TABLE redaction_carts ON COMMIT DROP AS " + CartsFound();

    /// <summary>Her carts as the cart links find them (parameters $1 shop, $2 customer, $3 orders listed, $4 email).</summary>
    private string CartsFound() =>
        "SELECT DISTINCT c.cart_token FROM (SELECT cart_token FROM redaction_orders"
        + string.Concat(catalog.CartLinks.Select(l => $"\n  UNION ALL ({l.Sql})"))
        + ") c(cart_token) WHERE c.cart_token IS NOT NULL";

    private void AddFound(long customerId, long[] orders, string? email, string[]? visitors = null)
    {
        store.Add(DropFound);
        store.Add(FindOrders, shopId, customerId, orders, Sql.Text(email));
        store.Add(FindVisitors(), shopId, customerId);
        if (visitors is { Length: > 0 })
            store.Add("INSERT INTO redaction_visitors SELECT v FROM unnest($1::text[]) v WHERE v NOT IN (SELECT visitor_hash FROM redaction_visitors)", (object)visitors);
    }

    /// <summary>After the orders and visitors are all found (a second request's carry on from its first).</summary>
    private void AddFoundCarts(long customerId, long[] orders, string? email) => store.Add(FindCarts(), shopId, customerId, orders, Sql.Text(email));

    /// <summary>
    /// Once the carts are all found (a second pass's carried over too): the visitor ids those carts lead to
    /// (<see cref="VisitorLink.ByCarts"/>), then the carts those visitor ids lead to, once. Why the second look: a guest's cart
    /// found through her checkout (by her email) is known only once the carts are, and until 7 Dec 2026 the visitor ids of
    /// the answers on it, that visitor's events and exposures, and the visitor's other carts, were neither erased nor
    /// exported.
    /// </summary>
    private void AddFoundThroughCarts(long customerId, long[] orders, string? email)
    {
        if (catalog.VisitorLinks.Where(l => l.ByCarts is not null).Select(l => $"({l.ByCarts})").ToList() is not { Count: > 0 } byCarts) return;
        store.Add($"""
            INSERT INTO redaction_visitors SELECT DISTINCT v.visitor_hash FROM ({string.Join("\n  UNION ALL ", byCarts)}) v(visitor_hash)
            WHERE v.visitor_hash IS NOT NULL AND v.visitor_hash NOT IN (SELECT visitor_hash FROM redaction_visitors WHERE visitor_hash IS NOT NULL)
            """, shopId, customerId);
        store.Add($"INSERT INTO redaction_carts {CartsFound()} AND c.cart_token NOT IN (SELECT cart_token FROM redaction_carts)",
            shopId, customerId, orders, Sql.Text(email));
    }

    /// <summary>customers/data_request: assemble what we hold on the customer and keep it for the merchant.</summary>
    public void AddDataRequest(JsonElement payload, DateTimeOffset now)
    {
        var (customerId, orders, email) = Subject(payload, "orders_requested");
        AddFound(customerId, orders, email);
        AddFoundCarts(customerId, orders, email);
        AddFoundThroughCarts(customerId, orders, email);
        var parts = catalog.Tables.Where(t => t.Export is not null)
            .Select(t => $"'{t.ExportAs ?? t.Table}', ({t.Export})");
        var sql = new StringBuilder("INSERT INTO customer_data_requests (shop_id, customer_id, data_request_id, requested_at, export) SELECT $1, $2, $5, $6, jsonb_build_object(")
            .Append(string.Join(", ", parts)).Append(')').ToString();
        store.Add(sql, shopId, customerId, orders, Sql.Text(email),
            payload.OptionalObject("data_request")?.OptionalId("id") ?? (object)new TypedNull(NpgsqlTypes.NpgsqlDbType.Bigint), now);
    }

    /// <summary>
    /// customers/redact: erase the customer's personal data wherever a feature declared it, raw deliveries included; and keep
    /// the request for its second pass (<see cref="ErasureSecondPassJob"/>), which erases what writers in flight committed
    /// after this one had looked. The second pass's own erasure deletes the kept request. It is kept with the orders and
    /// visitor ids and carts this pass found, which the second pass cannot find again: this pass blanks what found them (a
    /// guest's email, the orders' visitor ids, her logins' and decisions' carts).
    /// </summary>
    /// <param name="found">The second pass: the first pass's orders, visitor ids and carts.</param>
    public void AddCustomerRedaction(JsonElement payload, DateTimeOffset now, (long[] Orders, string[] Visitors, string[] Carts)? found = null)
    {
        var (customerId, orders, email) = Subject(payload, "orders_to_redact");
        if (found is { } f) orders = [.. orders.Union(f.Orders)];
        AddFound(customerId, orders, email, found?.Visitors);
        // A request again before the last one's second pass: what that one found (and blanked, so it cannot be found again)
        // carries on into this one, whose erasure deletes the pending request once the second-pass job has seen it, and keeps
        // its own. Until 5 Dec 2026 it was dropped, and a writer in flight from the first request's time kept her visitor id.
        // A second pass carries on the others pending likewise: a late order of hers queues a pass of its own
        // (SegmentRows.ErasedTokensFor) beside her second pass, and whichever runs first deletes the older ones the job has
        // seen, which would otherwise be dropped unrun; one not seen yet runs on its own.
        store.Add("""
            WITH pending AS (SELECT orders, visitors FROM erasure_second_passes WHERE shop_id = $1 AND customer_id = $2),
            orders_found AS (
                INSERT INTO redaction_orders SELECT o.id, o.cart_token, o.checkout_token, o.visitor_hash FROM orders o
                WHERE o.shop_id = $1 AND o.id IN (SELECT unnest(orders) FROM pending) AND o.id NOT IN (SELECT id FROM redaction_orders))
            INSERT INTO redaction_visitors SELECT DISTINCT v FROM pending, unnest(pending.visitors) v
            WHERE v NOT IN (SELECT visitor_hash FROM redaction_visitors WHERE visitor_hash IS NOT NULL)
            """, shopId, customerId);
        AddFoundCarts(customerId, orders, email);
        // The carts the first pass found, and the pending ones'.
        store.Add("""
            INSERT INTO redaction_carts SELECT DISTINCT c FROM unnest($3::text[] || ARRAY(
                SELECT unnest(carts) FROM erasure_second_passes WHERE shop_id = $1 AND customer_id = $2)) c
            WHERE c NOT IN (SELECT cart_token FROM redaction_carts)
            """, shopId, customerId, found?.Carts ?? []);
        AddFoundThroughCarts(customerId, orders, email);
        foreach (var table in catalog.Tables)
            if (table.Erase is { } erase) store.Add(erase, shopId, customerId, orders, Sql.Text(email), now);
        if (found is null)
            store.Add("""
                INSERT INTO erasure_second_passes (shop_id, customer_id, request, requested_at, orders, visitors, carts)
                SELECT $1, $2, $3::jsonb, $4, ARRAY(SELECT id FROM redaction_orders), ARRAY(SELECT visitor_hash FROM redaction_visitors),
                       ARRAY(SELECT cart_token FROM redaction_carts)
                ON CONFLICT DO NOTHING
                """, shopId, customerId, payload.GetRawText(), now);
    }

    /// <summary>
    /// shop/redact: erase everything we hold for the shop. Store rows cascade from the shop row. Not for a shop that has
    /// installed the app again since the uninstall it follows: Shopify sends it 48 hours after an uninstall, and a merchant
    /// who came back within them is a customer again, whose token and data the app runs on (until 5 Dec 2026 their store
    /// was deleted, token and all). Told by the shop's latest grant, later than 48 hours before the redaction was triggered
    /// (or received, without the header). A shop that still reads as installed with a token Shopify has not refused is not
    /// erased here: Shopify is asked first (<see cref="ShopTokenChecks"/>), as the time the request was triggered is an
    /// unsigned header, and a signed body replayed with a fresh time would otherwise erase a merchant who came back more
    /// than 48 hours ago (until 6 Dec 2026). A shop whose uninstall we never recorded is erased once Shopify refuses its token.
    /// </summary>
    public static void AddShopRedaction(StoreWriter store, string domain, string keepDeliveryId, DateTimeOffset triggeredAt, DateTimeOffset receivedAt)
    {
        // Why lock the shop first: a risk scoring run holds it (FOR KEY SHARE) while it writes its decisions, and an install
        // updates it; waiting for them here means their decisions are seen and erased, and a reinstall is seen.
        store.Add("SELECT 1 FROM shops WHERE domain = $1 FOR UPDATE", domain);
        var uninstalledBy = triggeredAt - ShopRedactionDelay;
        store.Add($"""
            INSERT INTO shop_token_checks (shop_id, topic, delivery_id, triggered_at, requested_at, next_at)
            SELECT id, '{Webhooks.WebhookTopics.ShopRedact}', $2, $6, $4, $5 FROM shops
            WHERE domain = $1 AND {StoreData.ShopStatus.Reachable()} AND coalesce(granted_at, '-infinity') <= $3
            ON CONFLICT (shop_id, topic) DO NOTHING
            """, domain, keepDeliveryId, uninstalledBy, receivedAt, receivedAt + ShopTokenChecks.FirstAsk, triggeredAt);
        // Nor a shop whose admin sent a session token issued after the uninstall (migration 0097): she installed again, with no
        // grant the app saw (a managed install), on a token Shopify revoked at the uninstall; her next visit exchanges it.
        string Gone(int since) =>
            $"NOT EXISTS (SELECT 1 FROM shops WHERE domain = $1 AND {StoreData.ShopStatus.Installed()} AND (token_revoked_at IS NULL OR granted_at > ${since} OR session_seen_at > ${since} + interval '2 minutes'))";
        store.Add($"DELETE FROM webhook_deliveries WHERE shop_domain = $1 AND delivery_id <> $2 AND {Gone(3)}", domain, keepDeliveryId, uninstalledBy);
        // Decisions are a high-volume log without a foreign key; the rest cascades from the shop row.
        store.Add($"DELETE FROM decisions WHERE shop_id = (SELECT id FROM shops WHERE domain = $1) AND {Gone(2)}", domain, uninstalledBy);
        store.Add($"DELETE FROM shops WHERE domain = $1 AND {Gone(2)}", domain, uninstalledBy);
        store.Notify("shop_changed", domain);
    }

    /// <summary>How long after an uninstall Shopify sends shop/redact.</summary>
    public static readonly TimeSpan ShopRedactionDelay = TimeSpan.FromHours(48);

    /// <summary>Checks a compliance payload before anything is written.</summary>
    public static void Validate(string topic, JsonElement payload) =>
        _ = Subject(payload, topic == "customers/redact" ? "orders_to_redact" : "orders_requested");

    private static (long CustomerId, long[] Orders, string? Email) Subject(JsonElement payload, string list)
    {
        var customer = payload.OptionalObject("customer") ?? throw new MalformedPayloadException("'customer' is missing");
        var id = customer.RequiredId("id");
        var orders = payload.OptionalArray(list).Select(o =>
            o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out var order) ? order
                : throw new MalformedPayloadException($"'{list}' holds a value that is not an order id")).ToArray();
        // Blank is none (an email of spaces matched every delivery, staged line and Stripe event as "mentioning" it).
        return (id, orders, customer.OptionalEmail("email"));
    }

    internal static string CustomerGid(long id) => StoreData.Gid.Of("Customer", id);
}
