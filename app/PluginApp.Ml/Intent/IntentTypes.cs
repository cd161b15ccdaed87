using PluginApp.Ml.Common;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Intent;

/// <summary>Options of <see cref="IntentTrainer"/>; all defaults here. <see cref="Validate"/> names the bad option.</summary>
public sealed record IntentOptions
{
    /// <summary>The classifier's options, the same for the evaluated fit, the serving refit and <c>scripts/eval/intent.sh</c>.
    /// Default <see cref="DefaultTabular"/>.</summary>
    public TabularOptions Tabular { get; init; } = DefaultTabular;

    /// <summary>
    /// The project's <see cref="TabularOptions"/> defaults with <see cref="TabularLearner.Auto"/> (logistic regression below
    /// 2,000 carts or 200 orders in the fit rows, LightGbm from there on: the learning curve in the README), Platt
    /// calibration, and <see cref="TabularOptions.Threads"/> = 1. Why one thread: stores are trained by a background job
    /// on cores that also serve requests, and LightGbm's OpenMP threads wait for each other when the cores are busy
    /// (measured on the 2-core machine at load average 2-7: 5-fold online-shoppers CV in 122 s with all cores, 4.7 s with
    /// one); its result does not depend on the thread count.
    /// </summary>
    public static TabularOptions DefaultTabular { get; } = new() { Learner = TabularLearner.Auto, Threads = 1 };

    /// <summary>Share of the carts, the latest by <see cref="IntentExample.At"/>, held out for evaluation. Default 0.2.</summary>
    public double HeldOutShare { get; init; } = 0.2;

    /// <summary>Carts needed before anything is trained. Default 300 (with 20 % held out, 60 carts to evaluate on).</summary>
    public int MinCarts { get; init; } = 300;

    /// <summary>Carts that became orders needed before anything is trained. Default 50: a fit part of ~40 orders is
    /// about the least a 15-feature logistic regression with L2 can be trusted with (the churn and fraud learning curves
    /// in the README were noisy below that).</summary>
    public int MinOrders { get; init; } = 50;

    /// <summary>Carts that did not become orders needed before anything is trained. Default 50.</summary>
    public int MinAbandoned { get; init; } = 50;

    /// <summary>Held-out carts of each class (ordered and not) needed to report figures; fewer and no model is served,
    /// because nobody could say whether it is any good. Default 10.</summary>
    public int MinHeldOutPerClass { get; init; } = 10;

    /// <summary>After the evaluation, refit on every cart (held-out ones included) and serve that; false serves the exact
    /// model the figures describe. Default true: the held-out carts are the latest (current prices, campaigns, season), the
    /// last thing to leave out of a served model; the refit keeps the evaluated fit's learner, so the figures describe the
    /// same procedure on 80 % of the data.</summary>
    public bool Refit { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> whose ParamName is the bad option (<c>Tabular.X</c> for a
    /// classifier option).</summary>
    public void Validate()
    {
        if (Tabular is null) throw new ArgumentOutOfRangeException(nameof(Tabular), null, "Tabular must not be null.");
        try { Tabular.Validate(); }
        catch (ArgumentOutOfRangeException e)
        {
            // Why the cut: ArgumentOutOfRangeException.Message appends the parameter and value, which the new one adds again.
            var message = e.Message.Split(" (Parameter", 2)[0];
            throw new ArgumentOutOfRangeException($"{nameof(Tabular)}.{e.ParamName}", e.ActualValue, $"{nameof(Tabular)}.{message}");
        }
        Check.InRange(HeldOutShare, 0.05, 0.5, nameof(HeldOutShare));
        Check.Positive(MinCarts, nameof(MinCarts));
        Check.Positive(MinOrders, nameof(MinOrders));
        Check.Positive(MinAbandoned, nameof(MinAbandoned));
        Check.Positive(MinHeldOutPerClass, nameof(MinHeldOutPerClass));
    }
}

/// <summary>One scorer on the held-out (latest) carts.</summary>
/// <param name="Name">The intent model (<see cref="IntentTrainer.IntentModelName"/>) or a baseline.</param>
/// <param name="Metrics">ROC-AUC, PR-AUC, average precision, Brier, ECE, reliability table.</param>
public sealed record IntentEvaluation(string Name, BinaryEvaluation Metrics)
{
    /// <summary>Brier score of always predicting the held-out rate itself, the best constant (known only in hindsight).</summary>
    public double BaseRateBrier => Metrics.Count == 0 ? double.NaN
        : (double)Metrics.Positives / Metrics.Count * (1 - (double)Metrics.Positives / Metrics.Count);
}

/// <summary>What <see cref="IntentTrainer.Train"/> did.</summary>
/// <param name="Model">The model to serve; null with <paramref name="NotEnoughData"/>.</param>
/// <param name="NotEnoughData">"not enough data yet: ..." with the counts and what is needed, else null.</param>
/// <param name="Evaluation">The intent model's held-out figures (fitted on the earlier carts only); null without a model.</param>
/// <param name="Baselines">The baselines on the same held-out carts, trained on the same earlier carts: the earlier carts'
/// base rate, logistic regression on cart value alone, and reached checkout alone.</param>
/// <param name="BeatsBaselines">The model's held-out ROC-AUC is above every baseline's and its Brier below every baseline's.</param>
/// <param name="Carts">Examples handed in.</param>
/// <param name="Orders">Of them, carts that became orders.</param>
/// <param name="TrainingCarts">Carts before <paramref name="HeldOutFrom"/> (the evaluated fit's rows, validation included).</param>
/// <param name="TrainingOrders">Orders among them.</param>
/// <param name="HeldOutCarts">Carts at or after <paramref name="HeldOutFrom"/>.</param>
/// <param name="HeldOutOrders">Orders among them.</param>
/// <param name="TrainingUntil">The latest snapshot moment in the training part; null when nothing was split.</param>
/// <param name="HeldOutFrom">The split moment: every held-out snapshot is at or after it, every training one before it.</param>
/// <param name="EvaluatedInfo">Learner, trees, rows of the evaluated fit.</param>
/// <param name="Reason">What was trained and how it did, in words.</param>
public sealed record IntentTrainingResult(IntentModel? Model, string? NotEnoughData, IntentEvaluation? Evaluation,
    IReadOnlyList<IntentEvaluation> Baselines, bool BeatsBaselines, int Carts, int Orders, int TrainingCarts, int TrainingOrders,
    int HeldOutCarts, int HeldOutOrders, DateTime? TrainingUntil, DateTime? HeldOutFrom, TabularModelInfo? EvaluatedInfo, string Reason)
{
    /// <summary>The evaluated model's probabilities on the held-out carts, in time order (aligned with
    /// <see cref="HeldOutLabels"/> and <see cref="HeldOutAt"/>).</summary>
    public double[] HeldOutProbabilities { get; init; } = [];

    /// <summary>Whether each held-out cart became an order.</summary>
    public bool[] HeldOutLabels { get; init; } = [];

    /// <summary>Each held-out cart's snapshot moment.</summary>
    public DateTime[] HeldOutAt { get; init; } = [];

    /// <summary>A baseline's evaluation by name, or null.</summary>
    public IntentEvaluation? Baseline(string name) => Baselines.FirstOrDefault(e => e.Name == name);
}

/// <summary>Why a cart's score is what it is, in words a merchant understands.</summary>
/// <param name="Feature">Feature name (<see cref="IntentFeatures.Names"/>).</param>
/// <param name="Text">E.g. "returning customer with 4 orders".</param>
/// <param name="Contribution">The feature's contribution in log-odds toward an order (positive = raises the chance). For
/// LightGbm only its sign and rank mean something (not additive, see <see cref="TabularExplanation"/>).</param>
public sealed record IntentReason(string Feature, string Text, double Contribution);

/// <summary>A cart's purchase-intent score.</summary>
/// <param name="Probability">Calibrated P(the cart becomes an order).</param>
/// <param name="Reasons">The features that moved the score most, largest absolute contribution first, one per fact.</param>
public sealed record IntentScore(double Probability, IReadOnlyList<IntentReason> Reasons);
