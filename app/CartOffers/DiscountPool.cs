using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using PluginApp.Data;
using PluginApp.Outbox;
using PluginApp.StoreData;

namespace PluginApp.CartOffers;

/// <summary>A code handed to a cart.</summary>
public sealed record HandedCode(string Code, decimal Percent, DateTimeOffset ExpiresAt, decimal Amount);

/// <summary>
/// Single-use discount codes created ahead of need, a few per shop: each is created in Shopify through the outbox
/// (<see cref="Create"/>, usage limit 1, once per customer, an end date), becomes ready once Shopify has it, is handed to
/// one cart (a cart asking again gets the same code; two carts never get one code), and is marked used by the order that
/// carries it. Why a pool: creating a code takes a Shopify call, too slow for a cart page; and codes made on demand for
/// whoever asks would leak.
/// </summary>
public sealed class DiscountPool(NpgsqlDataSource db, OutboxScheduler outbox, TimeProvider clock)
{
    public const string Prefix = "PA-";
    private const string Alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // no 0/O, 1/I: read aloud or typed, they are not confused

    /// <summary>
    /// discountCodeBasicCreate is not idempotent (a second call with the same code is refused as a duplicate, and a lost
    /// answer would look like a failure); before a resend, the code is looked up and found means the first call landed.
    /// </summary>
    public static readonly OutboxOperation Create = new("discountCodeBasicCreate",
        """
        mutation CreateCode($d: DiscountCodeBasicInput!) {
          discountCodeBasicCreate(basicCodeDiscount: $d) { codeDiscountNode { id } userErrors { field message code } }
        }
        """,
        new OutboxCheck("query CodeExists($code: String!) { codeDiscountNodeByCode(code: $code) { id } }",
            v => new { code = v.GetProperty("d").GetProperty("code").GetString() },
            (data, _) => data.TryGetProperty("codeDiscountNodeByCode", out var node) && node.ValueKind == JsonValueKind.Object));

    private static string NewCode()
    {
        Span<char> chars = stackalloc char[10];
        for (var i = 0; i < chars.Length; i++) chars[i] = Alphabet[RandomNumberGenerator.GetInt32(Alphabet.Length)];
        return Prefix + new string(chars);
    }

    /// <summary>Codes Shopify now has become ready and expired ones leave the pool (what the page shows reads it fresh).</summary>
    public async Task SettleAsync(long shopId, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await SettleAsync(conn, null, shopId, clock.GetUtcNow(), ct);
    }

    /// <summary>
    /// Codes Shopify now has become ready, and codes whose creation Shopify refused (the outbox call failed: userErrors or
    /// its attempts spent) become failed, so they no longer count as stock and the next refill replaces them (one whose
    /// call is retried from the Operations page and then lands becomes ready); expired ones leave the pool.
    /// </summary>
    private static async Task SettleAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, long shopId, DateTimeOffset now, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(conn, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("""
                    UPDATE discount_codes d SET state = CASE WHEN m.completed_at IS NOT NULL THEN 'ready' ELSE 'failed' END FROM outbox_messages m
                    WHERE d.shop_id = $1 AND d.state IN ('creating', 'failed') AND m.shop_id = d.shop_id AND m.idempotency_key = 'discount:' || d.code
                      AND (m.completed_at IS NOT NULL OR (m.failed_at IS NOT NULL AND d.state = 'creating'))
                    """) { Parameters = { Sql.Param(shopId) } },
                new NpgsqlBatchCommand("""
                    UPDATE discount_codes SET state = 'expired' WHERE shop_id = $1 AND state IN ('creating', 'ready', 'handed_out', 'failed') AND expires_at <= $2
                    """) { Parameters = { Sql.Param(shopId), Sql.Param(now) } },
            },
        };
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Cart offers switched off, or their codes turned off in the settings: the codes whose creation is still queued (never
    /// sent, or waiting to be tried again) are dropped with their calls, so no new discount appears in the store afterwards.
    /// An attempt whose answer was lost may have made its code in Shopify: that code, which nobody is given, ends unused at
    /// its end date. Why: a refill's calls waiting out an outage created their codes in the merchant's Discounts hours after
    /// he had switched cart offers off (until 7 Dec 2026). A call being sent at that moment goes.
    /// </summary>
    /// <returns>How many codes were dropped.</returns>
    public async Task<int> CancelQueuedCreationsAsync(long shopId, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // The refill's lock: a refill queueing codes finishes first, and its codes are dropped with the others.
        await LockPoolAsync(conn, tx, shopId, ct);
        await using var cmd = new NpgsqlCommand($"""
            WITH dropped AS (
                DELETE FROM outbox_messages m
                WHERE m.shop_id = $1 AND m.operation = 'discountCodeBasicCreate' AND m.idempotency_key LIKE 'discount:%'
                  AND {Outbox.OutboxWriter.Queued("m", "$2")}
                RETURNING substring(m.idempotency_key FROM 10) AS code),
            codes AS (
                DELETE FROM discount_codes d USING dropped x WHERE d.shop_id = $1 AND d.code = x.code AND d.state = 'creating' RETURNING d.code)
            SELECT count(*) FROM codes
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow()));
        var dropped = (int)(long)(await cmd.ExecuteScalarAsync(ct))!;
        await tx.CommitAsync(ct);
        return dropped;
    }

    /// <summary>The shop's pool, for the transaction: one refill or cancel at a time (two refills would both see it short and overfill it).</summary>
    private static async Task LockPoolAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, CancellationToken ct)
    {
        await using var lk = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('discount-pool'), $1::int)", conn, tx);
        lk.Parameters.Add(Sql.Param((int)shopId));
        await lk.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Tops the pool up to <paramref name="size"/> codes that are ready or being created; returns how many were queued.</summary>
    public async Task<int> RefillAsync(long shopId, CartOfferSettings settings, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await SettleAsync(conn, tx, shopId, now, ct);
        // One refill at a time per shop: two would both see the pool short and overfill it.
        await LockPoolAsync(conn, tx, shopId, ct);
        // Switched off since the caller looked (its look reads a cache): nothing is queued. Why under the lock: a switch-off's
        // cancel (CancelQueuedCreationsAsync) that ran between the look and the lock found nothing to drop, and the codes
        // queued after it were created in the store.
        await using (var on = new NpgsqlCommand($"SELECT coalesce((SELECT enabled FROM ai_feature_switches WHERE shop_id = $1 AND feature = '{CartOffersFeature.Name}'), true)", conn, tx))
        {
            on.Parameters.Add(Sql.Param(shopId));
            if (await on.ExecuteScalarAsync(ct) is false) { await tx.CommitAsync(ct); return 0; }
        }
        long have;
        // Stock: codes at the offer's percent that a cart could still be given (Usable) a while from now: an hour, or a quarter
        // of the validity when that is shorter. Why not an hour whatever the validity: a code is Usable for the validity after
        // it is made, and until 5 Dec 2026 a code of an hour never counted, so every refill (each cart that found the pool
        // short, and the sweep every 15 minutes) made a whole new pool of discounts in Shopify.
        await using (var count = new NpgsqlCommand($"""
            SELECT count(*) FROM discount_codes WHERE shop_id = $1 AND state IN ('creating', 'ready') AND percent = $3
              AND expires_at > $2 + make_interval(mins => least(60, $4 * 15)) + make_interval(hours => $4)
              AND expires_at - created_at <= make_interval(hours => $4 * {ValidityInThePool})
            """, conn, tx))
        {
            count.Parameters.Add(Sql.Param(shopId));
            count.Parameters.Add(Sql.Param(now));
            count.Parameters.Add(Sql.Param(settings.OfferPercent));
            count.Parameters.Add(Sql.Param(settings.CodeExpiryHours));
            have = (long)(await count.ExecuteScalarAsync(ct))!;
        }
        var missing = settings.PoolSize - (int)have;
        if (missing <= 0) { await tx.CommitAsync(ct); return 0; }
        await using var batch = new NpgsqlBatch(conn, tx);
        var store = new StoreWriter(batch, shopId);
        var expires = now.AddHours(settings.CodeExpiryHours * ValidityInThePool);
        for (var i = 0; i < missing; i++)
        {
            var code = NewCode();
            store.Add("""
                INSERT INTO discount_codes (shop_id, code, percent, state, created_at, expires_at) VALUES ($1, $2, $3, 'creating', $4, $5)
                """, shopId, code, settings.OfferPercent, now, expires);
            OutboxWriter.Enqueue(store, new OutboxCall(Create, "discount:" + code, new
            {
                d = new
                {
                    title = $"PluginApp cart offer {code}",
                    code,
                    startsAt = now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    endsAt = expires.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    context = new { all = "ALL" },
                    customerGets = new { value = new { percentage = (double)(settings.OfferPercent / 100) }, items = new { all = true } },
                    usageLimit = 1,
                    appliesOncePerCustomer = true,
                    combinesWith = new { orderDiscounts = false, productDiscounts = false, shippingDiscounts = true },
                },
            }, "discount:" + code), now);
        }
        await batch.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        outbox.Kick(shopId);
        return missing;
    }

    /// <summary>
    /// A code lives in Shopify this many times the merchant's validity (<see cref="CartOfferSettings.CodeExpiryHours"/>) and
    /// is handed out only while at least that validity is left, so every shopper gets a code valid at least as long as the
    /// merchant set. Why: handed out by the nearest end, as until 4 Dec, a pool created together gave its last codes with an
    /// hour or two left, and the shopper who came back that evening found the code expired.
    /// </summary>
    public const int ValidityInThePool = 2;

    /// <summary>
    /// A code a cart may be given: $1 the shop; now, the offer's percent and its validity in hours as the parameters named. Made
    /// to live at most <see cref="ValidityInThePool"/> times the validity, too: codes made before the merchant shortened it
    /// are left to expire (and the refill makes new ones). Why by its own lifetime, not the time left: the instance that made
    /// it dated both ends, so no clock between instances moves it. Until 8 Dec 2026 a validity lowered from 30 days to a day
    /// still handed out the pool's codes of two months, against the page's "at most twice the validity".
    /// </summary>
    internal static string Usable(string now, string percent, string hours) =>
        $"shop_id = $1 AND state = 'ready' AND percent = {percent} AND expires_at > {now} + make_interval(hours => {hours})" +
        $" AND expires_at - created_at <= make_interval(hours => {hours} * {ValidityInThePool})";

    /// <summary>
    /// $1 shop, $2 now, $3 the start of today (UTC), $4 the cart, $5 the offer's percent, $6 its validity in hours: whether a
    /// code is ready at that percent and validity, the discount handed out today, the cart's code, and whether the cart had a
    /// code that was used or expired (a cart is given one code ever, <see cref="HandOutAsync"/>; until 5 Dec 2026 such a cart
    /// was counted as one the offer was allowed for, and its log said the pool had run dry). Why the percent: codes
    /// made before the merchant lowered it would give carts the old discount, past the caps checked at the new one. Asked on
    /// every cart the offers answer; today's hand-outs are found through discount_codes_handed_idx (migration 0047; without
    /// it the sum read every code the store ever had: 10–16 ms a cart with 54,000 codes, 0.1 ms now).
    /// </summary>
    internal static readonly string StateSql = $"""
        SELECT EXISTS (SELECT 1 FROM discount_codes WHERE {Usable("$2", "$5", "$6")}),
               (SELECT coalesce(sum(amount), 0) FROM discount_codes WHERE shop_id = $1 AND handed_out_at >= $3),
               c.code, c.percent, c.expires_at, c.amount, c.state,
               (SELECT count(*) FROM discount_codes WHERE shop_id = $1 AND address_hash = $7 AND handed_out_at >= $3)
        FROM (SELECT 1) x LEFT JOIN discount_codes c ON c.shop_id = $1 AND c.cart_token = $4
        """;

    /// <summary>
    /// The shopper's address as the pool keeps it, or null when none is known: hashed with the shop as the visitors' ids are,
    /// which an IPv4 address does not hide (every one can be tried), so it is held as the address itself: personal data,
    /// erased with her, kept two days. An IPv6 address counts by its /64 network, which one household or one script holds
    /// whole (by the full address a script took a new one for each cart).
    /// </summary>
    public static string? AddressHash(string shop, string? address)
    {
        if (address is null || !System.Net.IPAddress.TryParse(address, out var ip)) return null;
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            var bytes = ip.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            ip = new System.Net.IPAddress(bytes);
        }
        return Experiments.Assignment.VisitorHash(shop, "address:" + ip);
    }

    /// <summary>What the caps need: whether a code is ready at the settings' percent and validity, the discount handed out today
    /// (the shop's day), the cart's code, and the codes handed today to the shopper's address (<see cref="AddressHash"/>).</summary>
    /// <param name="settle">Whether to settle the pool first (codes Shopify now has, expired ones); a reader that hands nothing out skips it.</param>
    public async Task<(bool Ready, decimal SpentToday, HandedCode? Existing, bool HadCode, int AddressCodesToday)> StateAsync(long shopId, string? cartToken,
        CartOfferSettings settings, CancellationToken ct, bool settle = true, string? addressHash = null)
    {
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        if (settle) await SettleAsync(conn, null, shopId, now, ct);
        var today = StoreData.ShopDays.StartOfDay(now, await StoreData.ShopDays.ZoneAsync(conn, shopId, ct));
        await using var cmd = new NpgsqlCommand(StateSql, conn);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(now));
        cmd.Parameters.Add(Sql.Param(today));
        cmd.Parameters.Add(Sql.Text(cartToken));
        cmd.Parameters.Add(Sql.Param(settings.OfferPercent));
        cmd.Parameters.Add(Sql.Param(settings.CodeExpiryHours));
        cmd.Parameters.Add(Sql.Text(addressHash));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var held = !r.IsDBNull(6) && r.GetString(6) == "handed_out";
        return (r.GetBoolean(0), r.GetDecimal(1),
            held ? new HandedCode(r.GetString(2), r.GetDecimal(3), r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? 0 : r.GetDecimal(5)) : null,
            !r.IsDBNull(6) && !held, (int)r.GetInt64(7));
    }

    /// <summary>
    /// Hands a ready code to the cart, under the shop's lock so the daily budget and the address's limit are checked against
    /// every other hand-out; null when none is ready, the budget would be broken or the address had its codes today
    /// (<paramref name="addressCap"/>, 0: none). A cart that already holds a code gets it again.
    /// </summary>
    public async Task<HandedCode?> HandOutAsync(long shopId, string cartToken, string? visitorHash, string decisionId, decimal amount, CartOfferSettings settings,
        CancellationToken ct, string? addressHash = null, int addressCap = 0)
    {
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lk = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('discount-handout'), $1::int)", conn, tx))
        {
            lk.Parameters.Add(Sql.Param((int)shopId));
            await lk.ExecuteNonQueryAsync(ct);
        }
        await using var cmd = new NpgsqlCommand($"""
            WITH held AS (SELECT code, percent, expires_at, amount FROM discount_codes WHERE shop_id = $1 AND cart_token = $2 AND state = 'handed_out'),
            spent AS (SELECT coalesce(sum(amount), 0) AS s FROM discount_codes WHERE shop_id = $1 AND handed_out_at >= $6),
            pick AS (SELECT code FROM discount_codes WHERE {Usable("$5", "$9", "$10")}
                     AND NOT EXISTS (SELECT 1 FROM held) AND NOT EXISTS (SELECT 1 FROM discount_codes WHERE shop_id = $1 AND cart_token = $2)
                     AND (SELECT s FROM spent) + $4 <= $7
                     AND ($11::text IS NULL OR $12 = 0
                          OR (SELECT count(*) FROM discount_codes WHERE shop_id = $1 AND address_hash = $11 AND handed_out_at >= $6) < $12)
                     ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED),
            given AS (UPDATE discount_codes d SET state = 'handed_out', cart_token = $2, visitor_hash = $3, decision_id = $8, amount = $4, handed_out_at = $5,
                             address_hash = $11
                      FROM pick WHERE d.shop_id = $1 AND d.code = pick.code RETURNING d.code, d.percent, d.expires_at, d.amount)
            SELECT code, percent, expires_at, amount FROM held UNION ALL SELECT code, percent, expires_at, amount FROM given
            """, conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(cartToken));
        cmd.Parameters.Add(Sql.Text(visitorHash));
        cmd.Parameters.Add(Sql.Param(amount));
        cmd.Parameters.Add(Sql.Param(now));
        cmd.Parameters.Add(Sql.Param(StoreData.ShopDays.StartOfDay(now, await StoreData.ShopDays.ZoneAsync(conn, shopId, ct))));
        cmd.Parameters.Add(Sql.Param(settings.DailyBudget));
        cmd.Parameters.Add(Sql.Param(decisionId));
        cmd.Parameters.Add(Sql.Param(settings.OfferPercent));
        cmd.Parameters.Add(Sql.Param(settings.CodeExpiryHours));
        cmd.Parameters.Add(Sql.Text(addressHash));
        cmd.Parameters.Add(Sql.Param(addressCap));
        HandedCode? code = null;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            if (await r.ReadAsync(ct))
                code = new HandedCode(r.GetString(0), r.GetDecimal(1), r.GetFieldValue<DateTimeOffset>(2), r.IsDBNull(3) ? 0 : r.GetDecimal(3));
        await tx.CommitAsync(ct);
        return code;
    }

    /// <summary>
    /// Ingestion step: an order carrying one of our codes marks it used (in the order's own transaction), and the code's
    /// amount becomes what it took off the order. Why: a percent code applies to whatever the cart became; a shopper
    /// offered 10 % on 105.00 who then filled the cart to 420.00 got 42.00, and the daily budget counted 10.50 (until
    /// 4 Dec 2026). The budget reads the amounts of today's codes, so it now counts what was given.
    /// </summary>
    internal static void MarkUsed(StoreWriter store, OrderRows rows, DateTimeOffset now)
    {
        var codes = (rows.Order.DiscountCodes ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(c => c.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)).Select(c => c.ToUpperInvariant()).Distinct().ToArray();
        if (codes.Length == 0) return;
        var amounts = codes.Select(c => rows.CodeAmounts?.TryGetValue(c, out var a) == true ? a : (decimal?)null).ToArray();
        store.Add("""
            UPDATE discount_codes d SET state = 'used', order_id = $2, used_at = coalesce(d.used_at, $3), amount = coalesce(u.amount, d.amount)
            FROM unnest($4::text[], $5::numeric[]) AS u(code, amount)
            WHERE d.shop_id = $1 AND d.code = u.code AND (d.state <> 'used' OR d.order_id = $2)
              -- What the code took off as the order stands: an older version delivered late changes nothing.
              AND EXISTS (SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.id = $2 AND o.updated_at IS NOT DISTINCT FROM $6)
            """, store.ShopId, rows.Order.Id, rows.Order.CreatedAt ?? now, codes, amounts, TypedNull.Time(rows.Order.UpdatedAt));
    }
}
