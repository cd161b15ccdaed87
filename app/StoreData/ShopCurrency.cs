namespace PluginApp.StoreData;

/// <summary>
/// The shop's currency, decided in one place: what Shopify said at install (shops.currency), else the currency of the
/// shop's latest order that names one. Why latest first, through the (shop_id, created_at) index: "any order with a
/// currency" was planned as a scan of the orders table that stops at the first match, which walked every other shop's
/// orders stored before this shop's (9.6-11 ms of each risk batch of the ingest benchmark's store, 47 ms from a cold cache).
/// </summary>
public static class ShopCurrency
{
    /// <summary>The shop's currency as <see cref="Of"/> decides it; empty when neither says (amounts are then shown alone).</summary>
    public static async Task<string> ReadAsync(Npgsql.NpgsqlDataSource db, long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"SELECT {Of("$1")}");
        cmd.Parameters.Add(Data.Sql.Param(shopId));
        return await cmd.ExecuteScalarAsync(ct) as string ?? "";
    }

    /// <summary>SQL expression: the currency of the shop whose id is <paramref name="shopId"/> (a parameter or a column), null when neither says.</summary>
    public static string Of(string shopId) => $"""
        coalesce((SELECT currency FROM shops WHERE id = {shopId}),
                 (SELECT currency FROM orders WHERE shop_id = {shopId} AND currency IS NOT NULL ORDER BY created_at DESC LIMIT 1))
        """;
}
