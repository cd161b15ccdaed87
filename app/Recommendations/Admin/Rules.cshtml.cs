using System.Text.Json;
using PluginApp.Admin.Shell;
using PluginApp.Data;

namespace PluginApp.Recommendations.Admin;

/// <summary>Every rule serving applies, as a form; the change history with who and when; a what-if against yesterday's answers.</summary>
public sealed class RulesModel(RulesStore store, CatalogCache catalogs, ShopScope scope) : AdminPageModel
{
    public BusinessRules Rules { get; private set; } = BusinessRules.Default;
    public int Version { get; private set; }
    public List<(int Version, DateTimeOffset At, string? By, string Changes)> History { get; private set; } = [];
    public IReadOnlyDictionary<long, CatalogProduct> Products { get; private set; } = new Dictionary<long, CatalogProduct>();

    public async Task OnGetAsync(CancellationToken ct)
    {
        ViewData["Title"] = "Rules";
        (Rules, Version) = await store.GetAsync(scope.ShopId, ct);
        Products = (await catalogs.GetAsync(scope.ShopId, ct)).Products;
        // One more than is shown: the oldest change shown is told against the version before it, not against the defaults
        // (until 6 Dec 2026, past 100 changes, it listed every rule that differed from the defaults as changed then).
        var history = await store.HistoryAsync(scope.ShopId, RulesStore.HistoryShown + 1, ct);
        MoreHistory = history.Count > RulesStore.HistoryShown;
        History = history.Take(RulesStore.HistoryShown).Select((h, i) =>
        {
            var rules = h.Rules.Deserialize<BusinessRules>(RulesStore.Json)!;
            var before = i + 1 < history.Count ? history[i + 1].Rules.Deserialize<BusinessRules>(RulesStore.Json)! : BusinessRules.Default;
            return (h.Version, h.At, h.By, Changes(before, rules));
        }).ToList();
    }

    /// <summary>Whether older changes than those listed exist.</summary>
    public bool MoreHistory { get; private set; }

    public string Ids(long[] ids) => string.Join(", ", ids);

    /// <summary>How many of the catalog's products each blocked collection holds, as last read from Shopify.</summary>
    public string Members(long[] collections) => string.Join("; ", collections.Select(c =>
    {
        var n = Products.Values.Count(p => p.Collections.Contains(c));
        return $"{c}: {n} product{(n == 1 ? "" : "s")}";
    }));

    public string Titles(long[] ids) => string.Join("; ", ids.Select(id => Products.TryGetValue(id, out var p) ? p.Title : $"{id} (not in the catalog)"));

    /// <summary>What changed between two versions, in words ("max price ratio: none → 2").</summary>
    public static string Changes(BusinessRules before, BusinessRules after)
    {
        var a = JsonSerializer.SerializeToElement(before, RulesStore.Json);
        var b = JsonSerializer.SerializeToElement(after, RulesStore.Json);
        var changes = b.EnumerateObject()
            .Where(p => !a.TryGetProperty(p.Name, out var old) || old.GetRawText() != p.Value.GetRawText())
            .Select(p => $"{Label(p.Name)}: {Show(a.TryGetProperty(p.Name, out var o) ? o : default)} → {Show(p.Value)}").ToList();
        return changes.Count == 0 ? "no change" : string.Join("; ", changes);
    }

    public static string Label(string field) => field switch
    {
        "excludeOutOfStock" => "hide out of stock",
        "excludeInCart" => "hide what is in the cart",
        "blockedProductIds" => "blocked products",
        "blockedCollectionIds" => "blocked collections",
        "pinnedProductIds" => "pinned products",
        "maxPriceRatio" => "max price ratio",
        "minMarginPercent" => "margin floor (%)",
        "maxPerProductType" => "per-type cap",
        _ => field,
    };

    private static string Show(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Undefined or JsonValueKind.Null => "none",
        JsonValueKind.True => "yes",
        JsonValueKind.False => "no",
        JsonValueKind.Array => v.GetArrayLength() == 0 ? "none" : string.Join(", ", v.EnumerateArray().Select(x => x.GetRawText())),
        _ => v.GetRawText(),
    };
}
