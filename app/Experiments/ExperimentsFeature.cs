using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Admin;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Webhooks;

namespace PluginApp.Experiments;

public static class ExperimentsFeature
{
    /// <summary>
    /// How long who saw which arm, and the orders joined to it, are kept: the retention of both, and so the longest an
    /// experiment's results can count from one start (ExperimentResults measures anew every this long).
    /// </summary>
    public static readonly TimeSpan Kept = TimeSpan.FromDays(180);

    public static IServiceCollection AddExperiments(this IServiceCollection services)
    {
        services.AddSingleton<ExperimentKinds>();
        services.AddSingleton<ExperimentStore>();
        services.AddSingleton<ExperimentResults>();
        services.AddIngestionStep<StoreData.OrderRows>("experiment outcomes", (store, order, at) => ExperimentOutcomes.Add(store, order, at.Shop, at.Now));
        // An order Shopify deleted (a test order, or one cancelled and removed) is no arm's outcome.
        services.AddIngestionStep<StoreData.OrderDeletion>("experiment outcomes: order deleted", (store, deleted, _) =>
            store.Add("DELETE FROM experiment_outcomes WHERE shop_id = $1 AND order_id = $2", store.ShopId, deleted.Id));
        services.AddAdminPage("/admin/experiments", "Experiments", 50);
        // The visitor ids a logged-in customer was exposed under, and those of her orders' outcomes (a guest's included).
        services.AddVisitorLink(new VisitorLink("experiments", """
            SELECT substr(unit, 3) FROM experiment_exposures WHERE shop_id = $1 AND customer_id = $2 AND unit LIKE 'v:%'
            UNION ALL SELECT visitor_hash FROM experiment_outcomes WHERE shop_id = $1 AND (customer_id = $2 OR order_id IN (SELECT id FROM redaction_orders))
            """));
        services.AddPersonalData(new PersonalDataTable("experiment_exposures", ["customer_id", "unit"],
            """
            DELETE FROM experiment_exposures WHERE shop_id = $1 AND (customer_id = $2 OR unit = 'c:' || $2::text
              OR unit IN (SELECT 'v:' || visitor_hash FROM redaction_visitors) AND customer_id IS NULL)
            """,
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(x) - 'shop_id'), '[]') FROM experiment_exposures x WHERE x.shop_id = $1 AND (x.customer_id = $2
                  OR x.unit = 'c:' || $2::text OR x.unit IN (SELECT 'v:' || visitor_hash FROM redaction_visitors) AND x.customer_id IS NULL)
                """));
        services.AddPersonalData(new PersonalDataTable("experiment_outcomes", ["customer_id", "visitor_hash", "unit"],
            """
            UPDATE experiment_outcomes SET customer_id = NULL, visitor_hash = NULL, unit = NULL WHERE shop_id = $1 AND (customer_id = $2
              OR visitor_hash IN (SELECT visitor_hash FROM redaction_visitors) AND customer_id IS NULL OR order_id IN (SELECT id FROM redaction_orders))
            """,
            Export: """
                SELECT coalesce(jsonb_agg(to_jsonb(x) - 'shop_id'), '[]') FROM experiment_outcomes x WHERE x.shop_id = $1 AND (x.customer_id = $2
                  OR x.visitor_hash IN (SELECT visitor_hash FROM redaction_visitors) AND x.customer_id IS NULL OR x.order_id IN (SELECT id FROM redaction_orders))
                """));
        services.AddRetention(new RetentionRule("experiment exposures (who saw which arm)", Kept,
            "DELETE FROM experiment_exposures WHERE first_at < $1"));
        services.AddRetention(new RetentionRule("experiment outcomes (orders joined to an arm)", Kept,
            "DELETE FROM experiment_outcomes WHERE ordered_at < $1"));
        return services;
    }

    public static RouteGroupBuilder MapExperimentsAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/experiments", ListAsync);
        api.MapGet("/experiments/{key}", GetAsync);
        api.MapPut("/experiments/{key}", PutAsync);
        return api;
    }

    public sealed record ExperimentSummaryView(string Key, string Name, string Purpose, string Control, ExperimentSettings Settings, IReadOnlyList<string> Verdicts);

    /// <summary>The API's JSON: an estimate that does not exist yet (an interval with too few units, a lift over a zero control) is null, not NaN.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new FiniteOrNull() } };

    private sealed class FiniteOrNull : System.Text.Json.Serialization.JsonConverter<double>
    {
        public override bool HandleNull => false;

        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value); else writer.WriteNullValue();
        }
    }

    private static async Task<JsonHttpResult<List<ExperimentSummaryView>>> ListAsync(ExperimentKinds kinds, ExperimentResults results, ShopScope scope, CancellationToken ct)
    {
        var list = new List<ExperimentSummaryView>();
        foreach (var k in kinds.All)
        {
            var report = await results.ReportAsync(scope.ShopId, k.Key, ct);
            list.Add(new ExperimentSummaryView(k.Key, k.Name, k.Purpose, k.Control, report.Settings, report.Verdicts));
        }
        return TypedResults.Json(list, Json);
    }

    private static async Task<Results<JsonHttpResult<ExperimentReport>, NotFound>> GetAsync(string key, ExperimentKinds kinds, ExperimentResults results, ShopScope scope,
        CancellationToken ct) =>
        kinds.Find(key) is null ? TypedResults.NotFound() : TypedResults.Json(await results.ReportAsync(scope.ShopId, key, ct), Json);

    /// <summary>
    /// The page's form: <c>share_{arm}</c> in percent for every arm, <c>metric</c>, <c>maxRefundRate</c> and
    /// <c>maxAverageDiscount</c> in percent (empty: no guardrail), <c>running</c> true or false.
    /// </summary>
    private static async Task<Results<NoContent, NotFound, ValidationProblem>> PutAsync(string key, JsonElement body, ExperimentKinds kinds, ExperimentStore store,
        ShopScope scope, HttpContext http, CancellationToken ct)
    {
        if (kinds.Find(key) is not { } kind) return TypedResults.NotFound();
        var errors = new Dictionary<string, string[]>();
        double? Percent(string name)
        {
            if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && double.IsFinite(d)) return d / 100;
            errors[name] = ["must be a number (percent)"];
            return null;
        }
        // A share not sent is NaN, not a negative one: until 6 Dec 2026 a typed -10 read as missing ("is required").
        var arms = kind.Arms.Select(a => new ArmShare(a.Name, Percent("share_" + a.Name) ?? double.NaN, a.Description)).ToList();
        // A share sent as the page showed it (rounded) stands for the stored one, before the shares are checked to sum to 1:
        // until 5 Dec 2026 the check came first, so shares of 12.25 % and 87.75 %, shown as 12.3 and 87.8, were refused as
        // summing to 1.001, and the experiment could not even be stopped from the page.
        arms = ExperimentStore.AsStored(arms, (await store.GetAsync(scope.ShopId, key, ct)).Arms);
        foreach (var a in arms.Where(a => double.IsNaN(a.Share))) errors.TryAdd("share_" + a.Name, ["a share is required (percent of units)"]);
        var metric = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("metric", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        var guardrails = new Guardrails(Percent("maxRefundRate"), Percent("maxAverageDiscount"));
        bool? running = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("running", out var r)
            ? r.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, JsonValueKind.String => r.GetString() switch { "true" => true, "false" => false, _ => null }, _ => null }
            : null;
        if (running is null) errors["running"] = ["running must be true or false"];
        if (errors.Count == 0)
            foreach (var (field, problems) in ExperimentSettings.Problems(kind, arms, metric, guardrails))
                errors[field == ExperimentSettings.ArmsField ? "share_" + kind.Control : field] = problems;
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        await store.SaveAsync(scope.ShopId, key, arms, metric!, guardrails, running!.Value, PluginApp.Admin.Switches.AdminUser.Of(http), ct);
        return TypedResults.NoContent();
    }

    /// <summary>A share or guardrail in percent as the form shows and sends it back: to 0.01 % (a guardrail of 12.34 % was
    /// shown as 12.3 until 5 Dec 2026, and the next save of the form lowered it).</summary>
    internal static string Percent(double share) => (share * 100).ToString("0.##", CultureInfo.InvariantCulture);
}
