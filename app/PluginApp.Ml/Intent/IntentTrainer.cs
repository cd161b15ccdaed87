using System.Globalization;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Intent;

/// <summary>
/// Trains a store's purchase-intent model on carts that did or did not become orders. Protocol (time-based, never
/// random): the examples are ordered by <see cref="IntentExample.At"/>; the latest <see cref="IntentOptions.HeldOutShare"/>
/// (20 %) are held out, cut at a moment so that every training snapshot is strictly earlier than every held-out one
/// (snapshots tied at the cut all go to the held-out side). The classifier (<see cref="IntentOptions.Tabular"/>; by
/// default <see cref="TabularLearner.Auto"/>: logistic regression for small stores, LightGbm from 2,000 carts and 200
/// orders) is fitted on the earlier carts; its early-stopping and calibration rows are the <i>latest</i>
/// <see cref="TabularOptions.ValidationFraction"/> of those, by time as well, so the calibrator learns the most recent
/// conversion rate. The baselines are fitted on the same earlier carts and scored on the same held-out ones: the earlier
/// carts' base rate, logistic regression on cart value alone, and on reached-checkout alone (the merchant's rule of thumb).
/// Then, by default, the same learner is refitted on every cart for serving (<see cref="IntentOptions.Refit"/>).
/// </summary>
public static class IntentTrainer
{
    /// <summary>Scorer names in <see cref="IntentTrainingResult"/>.</summary>
    public const string IntentModelName = "intent model", BaseRate = "base rate of the earlier carts",
        CartValueOnly = "cart value only (logistic regression)", CheckoutOnly = "reached checkout only (logistic regression)";

    /// <summary>Trains, evaluates against the baselines and returns the model to serve, or why there is none (see the type doc).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bad option; ParamName names it.</exception>
    /// <exception cref="ArgumentException">A null example or an impossible snapshot; the message names its index and field.</exception>
    public static IntentTrainingResult Train(IReadOnlyList<IntentExample> examples, IntentOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(examples);
        var o = options ?? new IntentOptions();
        o.Validate();
        var n = examples.Count;
        var rows = new TabularRow[n];
        var labels = new bool[n];
        var at = new DateTime[n];
        for (var i = 0; i < n; i++)
        {
            if ((i & 1023) == 0) ct.ThrowIfCancellationRequested();
            var e = examples[i] ?? throw new ArgumentException($"examples[{i}] is null.", nameof(examples));
            if (e.Snapshot is null) throw new ArgumentException($"examples[{i}].Snapshot is null.", nameof(examples));
            e.Snapshot.Validate($"examples[{i}].Snapshot");
            rows[i] = IntentFeatures.Build(e.Snapshot);
            labels[i] = e.Ordered;
            at[i] = e.At;
        }
        var orders = labels.Count(l => l);
        var abandoned = n - orders;
        IntentTrainingResult NoModel(string why, int trainN = 0, int trainPos = 0, int heldN = 0, int heldPos = 0, DateTime? until = null, DateTime? from = null) =>
            new(null, why, null, [], false, n, orders, trainN, trainPos, heldN, heldPos, until, from, null, "no model: " + why);
        if (n < o.MinCarts || orders < o.MinOrders)
            return NoModel(I($"not enough data yet: {n:N0} carts, {orders:N0} that became orders; {o.MinCarts:N0} carts and {o.MinOrders:N0} orders needed"));
        if (abandoned < o.MinAbandoned)
            return NoModel(I($"not enough data yet: {n:N0} carts, only {abandoned:N0} that did not become orders; {o.MinAbandoned:N0} needed"));

        var byTime = Enumerable.Range(0, n).OrderBy(i => at[i]).ThenBy(i => i).ToArray();
        var (fit, held, heldFrom) = SplitByTime(byTime, at, o.HeldOutShare);
        var trainPos = fit.Count(i => labels[i]);
        var heldPos = held.Count(i => labels[i]);
        DateTime? until = fit.Length > 0 ? at[fit[^1]] : null;
        if (fit.Length == 0 || trainPos == 0 || trainPos == fit.Length || heldPos < o.MinHeldOutPerClass || held.Length - heldPos < o.MinHeldOutPerClass)
            return NoModel(I($"not enough data yet to evaluate: split at {heldFrom:yyyy-MM-dd HH:mm}, the {fit.Length:N0} earlier carts hold {trainPos:N0} orders and the {held.Length:N0} latest carts {heldPos:N0} orders and {held.Length - heldPos:N0} without; {o.MinHeldOutPerClass:N0} of each needed among the latest"),
                fit.Length, trainPos, held.Length, heldPos, until, heldFrom);

        ct.ThrowIfCancellationRequested();
        var evaluated = Fit(rows, labels, at, fit, o.Tabular);
        var heldRows = held.Select(i => rows[i]).ToArray();
        var heldLabels = held.Select(i => labels[i]).ToArray();
        var p = evaluated.PredictProbabilities(heldRows);
        var evaluation = new IntentEvaluation(IntentModelName, BinaryMetrics.Evaluate(p, heldLabels));

        ct.ThrowIfCancellationRequested();
        var fitLabels = fit.Select(i => labels[i]).ToArray();
        var baseRate = (double)trainPos / fit.Length;
        var baselines = new List<IntentEvaluation>
        {
            new(BaseRate, BinaryMetrics.Evaluate(Enumerable.Repeat(baseRate, held.Length).ToArray(), heldLabels)),
            new(CartValueOnly, BinaryMetrics.Evaluate(OneFeature(IntentFeatures.CartValueSchema, IntentFeatures.CartValueRow,
                fit.Select(i => rows[i]).ToArray(), fitLabels, heldRows, baseRate, o.Tabular.Seed), heldLabels)),
            new(CheckoutOnly, BinaryMetrics.Evaluate(OneFeature(IntentFeatures.CheckoutSchema, IntentFeatures.CheckoutRow,
                fit.Select(i => rows[i]).ToArray(), fitLabels, heldRows, baseRate, o.Tabular.Seed), heldLabels)),
        };
        var m = evaluation.Metrics;
        var beats = baselines.All(b => m.RocAuc > b.Metrics.RocAuc && m.Brier < b.Metrics.Brier);
        var info = evaluated.Info;

        IntentModel served;
        if (o.Refit)
        {
            ct.ThrowIfCancellationRequested();
            // Why the learner is pinned: Auto could pick LightGbm on all carts where the evaluated fit was logistic
            // regression, and then no figure would describe the served learner.
            var refit = Fit(rows, labels, at, byTime, o.Tabular with { Learner = info.Learner });
            evaluated.Dispose();
            served = new IntentModel(refit, n, orders);
        }
        else served = new IntentModel(evaluated, fit.Length, trainPos);

        var cv = baselines.First(b => b.Name == CartValueOnly).Metrics;
        var co = baselines.First(b => b.Name == CheckoutOnly).Metrics;
        var br = baselines.First(b => b.Name == BaseRate).Metrics;
        var learner = info.Learner == TabularLearner.LightGbm ? I($"LightGbm ({info.Trees} trees)") : "logistic regression";
        var reason = I($"{learner} fitted on the {fit.Length:N0} carts before {heldFrom:yyyy-MM-dd HH:mm} ({trainPos:N0} orders); on the {held.Length:N0} later carts ({heldPos:N0} orders) ROC-AUC {m.RocAuc:F3} (cart value only {cv.RocAuc:F3}, reached checkout only {co.RocAuc:F3}), Brier {m.Brier:F4} (base rate {br.Brier:F4}); ")
            + (beats ? "beats every baseline; " : "does NOT beat every baseline, so treat its scores with care; ")
            + (o.Refit ? I($"served: refitted on all {n:N0} carts with the same learner") : "served: the evaluated fit");
        return new IntentTrainingResult(served, null, evaluation, baselines, beats, n, orders, fit.Length, trainPos, held.Length, heldPos,
            until, heldFrom, info, reason)
        {
            HeldOutProbabilities = p,
            HeldOutLabels = heldLabels,
            HeldOutAt = held.Select(i => at[i]).ToArray(),
        };
    }

    /// <summary>
    /// Splits indexes already in time order: the latest round(<paramref name="share"/> x n) go to the second part, and so
    /// does every index whose moment equals the first of them, so the first part is strictly earlier than the cut.
    /// Returns both parts in time order and the cut (the first held-out moment; <see cref="DateTime.MaxValue"/> when the
    /// second part is empty).
    /// </summary>
    public static (int[] Earlier, int[] Latest, DateTime Cut) SplitByTime(IReadOnlyList<int> byTime, IReadOnlyList<DateTime> at, double share)
    {
        ArgumentNullException.ThrowIfNull(byTime);
        ArgumentNullException.ThrowIfNull(at);
        Common.Check.InRange(share, 0, 1, nameof(share));
        var n = byTime.Count;
        var k = n - (int)Math.Round(share * n, MidpointRounding.AwayFromZero);
        if (k >= n) return (byTime.ToArray(), [], DateTime.MaxValue);
        var cut = at[byTime[k]];
        return (byTime.Where(i => at[i] < cut).ToArray(), byTime.Where(i => at[i] >= cut).ToArray(), cut);
    }

    /// <summary>
    /// The classifier on the given carts (indexes in time order). Its early-stopping and calibration rows are the latest
    /// <see cref="TabularOptions.ValidationFraction"/> of them (<see cref="SplitByTime"/>); when that part or the rest lacks
    /// an order or a non-order (a tiny store), the trainer's own stratified split is used instead.
    /// </summary>
    private static TabularModel Fit(TabularRow[] rows, bool[] labels, DateTime[] at, int[] byTime, TabularOptions options)
    {
        var trainer = new TabularTrainer(IntentFeatures.Schema, options);
        TabularExample[] Examples(IEnumerable<int> idx) => idx.Select(i => new TabularExample(rows[i], labels[i])).ToArray();
        if (options.ValidationFraction > 0)
        {
            var (fit, valid, _) = SplitByTime(byTime, at, options.ValidationFraction);
            bool Both(int[] part) => part.Any(i => labels[i]) && part.Any(i => !labels[i]);
            if (Both(fit) && Both(valid)) return trainer.Train(Examples(fit), Examples(valid));
        }
        return trainer.Train(Examples(byTime));
    }

    /// <summary>Logistic regression on one feature (its own sigmoid, every fit row), or the base rate when the feature is
    /// constant in the fit rows (nothing to learn, and standardizing a constant divides by zero).</summary>
    private static double[] OneFeature(TabularSchema schema, Func<TabularRow, TabularRow> project, TabularRow[] fitRows, bool[] fitLabels,
        TabularRow[] heldRows, double baseRate, int seed)
    {
        var x = fitRows.Select(project).ToArray();
        var name = schema.Features[0].Name;
        if (x.Select(r => r[name]).Distinct().Count() < 2) return Enumerable.Repeat(baseRate, heldRows.Length).ToArray();
        using var m = new TabularTrainer(schema, new TabularOptions
        {
            Learner = TabularLearner.LogisticRegression, Calibrator = TabularCalibrator.None, ValidationFraction = 0, Seed = seed,
        }).Train(x.Select((r, i) => new TabularExample(r, fitLabels[i])).ToArray());
        return m.PredictProbabilities(heldRows.Select(project).ToArray());
    }

    private static string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
