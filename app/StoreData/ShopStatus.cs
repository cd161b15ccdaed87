using System.Linq.Expressions;
using Npgsql;

namespace PluginApp.StoreData;

/// <summary>
/// When the app acts for a shop, decided in one place. Installed: installed and not uninstalled (we serve it, store its
/// data, train for it). Reachable: installed, and Shopify still accepts our token (jobs that call Shopify).
/// </summary>
public static class ShopStatus
{
    /// <summary>SQL condition on the shops table (optionally aliased).</summary>
    public static string Installed(string? alias = null) => $"({P(alias)}installed_at IS NOT NULL AND {P(alias)}uninstalled_at IS NULL)";

    public static string Reachable(string? alias = null) => $"({Installed(alias)} AND {P(alias)}token_revoked_at IS NULL)";

    /// <summary>The same condition for EF queries.</summary>
    public static readonly Expression<Func<Shop, bool>> IsInstalled = s => s.InstalledAt != null && s.UninstalledAt == null;

    private static string P(string? alias) => alias is null ? "" : alias + ".";
}

/// <summary>The shop lookups every feature needs, by the predicates above.</summary>
public sealed class ShopLookup(NpgsqlDataSource db)
{
    /// <summary>The shop's id when the app is installed there, else null.</summary>
    public async Task<long?> InstalledIdAsync(string domain, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"SELECT id FROM shops WHERE domain = $1 AND {ShopStatus.Installed()}");
        cmd.Parameters.AddWithValue(domain);
        return await cmd.ExecuteScalarAsync(ct) as long?;
    }

    /// <summary>The shop's domain when the app is installed there and Shopify accepts our token, else null.</summary>
    public async Task<string?> ReachableDomainAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"SELECT domain FROM shops WHERE id = $1 AND {ShopStatus.Reachable()}");
        cmd.Parameters.AddWithValue(shopId);
        return await cmd.ExecuteScalarAsync(ct) as string;
    }
}
