using Microsoft.Extensions.Options;

namespace PluginApp.Recommendations;

public sealed class RecommendationOptions
{
    public const string Section = "Recommendations";

    /// <summary>Longest time serving spends on the model before answering with bestsellers.</summary>
    public TimeSpan ServingBudget { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>How long a catalog snapshot (titles, prices, stock, cost) is served before it is reloaded.</summary>
    public TimeSpan CatalogMaxAge { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long the shop's bestsellers (the 90 days' most sold products, which fill answers the model leaves short) are kept through
    /// catalog reloads and changes before they are counted again. Why apart from the catalog: counting them reads every order line
    /// of those 90 days (0.3-0.6 s of a database core for a store of 500,000 lines), which every catalog reload and every product
    /// change did, while a few minutes move a 90-day ranking little. 0 counts them at every load.
    /// </summary>
    public TimeSpan BestsellersMaxAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often each instance checks that its cached models are still the active versions (a missed notification, an outage).</summary>
    public TimeSpan ModelVersionCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long after an answer the storefront may report impressions, clicks and add-to-carts of its items.</summary>
    public TimeSpan EventWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Requests per minute per shop and shopper (the logged-in customer, else the client address) on the app proxy.</summary>
    public int PerClientPerMinute { get; set; } = 120;

    /// <summary>Requests per second per shop on the app proxy.</summary>
    public int PerShopPerSecond { get; set; } = 2000;

    /// <summary>
    /// Memory the model cache may hold across all shops, in bytes (as <see cref="ModelCache.EstimatedBytes"/> reckons it); past it the
    /// least recently used shops' models are dropped and loaded again on their next request. 1 GiB holds about 1,000 stores of a
    /// few hundred products, or a handful of stores with a hundred thousand (see README, Performance).
    /// </summary>
    public long ModelCacheBudgetBytes { get; set; } = 1L << 30;

    /// <summary>
    /// Memory the shops' catalog snapshots may hold together, in bytes (as <see cref="CatalogCache.EstimatedBytes"/> reckons it); past
    /// it the least recently used shops' snapshots are dropped and loaded again on their next request. 512 MiB holds about a million
    /// products with a variant each.
    /// </summary>
    public long CatalogCacheBudgetBytes { get; set; } = 512L << 20;

    /// <summary>
    /// Product-page answers kept in memory across all shops (0 turns the answer cache off). An answer is about a kilobyte; a shop's
    /// answers are dropped together when its catalog, rules, switch or models change.
    /// </summary>
    public int AnswerCacheEntries { get; set; } = 200_000;
}

public sealed class RecommendationOptionsValidator : IValidateOptions<RecommendationOptions>
{
    public ValidateOptionsResult Validate(string? name, RecommendationOptions o)
    {
        var f = new List<string>();
        if (o.ServingBudget <= TimeSpan.Zero || o.ServingBudget > TimeSpan.FromSeconds(2)) f.Add($"Recommendations:ServingBudget {o.ServingBudget} must be between 0 and 2 s.");
        if (o.CatalogMaxAge < TimeSpan.Zero) f.Add($"Recommendations:CatalogMaxAge {o.CatalogMaxAge} must not be negative.");
        if (o.BestsellersMaxAge < TimeSpan.Zero || o.BestsellersMaxAge > TimeSpan.FromDays(1))
            f.Add($"Recommendations:BestsellersMaxAge {o.BestsellersMaxAge} must be between 0 and 1 day.");
        if (o.ModelVersionCheckInterval < TimeSpan.FromMilliseconds(100) || o.ModelVersionCheckInterval > TimeSpan.FromMinutes(10))
            f.Add($"Recommendations:ModelVersionCheckInterval {o.ModelVersionCheckInterval} must be between 100 ms and 10 min.");
        if (o.EventWindow < TimeSpan.FromMinutes(1) || o.EventWindow > TimeSpan.FromDays(7)) f.Add($"Recommendations:EventWindow {o.EventWindow} must be between 1 min and 7 days.");
        if (o.PerClientPerMinute < 1) f.Add($"Recommendations:PerClientPerMinute {o.PerClientPerMinute} must be at least 1.");
        if (o.PerShopPerSecond < 1) f.Add($"Recommendations:PerShopPerSecond {o.PerShopPerSecond} must be at least 1.");
        if (o.ModelCacheBudgetBytes < 1 || o.ModelCacheBudgetBytes > 1L << 40) f.Add($"Recommendations:ModelCacheBudgetBytes {o.ModelCacheBudgetBytes} must be between 1 byte and 1 TiB.");
        if (o.CatalogCacheBudgetBytes < 1 || o.CatalogCacheBudgetBytes > 1L << 40) f.Add($"Recommendations:CatalogCacheBudgetBytes {o.CatalogCacheBudgetBytes} must be between 1 byte and 1 TiB.");
        if (o.AnswerCacheEntries < 0 || o.AnswerCacheEntries > 10_000_000) f.Add($"Recommendations:AnswerCacheEntries {o.AnswerCacheEntries} must be between 0 (off) and 10,000,000.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
