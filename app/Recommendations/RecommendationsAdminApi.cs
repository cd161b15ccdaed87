using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Admin.Shell;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.StoreData;

namespace PluginApp.Recommendations;

/// <summary>The merchant's view of upsells: the business rules and their history, and what was attributed to recommendations.</summary>
public static class RecommendationsAdminApi
{
    public static RouteGroupBuilder MapRecommendationsAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/rules", GetRulesAsync);
        api.MapPut("/rules", PutRulesAsync);
        api.MapGet("/rules/history", RulesHistoryAsync);
        api.MapPost("/rules/what-if", WhatIfAsync);
        api.MapGet("/recommendations/preview", PreviewAsync);
        return api;
    }

    public sealed record RulesHistoryView(int Version, DateTimeOffset At, string? By, System.Text.Json.JsonElement Rules);

    private static async Task<Ok<List<RulesHistoryView>>> RulesHistoryAsync(RulesStore rules, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok((await rules.HistoryAsync(scope.ShopId, RulesStore.HistoryShown, ct)).Select(h => new RulesHistoryView(h.Version, h.At, h.By, h.Rules)).ToList());

    private static async Task<Ok<RulesView>> GetRulesAsync(RulesStore store, ShopScope scope, CancellationToken ct)
    {
        var (rules, version) = await store.GetAsync(scope.ShopId, ct);
        return TypedResults.Ok(new RulesView(version, rules));
    }

    public sealed record RulesView(int Version, BusinessRules Rules);

    private static async Task<Results<Ok<RulesView>, ValidationProblem>> PutRulesAsync(BusinessRules rules, RulesStore store, CatalogCache catalogs,
        Hangfire.IBackgroundJobClient jobs, ShopScope scope, HttpContext http, CancellationToken ct)
    {
        var problems = rules.Problems();
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        var version = await store.SaveAsync(scope.ShopId, rules, PluginApp.Admin.Switches.AdminUser.Of(http), ct);
        catalogs.Invalidate(scope.ShopId);
        // The blocked collections' products as Shopify holds them now, not as the import found them.
        if (rules.BlockedCollectionIds.Length > 0) BlockedCollectionsJob.Enqueue(jobs, scope.ShopId);
        return TypedResults.Ok(new RulesView(version, rules));
    }

    /// <summary>What yesterday's answers would have lost under these rules (validated like a save; nothing is saved).</summary>
    private static async Task<Results<Ok<WhatIfResult>, ValidationProblem>> WhatIfAsync(BusinessRules rules, RulesWhatIf whatIf, UpsellStats stats,
        ShopScope scope, TimeProvider clock, CancellationToken ct)
    {
        var problems = rules.Problems();
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        var (zone, _) = await stats.ShopAsync(scope.ShopId, ct);
        var yesterday = DayWindow.Ending(clock.GetUtcNow().AddDays(-1), zone, 1);
        return TypedResults.Ok(await whatIf.YesterdayAsync(scope.ShopId, rules, yesterday, ct));
    }

    public sealed record PreviewItem(int Rank, long ProductId, string Title, string? Price, string Currency, string? PriceText, string Reason, string Why);
    public sealed record PreviewView(long ProductId, string ProductTitle, string Path, int? ModelVersion, List<PreviewItem> Items);

    /// <summary>
    /// What the product block would show right now for a product (by id, exact title, or the first title containing the
    /// text), and why, in words, as many as the block is set to show (its product count, 2 to 8; 4 unless asked). Always
    /// the model arm; nothing is logged. Prices read in the store's currency as every admin page writes them.
    /// </summary>
    private static async Task<Results<Ok<PreviewView>, ProblemHttpResult>> PreviewAsync(string? product, int? count, RecommendationService service,
        CatalogCache catalogs, ShopScope scope, CancellationToken ct)
    {
        // Why: the preview always showed four, while a block set to six shows six (until 8 Dec 2026).
        var shown = count ?? 4;
        if (shown is < 2 or > 8) return TypedResults.Problem(title: "Invalid count", detail: "the block shows 2 to 8 products", statusCode: 400);
        var catalog = await catalogs.GetAsync(scope.ShopId, ct);
        var q = product?.Trim() ?? "";
        var found = long.TryParse(q, out var id) && catalog.Products.TryGetValue(id, out var byId) ? byId
            : catalog.Products.Values.FirstOrDefault(p => string.Equals(p.Title, q, StringComparison.OrdinalIgnoreCase))
              ?? (q.Length >= 2 ? catalog.Products.Values.Where(p => p.Title.Contains(q, StringComparison.OrdinalIgnoreCase)).MinBy(p => p.Title.Length) : null);
        if (found is null) return TypedResults.Problem(title: "No such product", detail: $"no product has the id or a title like '{q}'", statusCode: 404);
        var answer = await service.RecommendAsync(new RecommendationRequest(scope.ShopId, scope.Domain, "product", found.Id, [], shown, null, null, Preview: true), ct);
        return TypedResults.Ok(new PreviewView(found.Id, found.Title, answer.Path, answer.ModelVersion,
            answer.Items.Select(i => new PreviewItem(i.Rank, i.ProductId, i.Title, i.Price, i.Currency,
                decimal.TryParse(i.Price, NumberStyles.Number, CultureInfo.InvariantCulture, out var price) ? Format.Money(price, i.Currency) : null,
                i.Reason, ReasonInWords(i.Reason))).ToList()));
    }

    public static string ReasonInWords(string reason) => reason switch
    {
        "bought_together" => "Often bought together with this product",
        "similar" => "Bought by the same customers as this product",
        "for_you" => "Goes with what is in the cart",
        "popular" => "A bestseller in this store",
        "pinned" => "Pinned by you in the rules",
        _ => reason,
    };
}
