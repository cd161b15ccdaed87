using Npgsql;
using PluginApp.Data;
using PluginApp.Hosting;

namespace PluginApp.CartOffers;

/// <summary>What the app knows of the tax in a store's prices.</summary>
/// <param name="Share">The share of a price that is tax; null when not known (see <see cref="TaxShares"/>).</param>
/// <param name="PricesIncludeTax">The shop's own setting (Shop.taxesIncluded, read at install); null when not read.</param>
/// <param name="Orders">The latest orders that said whether their prices include tax, of those the share was read from.</param>
public sealed record TaxShare(decimal? Share, bool? PricesIncludeTax, int Orders)
{
    /// <summary>The shop says its prices include tax, and no order has shown how much yet: the margin floor cannot be checked.</summary>
    public bool RateUnknown => PricesIncludeTax == true && Share is null;
}

/// <summary>
/// The share of a store's prices that is tax, read from its own orders: in a store whose prices include tax (the United
/// Kingdom, the European Union, Australia), a 120.00 price holds 20.00 of VAT the merchant passes on, and a unit cost of
/// 60.00 leaves 40.00 of margin, not 60.00. The cart offers count margin on prices without that share
/// (<see cref="CartFacts.TaxShare"/>). Why from the orders: Shopify's API gives a store's prices-include-tax setting but no
/// rate, which depends on the product and the buyer's country; the orders say both, as the tax each one carried.
/// <list type="bullet">
/// <item>The shop's prices exclude tax (its setting): 0, whatever its orders in markets with prices including tax carried,
/// since the catalog's prices are the shop's own.</item>
/// <item>They include it: the tax of its latest orders whose prices include it, over their totals; not known while none has
/// come (<see cref="TaxShare.RateUnknown"/>).</item>
/// <item>The setting not read (shops installed before it was): the tax of the latest orders whose prices include it, over
/// the totals of all the latest orders that said; not known while none said (orders stored before it was kept did not),
/// and then counted as 0.</item>
/// </list>
/// </summary>
public sealed class TaxShares(NpgsqlDataSource db, TimeProvider clock)
{
    /// <summary>The orders read: the store's latest, so a store that changed its setting reads as it sells now.</summary>
    public const int Orders = 1000;

    /// <summary>The most a share can be (no tax takes half a price).</summary>
    public const decimal MaxShare = 0.5m;

    /// <summary>Kept an hour: a share moves with the mix of what sells, not from one order to the next.</summary>
    private readonly ExpiringCache<long, TaxShare> _shares = new(TimeSpan.FromHours(1), clock);

    /// <summary>
    /// The shop's setting, then, over the store's latest orders that said whether their prices include tax (neither test nor
    /// cancelled): how many, the tax and totals of those that include it, and the totals of all. Why the latest orders first
    /// and the conditions after: the read stays <see cref="Orders"/> rows of the index however few of them qualify.
    /// </summary>
    internal static readonly string ShareSql = $"""
        SELECT (SELECT taxes_included FROM shops WHERE id = $1), count(*)::int,
               coalesce(sum(total_tax) FILTER (WHERE taxes_included), 0), coalesce(sum(total_price) FILTER (WHERE taxes_included), 0),
               coalesce(sum(total_price), 0)
        FROM (SELECT total_tax, total_price, taxes_included, test, cancelled_at FROM orders WHERE shop_id = $1 AND created_at IS NOT NULL
              ORDER BY created_at DESC LIMIT {Orders}) o
        WHERE taxes_included IS NOT NULL AND NOT test AND cancelled_at IS NULL AND total_price > 0 AND total_tax >= 0
        """;

    public ValueTask<TaxShare> ShareAsync(long shopId, CancellationToken ct) =>
        _shares.GetAsync(shopId, static async (source, id) =>
        {
            await using var cmd = source.CreateCommand(ShareSql);
            cmd.Parameters.Add(Sql.Param(id));
            await using var r = await cmd.ExecuteReaderAsync(CancellationToken.None);
            await r.ReadAsync(CancellationToken.None);
            bool? setting = r.IsDBNull(0) ? null : r.GetBoolean(0);
            var (orders, tax, included, all) = (r.GetInt32(1), r.GetDecimal(2), r.GetDecimal(3), r.GetDecimal(4));
            decimal? share = setting switch
            {
                false => 0,
                true => included > 0 ? tax / included : null,
                null => orders > 0 && all > 0 ? tax / all : null,
            };
            return new TaxShare(share is { } s ? Math.Round(Math.Min(MaxShare, s), 5) : null, setting, orders);
        }, db, ct);
}
