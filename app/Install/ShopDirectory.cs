using System.Collections.Concurrent;
using PluginApp.StoreData;

namespace PluginApp.Install;

/// <summary>
/// Installed shops by domain, cached: the storefront path asks on every request. An uninstall or erasure is announced
/// on shop_changed (in the transaction that makes it), so every instance stops serving the shop at once; the short
/// expiry covers a notification missed while the listener reconnected.
/// </summary>
public sealed class ShopDirectory(ShopLookup shops, TimeProvider clock)
{
    public const string Channel = "shop_changed";
    private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<string, (long? Id, DateTimeOffset At)> _cache = new(StringComparer.Ordinal);

    /// <summary>The shop's id when the app is installed there, else null.</summary>
    public async ValueTask<long?> InstalledShopIdAsync(string domain, CancellationToken ct)
    {
        if (_cache.TryGetValue(domain, out var hit) && clock.GetUtcNow() - hit.At < MaxAge) return hit.Id;
        var id = await shops.InstalledIdAsync(domain, ct);
        _cache[domain] = (id, clock.GetUtcNow());
        return id;
    }

    public void Forget(string domain) => _cache.TryRemove(domain, out _);

    public void ForgetAll() => _cache.Clear();
}
