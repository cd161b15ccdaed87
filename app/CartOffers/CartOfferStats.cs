using System.Text.Json;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.CartOffers;

public sealed record CartOfferDecisionView(string DecisionId, DateTimeOffset At, string Arm, string Action, bool Explore, double? Intent, int? IntentVersion,
    decimal Value, string? Code, IReadOnlyList<string> Reasons);

/// <summary>Codes by state and what they cost: handed out today, used, and the discount given on orders.</summary>
/// <param name="Ready">Codes a cart may be given now: at the offer's percent, with the whole expiry left.</param>
/// <param name="Retiring">Other ready codes (an earlier percent, or less than the expiry left), never handed out, left to expire.</param>
/// <param name="Expired">Codes a shopper was given and that expired unused.</param>
/// <param name="ExpiredInPool">Codes that expired in the pool, never given to anyone (until 4 Dec 2026 they were counted with
/// <paramref name="Expired"/>, so a quiet store read as one whose shoppers let most of their codes lapse).</param>
public sealed record CodeSummary(long Creating, long Ready, long HandedOut, long Used, long Expired, decimal HandedOutToday, decimal UsedDiscount, long Failed,
    long Retiring, long ExpiredInPool);

/// <summary>What the Cart offers page reads: recent decisions with their reasons, the action mix, the code pool.</summary>
public sealed class CartOfferStats(NpgsqlDataSource db, TimeProvider clock)
{
    public async Task<List<CartOfferDecisionView>> RecentAsync(long shopId, int limit, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT decision_id, decided_at, arm, action, explore, intent, intent_version, coalesce((inputs->>'value')::numeric, 0), code, reasons::text
            FROM cart_offer_decisions WHERE shop_id = $1 ORDER BY decided_at DESC LIMIT $2
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(limit));
        var list = new List<CartOfferDecisionView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new CartOfferDecisionView(r.GetString(0), r.GetFieldValue<DateTimeOffset>(1), r.GetString(2), r.GetString(3), r.GetBoolean(4),
                r.IsDBNull(5) ? null : r.GetDouble(5), r.IsDBNull(6) ? null : r.GetInt32(6), r.GetDecimal(7), r.IsDBNull(8) ? null : r.GetString(8),
                JsonSerializer.Deserialize<List<string>>(r.GetString(9))!));
        return list;
    }

    /// <summary>
    /// The policy arm's carts per action over the last <paramref name="days"/> days, each cart by its latest decision. Why
    /// not the control arm's: its carts are shown nothing by design, and until 5 Dec 2026 they counted here, so "Nothing"
    /// read as a fifth of the policy's choices or more when it chose it for none. Why each cart once: a decision is logged
    /// at every ask (a page load, an Add that reloads it), and until 6 Dec 2026 the column headed "Carts" counted them,
    /// leaning toward the actions that bring shoppers back to the page.
    /// </summary>
    public async Task<List<(string Action, long Decisions, long Explored)>> MixAsync(long shopId, int days, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT action, count(*), count(*) FILTER (WHERE explore) FROM (
              SELECT DISTINCT ON (coalesce(cart_token, decision_id)) action, explore FROM cart_offer_decisions
              WHERE shop_id = $1 AND decided_at >= $2 AND arm = $3 ORDER BY coalesce(cart_token, decision_id), decided_at DESC) c
            GROUP BY action
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(clock.GetUtcNow().AddDays(-days)));
        cmd.Parameters.Add(Sql.Param(CartOffersExperiment.PolicyArm));
        var list = new List<(string, long, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add((r.GetString(0), r.GetInt64(1), r.GetInt64(2)));
        return list.OrderBy(x => Array.IndexOf(CartAction.All, x.Item1)).ToList();
    }

    public async Task<CodeSummary> CodesAsync(long shopId, CartOfferSettings settings, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await using var conn = await db.OpenConnectionAsync(ct);
        var today = StoreData.ShopDays.StartOfDay(now, await StoreData.ShopDays.ZoneAsync(conn, shopId, ct));
        await using var cmd = new NpgsqlCommand($"""
            SELECT count(*) FILTER (WHERE state = 'creating'), count(*) FILTER (WHERE {DiscountPool.Usable("$3", "$4", "$5")}), count(*) FILTER (WHERE state = 'handed_out'),
                   count(*) FILTER (WHERE state = 'used'), count(*) FILTER (WHERE state = 'expired' AND handed_out_at IS NOT NULL),
                   coalesce(sum(amount) FILTER (WHERE handed_out_at >= $2), 0),
                   coalesce((SELECT sum(o.total_discounts) FROM orders o JOIN discount_codes d ON d.shop_id = o.shop_id AND d.order_id = o.id
                             WHERE d.shop_id = $1 AND d.state = 'used'), 0),
                   count(*) FILTER (WHERE state = 'failed'), count(*) FILTER (WHERE state = 'ready' AND NOT ({DiscountPool.Usable("$3", "$4", "$5")})),
                   count(*) FILTER (WHERE state = 'expired' AND handed_out_at IS NULL)
            FROM discount_codes WHERE shop_id = $1
            """, conn);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(today));
        cmd.Parameters.Add(Sql.Param(now));
        cmd.Parameters.Add(Sql.Param(settings.OfferPercent));
        cmd.Parameters.Add(Sql.Param(settings.CodeExpiryHours));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new CodeSummary(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetDecimal(5), r.GetDecimal(6), r.GetInt64(7),
            r.GetInt64(8), r.GetInt64(9));
    }
}
