using PluginApp.Admin.Shell;
using PluginApp.Data;

namespace PluginApp.Governance.Admin;

/// <summary>
/// The decision log, searched: every upsell answer, cart offer, risk score and churn segment change the app made in this
/// store, by order, customer, product, kind or day, each with what answered (and whether it was a fallback), the model
/// version, the experiment arm, the inputs, the output and the reasons.
/// </summary>
public sealed class DecisionsModel(DecisionSearch search, Npgsql.NpgsqlDataSource db, ShopScope scope) : AdminPageModel
{
    public DecisionQuery Query { get; private set; } = new();
    public List<DecisionView> Results { get; private set; } = [];

    /// <summary>Whether more decisions match than <see cref="Results"/> holds.</summary>
    public bool More { get; private set; }
    public Dictionary<string, string[]> Problems { get; private set; } = [];
    public bool Searched { get; private set; }
    public Dictionary<long, string> Titles { get; private set; } = [];

    /// <summary>Products as the merchant knows them: by title, the id only for a product the store no longer holds.</summary>
    public string Products(IEnumerable<long> ids) => string.Join(", ", ids.Select(id => Titles.TryGetValue(id, out var t) ? t : $"product {id}"));

    public async Task OnGetAsync(string? kind, string? order, string? customer, string? product, DateOnly? from, DateOnly? to, CancellationToken ct)
    {
        ViewData["Title"] = "Decisions";
        Problems = new();
        var q = new DecisionQuery(string.IsNullOrEmpty(kind) ? null : kind, await OrderIdAsync(order, ct), Id(customer, "customer"), Id(product, "product"),
            from?.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc), to?.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc));
        foreach (var (k, v) in DecisionSearch.Problems(q)) Problems[k] = v;
        Query = q;
        Searched = new[] { kind, order, customer, product }.Any(x => !string.IsNullOrEmpty(x)) || from is not null || to is not null;
        // One more than the page shows: whether more match than it shows (said under the table) is known, not guessed.
        if (Problems.Count == 0) Results = await search.FindAsync(scope.ShopId, q with { Limit = q.Limit + 1 }, ct);
        More = Results.Count > q.Limit;
        if (More) Results.RemoveAt(Results.Count - 1);
        var ids = Results.SelectMany(d => d.InputIds.Concat(d.OutputIds)).Distinct().ToArray();
        if (ids.Length == 0) return;
        await using var cmd = db.CreateCommand("SELECT id, title FROM products WHERE shop_id = $1 AND id = ANY($2)");
        cmd.Parameters.Add(Sql.Param(scope.ShopId));
        cmd.Parameters.Add(Sql.Param(ids));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) Titles[r.GetInt64(0)] = r.GetString(1);
    }

    /// <summary>
    /// An order as typed: its number as the Shopify admin shows it, looked up by name ("#1001"; "1001", read as "#1001"; or
    /// the store's own format, "EU-1001"), else its id. Why the number: it is what a merchant knows an order by; until 6 Dec
    /// 2026 "#1001" was read as the id 1001 and the page said "No decision matches." of an order with decisions, and until
    /// 8 Dec 2026 so was "1001", and a store's own format was refused.
    /// </summary>
    private async Task<long?> OrderIdAsync(string? text, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var name = text.Trim();
        await using var cmd = db.CreateCommand("""
            SELECT id FROM orders WHERE shop_id = $1 AND name IN ($2, '#' || $2) ORDER BY name = $2 DESC, id DESC LIMIT 1
            """);
        cmd.Parameters.Add(Sql.Param(scope.ShopId));
        cmd.Parameters.Add(Sql.Param(name));
        if (await cmd.ExecuteScalarAsync(ct) is long id) return id;
        if (name.StartsWith('#'))
        {
            Problems["order"] = [$"No order {name} is held for this store; type its number as the Shopify admin shows it, or its id"];
            return null;
        }
        return Id(text, "order");
    }

    /// <summary>An id as typed: digits, or a Shopify gid ending in digits.</summary>
    private long? Id(string? text, string field)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var digits = text.Trim();
        var slash = digits.LastIndexOf('/');
        if (slash >= 0) digits = digits[(slash + 1)..];
        if (long.TryParse(digits.TrimStart('#'), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id > 0) return id;
        Problems[field] = [field == "order"
            ? $"order must be its number as the Shopify admin shows it (#1001) or its id (in the admin's address), not '{text.Trim()}'"
            : $"{field} must be a number (the id in the Shopify admin's address), not '{text.Trim()}'"];
        return null;
    }

    public static string KindName(string kind) => kind switch
    {
        DecisionKinds.Upsell => "Upsell answer",
        DecisionKinds.Offer => "Cart offer",
        DecisionKinds.Risk => "Order risk",
        DecisionKinds.Churn => "Churn segment",
        _ => kind,
    };

    public static string PathName(string path, bool fallback) => (path switch
    {
        "model" => "the model",
        "co_occurrence" => "bought-together pairs",
        "popularity" => "store bestsellers, the candidate that won on held-out orders",
        "bestsellers" => "store bestsellers",
        "rule_prior" => "the rule prior",
        "store_rate" => "the store's cart conversion rate",
        "not_scored" => "nothing read (the cart is not scored: control arm or empty)",
        "switched_off" => "nothing (switched off)",
        "risky_session" => "nothing (a risky order from this shopper waits for review)",
        "discriminative" => "the classifier",
        "probabilistic" => "the repeat-buying model",
        _ => path.Replace('_', ' '),
    }) + (fallback ? " (fallback)" : "");
}
