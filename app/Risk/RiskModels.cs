using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using PluginApp.Data;
using PluginApp.Ml.Tabular;

namespace PluginApp.Risk;

/// <summary>A shop's active fraud model and how much its score counts against the prior.</summary>
/// <param name="ModelWeight">n / (n + 50) for the n confirmed fraud orders it learned from: 0.38 at 30, 0.8 at 200.</param>
public sealed record ActiveRiskModel(int Version, TabularModel Model, double ModelWeight);

/// <summary>
/// Each shop's active risk model, loaded once per version: the scorer asks for the active version (one indexed read per
/// batch) and gets the cached model while it has not changed.
/// </summary>
public sealed class RiskModels
{
    // Null model: the active version was trained on other features than the builder's now (scored by the prior until retrained).
    private readonly ConcurrentDictionary<long, (int Version, ActiveRiskModel? Model)> _byShop = new();

    public const double EvidenceHalf = 50;

    public async Task<ActiveRiskModel?> ActiveAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("SELECT version, metrics FROM models WHERE shop_id = $1 AND kind = $2 AND status = 'active'", conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(RiskTrainer.Kind));
        int version;
        double fraud;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            if (!await r.ReadAsync(ct)) return null;
            version = r.GetInt32(0);
            using var metrics = JsonDocument.Parse(r.GetString(1));
            fraud = metrics.RootElement.TryGetProperty(nameof(RiskTrainer.RiskMetrics.TrainFraud), out var f) ? f.GetDouble() : 0;
        }
        if (_byShop.TryGetValue(shopId, out var cached) && cached.Version == version) return cached.Model;
        await using var load = new NpgsqlCommand("SELECT artifact FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3", conn, tx);
        load.Parameters.Add(Sql.Param(shopId));
        load.Parameters.Add(Sql.Param(RiskTrainer.Kind));
        load.Parameters.Add(Sql.Param(version));
        var artifact = (byte[])(await load.ExecuteScalarAsync(ct))!;
        var loaded = TabularModel.Load(new MemoryStream(artifact));
        // Why: a model trained before a feature was added or renamed would read the new vector's columns wrongly.
        var model = loaded.Schema.Features.Select(f => f.Name).SequenceEqual(OrderFeatures.Names) ? new ActiveRiskModel(version, loaded, fraud / (fraud + EvidenceHalf)) : null;
        if (model is null) loaded.Dispose();
        _byShop[shopId] = (version, model); // the replaced model is left to the collector: a scorer may still be using it
        return model;
    }

    /// <summary>
    /// Each order's assessment: the rule prior alone, or with the shop's active model blended in. The model explains the
    /// whole batch in one pass (one ML.NET transform per batch, not per order).
    /// </summary>
    public static RiskAssessment[] Assess(IReadOnlyList<float[]> features, string currency, ActiveRiskModel? active)
    {
        var priors = features.Select(f => RulePrior.Assess(f, currency)).ToArray();
        if (active is null || features.Count == 0) return priors;
        var explanations = active.Model.Explain(features.Select(RiskTrainer.Row).ToList());
        return priors.Select((p, i) => Blend(p, active, explanations[i])).ToArray();
    }

    /// <summary>
    /// The prior and the model together, in log-odds weighted by the model's evidence; the reasons are the prior's rules and
    /// the model's strongest features, each weighted the same way.
    /// </summary>
    private static RiskAssessment Blend(RiskAssessment prior, ActiveRiskModel active, TabularExplanation explanation)
    {
        var w = active.ModelWeight;
        var logit = w * Logit(explanation.Probability) + (1 - w) * Logit(prior.Score);
        var modelReasons = explanation.Top(3).Where(c => c.Contribution > 0).Select(c => new RiskReason("model:" + c.Feature,
            string.Create(CultureInfo.InvariantCulture, $"The store's fraud model weighs {c.Description}: {Convert.ToDouble(c.Value, CultureInfo.InvariantCulture):0.##}"),
            w * c.Contribution));
        var reasons = prior.Reasons.Select(r => r with { Weight = (1 - w) * r.Weight }).Concat(modelReasons)
            .OrderByDescending(r => Math.Abs(r.Weight)).ToList();
        return new RiskAssessment(RulePrior.Sigmoid(logit), reasons);
    }

    private static double Logit(double p)
    {
        p = Math.Clamp(p, 1e-6, 1 - 1e-6);
        return Math.Log(p / (1 - p));
    }
}
