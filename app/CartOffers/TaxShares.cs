using Npgsql;
using PluginApp.Data;
using PluginApp.Hosting;

namespace PluginApp.CartOffers;

/// <summary>
/// The share of a store's prices that is tax, read from its own orders: in a store whose prices include tax (the United
/// Kingdom, the European Union, Australia), a 120.00 price holds 20.00 of VAT the merchant passes on, and a unit cost of
/// 60.00 leaves 40.00 of margin, not 60.00. The cart offers count margin on prices without that share
/// (<see cref="CartFacts.TaxShare"/>). Why from the orders: Shopify's API gives a store's prices-include-tax setting but no
/// rate, which depends on the product and the buyer's country; the orders say both, as the tax each one carried. A store
/// whose prices exclude tax (its orders' <c>taxes_included</c> false) has a share of 0, as has one with no such orders yet.
/// </summary>
public sealed class TaxShares(NpgsqlDataSource db, TimeProvider clock)
{
    /// <summary>The orders read: the store's latest, so a store that changed its setting reads as it sells now.</summary>
    public const int Orders = 1000;

    /// <summary>Kept an hour: a share moves with the mix of what sells, not from one order to the next.</summary>
    private readonly ExpiringCache<long, decimal> _shares = new(TimeSpan.FromHours(1), clock);

    /// <summary>
    /// Of the store's latest orders, the tax carried by those whose prices include it, over the totals of all of them (those
    /// stored with the setting, neither test nor cancelled), at most one half; 0 when none include it. (Why the coalesce inside
    /// least: least passes over a null, and a store without such orders read as one half.) Why the latest orders
    /// first and the conditions after: the read stays <see cref="Orders"/> rows of the index however few of them qualify
    /// (orders stored before the setting was kept have none).
    /// </summary>
    internal static readonly string ShareSql = $"""
        SELECT least(0.5, coalesce(sum(total_tax) FILTER (WHERE taxes_included) / nullif(sum(total_price), 0), 0))::numeric(6,5)
        FROM (SELECT total_tax, total_price, taxes_included, test, cancelled_at FROM orders WHERE shop_id = $1 AND created_at IS NOT NULL
              ORDER BY created_at DESC LIMIT {Orders}) o
        WHERE taxes_included IS NOT NULL AND NOT test AND cancelled_at IS NULL AND total_price > 0 AND total_tax >= 0
        """;

    public ValueTask<decimal> ShareAsync(long shopId, CancellationToken ct) =>
        _shares.GetAsync(shopId, static async (source, id) =>
        {
            await using var cmd = source.CreateCommand(ShareSql);
            cmd.Parameters.Add(Sql.Param(id));
            return (decimal)(await cmd.ExecuteScalarAsync(CancellationToken.None))!;
        }, db, ct);
}
