using PluginApp.Ml.Common;

namespace PluginApp.Ml.Tabular;

/// <summary>Which ML.NET learner a <see cref="TabularTrainer"/> fits.</summary>
public enum TabularLearner
{
    /// <summary>ML.NET's LightGbm binary trainer (gradient-boosted trees). The default.</summary>
    LightGbm = 0,
    /// <summary>ML.NET's L-BFGS logistic regression on standardized features.</summary>
    LogisticRegression = 1,
    /// <summary>Logistic regression when the training rows or positives are below
    /// <see cref="TabularOptions.AutoMinRows"/> / <see cref="TabularOptions.AutoMinPositives"/>, LightGbm otherwise.</summary>
    Auto = 2,
}

/// <summary>How the learner's score becomes a probability.</summary>
public enum TabularCalibrator
{
    /// <summary>ML.NET's Platt calibrator (a sigmoid of the score, two parameters). The default.</summary>
    Platt = 0,
    /// <summary>ML.NET's isotonic calibrator (pool adjacent violators); needs a few hundred held-out rows to be stable.</summary>
    Isotonic = 1,
    /// <summary>The learner's own link: sigmoid of the score for both learners.</summary>
    None = 2,
}

/// <summary>
/// Hyperparameters of <see cref="TabularTrainer"/>. Every default lives here; the trainer's constructor validates them and
/// throws <see cref="ArgumentOutOfRangeException"/> whose <c>ParamName</c> is the option.
/// </summary>
public sealed record TabularOptions
{
    /// <summary>Learner; default LightGbm.</summary>
    public TabularLearner Learner { get; init; } = TabularLearner.LightGbm;

    /// <summary>For <see cref="TabularLearner.Auto"/>: fewer training rows than this (after the validation split) picks
    /// logistic regression. Default 2,000: below it a 10 % validation split holds too few rows for early stopping to be
    /// more than noise, and 31 leaves of 20 rows cover a large share of the data.</summary>
    public int AutoMinRows { get; init; } = 2_000;

    /// <summary>For <see cref="TabularLearner.Auto"/>: fewer training positives than this picks logistic regression.
    /// Default 200, from the fraud learning curve (<c>scripts/bench/ml.sh curve</c>, README): with default options
    /// logistic regression was as good or better up to ~90 positives, LightGbm overtook it on average precision at ~180
    /// and on both ROC-AUC and average precision at ~360.</summary>
    public int AutoMinPositives { get; init; } = 200;

    /// <summary>LightGbm: maximum leaves per tree (leaf-wise growth). Default 31 (LightGBM's own default).</summary>
    public int NumberOfLeaves { get; init; } = 31;

    /// <summary>LightGbm: maximum depth; 0 = limited by <see cref="NumberOfLeaves"/> only. Default 0.</summary>
    public int MaxDepth { get; init; }

    /// <summary>LightGbm: shrinkage per tree. Default 0.05.</summary>
    public double LearningRate { get; init; } = 0.05;

    /// <summary>LightGbm: maximum boosting iterations (trees); early stopping usually keeps fewer. Default 500.</summary>
    public int Iterations { get; init; } = 500;

    /// <summary>LightGbm: minimum training rows in a leaf (min_data_in_leaf). Default 20.</summary>
    public int MinExamplesPerLeaf { get; init; } = 20;

    /// <summary>LightGbm: minimum sum of hessians in a leaf (min_sum_hessian_in_leaf, XGBoost's min_child_weight).
    /// Default 1e-3 (LightGBM's own default; ML.NET's wrapper would otherwise use 0.1).</summary>
    public double MinChildWeight { get; init; } = 1e-3;

    /// <summary>LightGbm: L2 penalty on leaf values (lambda_l2). Default 1 (XGBoost's default).</summary>
    public double L2 { get; init; } = 1.0;

    /// <summary>LightGbm: stop after this many iterations without a better validation log loss (ML.NET's
    /// <c>EvaluationMetric = Logloss</c>, LightGBM's binary_logloss), keeping the best iteration; 0 = no early stopping.
    /// Default 50.</summary>
    public int EarlyStoppingRounds { get; init; } = 50;

    /// <summary>Share of training rows (stratified, seeded) held out when the caller gives no validation rows. They drive
    /// LightGbm's early stopping and are the rows the calibrator is fitted on; 0 = fit everything on the training rows
    /// (no early stopping, calibrator fitted in-sample). Default 0.1.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Logistic regression: L2 weight on the summed (not averaged) log loss, L1 is 0. Default 1
    /// (scikit-learn's C = 1). ML.NET's own default adds L1 = 1 as well, which we do not want for reasons.</summary>
    public double LogisticL2 { get; init; } = 1.0;

    /// <summary>Weight multiplied onto positive rows in training, for imbalanced data (e.g. negatives / positives).
    /// The calibrator is fitted unweighted, so with <see cref="TabularCalibrator.Platt"/> or
    /// <see cref="TabularCalibrator.Isotonic"/> the probabilities come back to the observed rate. Default 1.</summary>
    public double PositiveWeight { get; init; } = 1.0;

    /// <summary>Calibrator fitted on the held-out rows; default Platt.</summary>
    public TabularCalibrator Calibrator { get; init; } = TabularCalibrator.Platt;

    /// <summary>Most frequent values kept per categorical feature (the rest score like an unseen value: all one-hot
    /// slots 0). Default 100.</summary>
    public int MaxCategoriesPerFeature { get; init; } = 100;

    /// <summary>Seed of the validation split, ML.NET's context and LightGBM. Default 42.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Training threads for LightGbm and L-BFGS; 0 = LightGbm chooses (all cores) and L-BFGS takes one. LightGbm runs
    /// with <c>Deterministic = true</c>, so its result does not depend on this; L-BFGS's does, hence one. Default 0.</summary>
    public int Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad option.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Learner)) throw new ArgumentOutOfRangeException(nameof(Learner), Learner, "Learner must be LightGbm, LogisticRegression or Auto.");
        Check.NonNegative(AutoMinRows, nameof(AutoMinRows));
        Check.NonNegative(AutoMinPositives, nameof(AutoMinPositives));
        Check.InRange(NumberOfLeaves, 2, 131_072, nameof(NumberOfLeaves));
        Check.InRange(MaxDepth, 0, 64, nameof(MaxDepth));
        Check.InRange(LearningRate, double.Epsilon, 1, nameof(LearningRate));
        Check.InRange(Iterations, 1, 100_000, nameof(Iterations));
        Check.Positive(MinExamplesPerLeaf, nameof(MinExamplesPerLeaf));
        Check.NonNegative(MinChildWeight, nameof(MinChildWeight));
        Check.NonNegative(L2, nameof(L2));
        Check.NonNegative(EarlyStoppingRounds, nameof(EarlyStoppingRounds));
        Check.InRange(ValidationFraction, 0, 0.5, nameof(ValidationFraction));
        Check.NonNegative(LogisticL2, nameof(LogisticL2));
        Check.Positive(PositiveWeight, nameof(PositiveWeight));
        if (!Enum.IsDefined(Calibrator)) throw new ArgumentOutOfRangeException(nameof(Calibrator), Calibrator, "Calibrator must be Platt, Isotonic or None.");
        Check.InRange(MaxCategoriesPerFeature, 1, 10_000, nameof(MaxCategoriesPerFeature));
        Check.NonNegative(Threads, nameof(Threads));
    }
}
