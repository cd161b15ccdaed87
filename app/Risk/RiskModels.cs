using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using PluginApp.Data;
using PluginApp.Ml.Tabular;

namespace PluginApp.Risk;

/// <summary>A shop's active fraud model and how much its score counts against the prior.</summary>
/// <param name="ModelWeight">The model's weight against the rule prior, as its training chose it (<see cref="RiskTrainer.ChooseBlendWeight"/>);
/// for a model registered without one, n / (n + 50) for the n confirmed fraud orders it learned from: 0.38 at 30, 0.8 at 200.</param>
/// <param name="BaseRate">The share of fraud among the orders it learned from: its calibrated score for an order it knows
/// nothing about, from which its reasons measure how far it moved an order's score.</param>
public sealed record ActiveRiskModel(int Version, TabularModel Model, double ModelWeight, double BaseRate);

/// <summary>A shop's risk version in a staged release: its stage ("shadow" or "canary"), the shop's canary share, and the model, or why it could not be read.</summary>
public sealed record RiskRelease(int Version, string Stage, double CanaryShare, ActiveRiskModel? Model, string? LoadError)
{
    /// <summary>Whether an order is in the canary's share: a hash of the order, so a re-scored order keeps its version.</summary>
    public bool Answers(long shopId, long orderId) => Stage == "canary" &&
        PluginApp.Experiments.Assignment.Bucket(shopId.ToString(CultureInfo.InvariantCulture), "o:" + orderId.ToString(CultureInfo.InvariantCulture), "release:" + RiskTrainer.Kind) < CanaryShare;
}

/// <summary>
/// Each shop's active risk model, and the version in shadow or canary if there is one, loaded once per version: the scorer
/// asks for the versions (one indexed read per batch) and gets the cached models while they have not changed.
/// </summary>
public sealed class RiskModels
{
    // Null model: the version was trained on other features than the builder's now (scored by the prior until retrained).
    private readonly ConcurrentDictionary<long, (int Version, ActiveRiskModel? Model)> _byShop = new();
    private readonly ConcurrentDictionary<long, (int Version, ActiveRiskModel? Model, string? Error)> _releaseByShop = new();

    public const double EvidenceHalf = 50;

    public async Task<ActiveRiskModel?> ActiveAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, CancellationToken ct)
    {
        if (await VersionAsync(conn, tx, shopId, "status = 'active'", ct) is not { } found) return null;
        var (version, _, learnt) = found;
        if (_byShop.TryGetValue(shopId, out var cached) && cached.Version == version) return cached.Model;
        var model = await LoadAsync(conn, tx, shopId, version, learnt, ct);
        _byShop[shopId] = (version, model); // the replaced model is left to the collector: a scorer may still be using it
        return model;
    }

    /// <summary>
    /// The version in shadow or canary, or null. A file that cannot be read is not an error of the scorer: the release
    /// carries it as its failure, which counts against the release only.
    /// </summary>
    public async Task<RiskRelease?> ReleaseAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, Governance.GovernanceOptions governance,
        CancellationToken ct)
    {
        if (await VersionAsync(conn, tx, shopId, "status IN ('shadow', 'canary')", ct) is not { } found) return null;
        var (version, stage, learnt) = found;
        if (!_releaseByShop.TryGetValue(shopId, out var cached) || cached.Version != version)
        {
            try
            {
                var model = await LoadAsync(conn, tx, shopId, version, learnt, ct);
                cached = (version, model, model is null ? "it was trained on other order features than the scorer builds now" : null);
            }
            catch (Exception e) when (e is not OperationCanceledException and not NpgsqlException)
            {
                cached = (version, null, $"its file could not be read ({e.GetType().Name}: {e.Message})");
            }
            _releaseByShop[shopId] = cached;
        }
        var share = stage == "canary" ? (await Governance.ReleaseSettings.GetAsync(conn, tx, shopId, RiskTrainer.Kind, governance, ct)).CanaryShare : 0;
        return new RiskRelease(version, stage, share, cached.Model, cached.Error);
    }

    private static async Task<(int Version, string Stage, (double Fraud, double Orders, double? Weight) Learnt)?> VersionAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, string which,
        CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT version, status, metrics FROM models WHERE shop_id = $1 AND kind = $2 AND {which} LIMIT 1", conn, tx);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(RiskTrainer.Kind));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        using var metrics = JsonDocument.Parse(r.GetString(2));
        var fraud = metrics.RootElement.TryGetProperty(nameof(RiskTrainer.RiskMetrics.TrainFraud), out var f) ? f.GetDouble() : 0;
        var orders = metrics.RootElement.TryGetProperty(nameof(RiskTrainer.RiskMetrics.TrainOrders), out var n) ? n.GetDouble() : 0;
        // Why not always the evidence weight: since 6 Dec 2026 training chooses the weight on held-out orders and registers it.
        var weight = metrics.RootElement.TryGetProperty(nameof(RiskTrainer.RiskMetrics.ModelWeight), out var w) && w.ValueKind == JsonValueKind.Number
            ? w.GetDouble() : (double?)null;
        return (r.GetInt32(0), r.GetString(1), (fraud, orders, weight));
    }

    private static async Task<ActiveRiskModel?> LoadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long shopId, int version,
        (double Fraud, double Orders, double? Weight) learnt, CancellationToken ct)
    {
        await using var load = new NpgsqlCommand("SELECT artifact FROM models WHERE shop_id = $1 AND kind = $2 AND version = $3", conn, tx);
        load.Parameters.Add(Sql.Param(shopId));
        load.Parameters.Add(Sql.Param(RiskTrainer.Kind));
        load.Parameters.Add(Sql.Param(version));
        var artifact = (byte[])(await load.ExecuteScalarAsync(ct))!;
        var loaded = TabularModel.Load(new MemoryStream(artifact));
        // Why: a model trained before a feature was added or renamed would read the new vector's columns wrongly.
        var model = loaded.Schema.Features.Select(f => f.Name).SequenceEqual(OrderFeatures.Names)
            ? new ActiveRiskModel(version, loaded, learnt.Weight ?? ModelWeightOf(learnt.Fraud), BaseRateOf(learnt.Fraud, learnt.Orders)) : null;
        if (model is null) loaded.Dispose();
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
        return priors.Select((p, i) => Blend(p, active.ModelWeight, active.BaseRate, explanations[i])).ToArray();
    }

    /// <summary>
    /// The prior and the model together, in log-odds weighted by the model's evidence; the reasons are the prior's rules and
    /// the model's strongest features, each in the log-odds it adds to the served score (see <see cref="ModelReasons"/>).
    /// </summary>
    public static RiskAssessment Blend(RiskAssessment prior, double w, double baseRate, TabularExplanation explanation)
    {
        var reasons = prior.Reasons.Select(r => r with { Weight = (1 - w) * r.Weight })
            .Concat(ModelReasons(explanation, w, baseRate))
            .OrderByDescending(r => Math.Abs(r.Weight)).ToList();
        return new RiskAssessment(Served(explanation.Probability, prior.Score, w), reasons);
    }

    /// <summary>
    /// The model's reasons for one order, in the units of the prior's rules: how far the model moved the served log-odds
    /// from what it gives an order it knows nothing about (<c>weight x (logit(p) - logit(base rate))</c>), shared among
    /// up to three of its features that pushed that way, in proportion to their contributions.
    /// </summary>
    /// <remarks>
    /// Why not the contributions themselves: a LightGbm contribution ranks features but is not in log-odds of the score
    /// (see <see cref="TabularExplanation"/>; measured, they sum to tens of units), so ranked beside the prior's rules
    /// it pushed every rule out of a reviewer's top three. Why the direction first: a feature that lowered the risk is no
    /// reason for a high score, and taking the top three before filtering could leave none that raised it.
    /// </remarks>
    public static IReadOnlyList<RiskReason> ModelReasons(TabularExplanation explanation, double weight, double baseRate)
    {
        var moved = weight * (Logit(explanation.Probability) - Logit(baseRate));
        if (moved == 0 || double.IsNaN(moved)) return [];
        var sign = Math.Sign(moved);
        var pushing = explanation.Contributions.Where(c => double.IsFinite(c.Contribution) && Math.Sign(c.Contribution) == sign).Take(3).ToList();
        var total = pushing.Sum(c => Math.Abs(c.Contribution));
        if (total == 0) return [];
        return pushing.Select(c => new RiskReason("model:" + c.Feature,
            string.Create(CultureInfo.InvariantCulture, $"The store's fraud model weighs {c.Description}: {Convert.ToDouble(c.Value, CultureInfo.InvariantCulture):0.##}"),
            moved * Math.Abs(c.Contribution) / total)).ToList();
    }

    /// <summary>The score an order is given: the model's and the prior's probabilities in log-odds, the model weighing <paramref name="modelWeight"/>.</summary>
    public static double Served(double model, double prior, double modelWeight) =>
        RulePrior.Sigmoid(modelWeight * Logit(model) + (1 - modelWeight) * Logit(prior));

    /// <summary>The model's weight in the served score, from its fraud labels: n / (n + <see cref="EvidenceHalf"/>).</summary>
    public static double ModelWeightOf(double fraudLabels) => fraudLabels / (fraudLabels + EvidenceHalf);

    /// <summary>The fraud share of the orders a model learned from; 0.5 (log-odds 0) for a model registered without its order count.</summary>
    public static double BaseRateOf(double fraudLabels, double orders) => orders > 0 ? fraudLabels / orders : 0.5;

    private static double Logit(double p)
    {
        p = Math.Clamp(p, 1e-6, 1 - 1e-6);
        return Math.Log(p / (1 - p));
    }
}
