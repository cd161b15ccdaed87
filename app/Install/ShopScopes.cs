using System.Text.Json;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Shopify;
using PluginApp.StoreData;
using PluginApp.Webhooks;

namespace PluginApp.Install;

/// <summary>What a feature does with an access scope, in the merchant's words; shown when Shopify has not granted it.</summary>
public sealed record ScopeUse(string Scope, string Use);

/// <summary>A scope the app asks for that the shop has not granted, and what stops working until it does.</summary>
public sealed record MissingScope(string Scope, IReadOnlyList<string> Uses);

/// <summary>
/// The scopes each shop granted against those the app asks for (<see cref="ShopifyOptions.Scopes"/>). A shop installed
/// before a release that added a scope keeps its old grant until the merchant approves the new one, and the mutations that
/// need it fail; the admin shell says which scopes are missing and what they are for. The grant is stored at install and
/// kept current by Shopify's app/scopes_update webhook.
/// </summary>
public sealed class ShopScopes(NpgsqlDataSource db, IOptions<ShopifyOptions> options, IEnumerable<ScopeUse> uses)
{
    public const string UpdateTopic = "app/scopes_update";

    /// <summary>The scopes asked for that the grant lacks (a write scope grants its read scope too), in the order asked for.</summary>
    public static IReadOnlyList<string> Missing(string requested, string granted)
    {
        var have = Split(granted).ToHashSet(StringComparer.Ordinal);
        return Split(requested).Where(s => !have.Contains(s) && !(s.StartsWith("read_", StringComparison.Ordinal) && have.Contains("write_" + s[5..])))
            .Distinct(StringComparer.Ordinal).ToList();
    }

    public async Task<IReadOnlyList<MissingScope>> MissingAsync(long shopId, CancellationToken ct)
    {
        if (await GrantedScopesAsync(shopId, ct) is not { } granted) return [];
        var byScope = uses.ToLookup(u => u.Scope, u => u.Use, StringComparer.Ordinal);
        return Missing(options.Value.Scopes, granted).Select(s => new MissingScope(s, byScope[s].ToList())).ToList();
    }

    /// <summary>Whether the shop granted <paramref name="scope"/> (an optional one, e.g. read_all_orders).</summary>
    public async Task<bool> GrantedAsync(long shopId, string scope, CancellationToken ct) =>
        await GrantedScopesAsync(shopId, ct) is { } granted && Split(granted).Contains(scope, StringComparer.Ordinal);

    /// <summary>The scopes the shop granted, as Shopify gave them; null for a shop we do not hold.</summary>
    private async Task<string?> GrantedScopesAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT scopes FROM shops WHERE id = $1");
        cmd.Parameters.Add(Sql.Param(shopId));
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    private static IEnumerable<string> Split(string scopes) =>
        scopes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    internal sealed record ScopesUpdate(string Scopes, DateTimeOffset UpdatedAt);

    /// <summary>app/scopes_update: <c>{"id", "previous": [...], "current": [...], "updated_at", "shop_id"}</c>.</summary>
    internal static ScopesUpdate Parse(JsonElement p)
    {
        if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("current", out var current) || current.ValueKind != JsonValueKind.Array)
            throw new MalformedPayloadException("'current' is missing or not an array of scopes");
        var scopes = current.EnumerateArray().Select(s => s.ValueKind == JsonValueKind.String && s.GetString() is { Length: > 0 } v && !v.Contains(',')
            ? v : throw new MalformedPayloadException("'current' holds something that is not a scope name")).ToList();
        return new(string.Join(',', scopes), p.OptionalTime("updated_at") ?? throw new MalformedPayloadException("'updated_at' is missing"));
    }

    /// <summary>
    /// Why the time guard: deliveries can arrive out of order, and an older grant must not overwrite a newer one. An install
    /// (token grant) writes the scopes without a time and is always current.
    /// </summary>
    internal static void Write(TopicContext c, ScopesUpdate u) => c.Store.Add("""
        UPDATE shops SET scopes = $2, scopes_updated_at = $3, updated_at = now()
        WHERE id = $1 AND (scopes_updated_at IS NULL OR scopes_updated_at < $3)
        """, c.Store.ShopId, u.Scopes, u.UpdatedAt);
}

public static class ShopScopesExtensions
{
    /// <summary>Declares what a feature uses a scope for; the admin shell names it when the shop has not granted the scope.</summary>
    public static IServiceCollection AddScopeUse(this IServiceCollection services, string scope, string use) =>
        services.AddSingleton(new ScopeUse(scope, use));

    internal static IServiceCollection AddShopScopes(this IServiceCollection services)
    {
        services.AddSingleton<ShopScopes>();
        services.AddWebhookTopic(ShopScopes.UpdateTopic, ShopScopes.Parse, ShopScopes.Write);
        services.AddScopeUse("read_orders", "reading orders as they arrive and the order history");
        services.AddScopeUse("read_customers", "knowing returning customers (order risk, churn)");
        return services;
    }
}
