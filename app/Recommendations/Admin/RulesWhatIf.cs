using Npgsql;

namespace PluginApp.Recommendations;

/// <summary>How many of a day's served items a set of rules would have removed, and why.</summary>
public sealed record WhatIfResult(DateOnly Day, long Answers, long Served, long Removed, Dictionary<string, long> Reasons);

/// <summary>
/// Replays a day's answers (the decision log: each answer's anchors and the items it served, in order) through proposed
/// rules with today's catalog, so a merchant sees what a change would do before saving it. Pinned products are not added:
/// the question is what the rules take away.
/// </summary>
public sealed class RulesWhatIf(NpgsqlDataSource db, CatalogCache catalogs)
{
    public async Task<WhatIfResult> YesterdayAsync(long shopId, BusinessRules rules, DayWindow yesterday, CancellationToken ct)
    {
        var catalog = await catalogs.GetAsync(shopId, ct);
        await using var cmd = db.CreateCommand("""
            SELECT placement, input_products, output_products FROM recommendation_decisions
            WHERE shop_id = $1 AND decided_at >= $2 AND decided_at < $3 AND cardinality(output_products) > 0
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(yesterday.From);
        cmd.Parameters.AddWithValue(yesterday.To);
        long answers = 0, served = 0, removed = 0;
        var reasons = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            answers++;
            var placement = r.GetString(0);
            var anchors = r.GetFieldValue<long[]>(1).Select(id => catalog.Products.GetValueOrDefault(id)).OfType<CatalogProduct>().ToList();
            var anchorIds = anchors.Select(a => a.Id).ToHashSet();
            var anchorPrice = RecommendationService.AnchorPrice(anchors, []); // the log keeps the anchors' products, not their variants
            var output = r.GetFieldValue<long[]>(2);
            // The cap as serving applies it: only a cap the merchant set (the default one follows the block's own limit,
            // which the log does not keep, and held for what was served), counting pinned products but never refusing one.
            // Until 5 Dec 2026 the default was worked out from the items served, smaller than the block's, and pinned
            // products were refused: an unchanged set of rules "would have removed" items.
            var maxPerType = rules.MaxPerProductType ?? int.MaxValue;
            var pinned = rules.PinnedProductIds.ToHashSet();
            var perType = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            foreach (var id in output)
            {
                served++;
                string? why;
                if (!catalog.Products.TryGetValue(id, out var product)) why = "no longer in the catalog";
                else if ((why = RecommendationService.Refusal(product, rules, anchorIds, anchorPrice, placement)) is null
                         && product.ProductType is { Length: > 0 } type)
                {
                    perType[type] = perType.GetValueOrDefault(type) + 1;
                    if (perType[type] > maxPerType && !pinned.Contains(id)) why = "over the per-type cap";
                }
                if (why is null) continue;
                removed++;
                reasons[why] = reasons.GetValueOrDefault(why) + 1;
            }
        }
        return new WhatIfResult(yesterday.Days[0], answers, served, removed, reasons);
    }
}
