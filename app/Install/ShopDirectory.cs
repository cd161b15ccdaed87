using PluginApp.Hosting;
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
    private readonly ExpiringCache<string, long?> _cache = new(MaxAge, clock);

    /// <summary>The shop's id when the app is installed there, else null.</summary>
    public ValueTask<long?> InstalledShopIdAsync(string domain, CancellationToken ct) =>
        _cache.GetAsync(domain, static (shops, d) => shops.InstalledIdAsync(d, CancellationToken.None), shops, ct);

    public void Forget(string domain) => _cache.Remove(domain);

    public void ForgetAll() => _cache.Clear();
}
