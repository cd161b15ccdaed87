using PluginApp.Ml.Common;

namespace PluginApp.Ml.Trees;

/// <summary>Hyperparameters of <see cref="GbdtTrainer"/>. Every default lives here.</summary>
public sealed record GbdtOptions
{
    /// <summary>Maximum number of trees (boosting rounds).</summary>
    public int Rounds { get; init; } = 300;

    /// <summary>Shrinkage applied to every leaf value.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Maximum depth of a tree (root has depth 0).</summary>
    public int MaxDepth { get; init; } = 6;

    /// <summary>Maximum leaves per tree; growth is best-first. 0 = limited by <see cref="MaxDepth"/> only.</summary>
    public int MaxLeaves { get; init; } = 31;

    /// <summary>Histogram bins per feature, excluding the separate bin for missing values (NaN).</summary>
    public int MaxBins { get; init; } = 255;

    /// <summary>Minimum training rows in a leaf.</summary>
    public int MinLeafSize { get; init; } = 20;

    /// <summary>Minimum sum of hessians in a leaf (XGBoost's min_child_weight).</summary>
    public double MinChildWeight { get; init; } = 1e-3;

    /// <summary>L2 penalty on leaf values (XGBoost's lambda).</summary>
    public double L2 { get; init; } = 1.0;

    /// <summary>Minimum loss reduction to split (XGBoost's gamma).</summary>
    public double MinSplitGain { get; init; }

    /// <summary>Fraction of rows drawn (without replacement, Bernoulli) for each tree.</summary>
    public double RowSubsample { get; init; } = 1.0;

    /// <summary>Fraction of features (at least one, drawn per tree) that splits may use (XGBoost's colsample_bytree).</summary>
    public double ColumnSubsample { get; init; } = 1.0;

    /// <summary>Weight of positive rows in the loss; use n_negative / n_positive to balance classes.</summary>
    public double PositiveWeight { get; init; } = 1.0;

    /// <summary>Share of training rows held out (stratified) for early stopping when no validation set is given;
    /// 0 trains all <see cref="Rounds"/> on everything.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Stop after this many rounds without a better validation log loss; the best round is kept.</summary>
    public int EarlyStoppingRounds { get; init; } = 30;

    /// <summary>Seed for the validation split and row subsampling.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Worker threads; 0 means Environment.ProcessorCount. Results do not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad option.</summary>
    public void Validate()
    {
        Check.InRange(Rounds, 1, 100_000, nameof(Rounds));
        Check.Positive(LearningRate, nameof(LearningRate));
        Check.InRange(MaxDepth, 1, 30, nameof(MaxDepth));
        Check.NonNegative(MaxLeaves, nameof(MaxLeaves));
        if (MaxLeaves == 1) throw new ArgumentOutOfRangeException(nameof(MaxLeaves), MaxLeaves, "MaxLeaves must be 0 or >= 2.");
        Check.InRange(MaxBins, 2, 255, nameof(MaxBins));
        Check.Positive(MinLeafSize, nameof(MinLeafSize));
        Check.NonNegative(MinChildWeight, nameof(MinChildWeight));
        Check.NonNegative(L2, nameof(L2));
        Check.NonNegative(MinSplitGain, nameof(MinSplitGain));
        if (!(RowSubsample > 0 && RowSubsample <= 1)) throw new ArgumentOutOfRangeException(nameof(RowSubsample), RowSubsample, "RowSubsample must be in (0, 1].");
        if (!(ColumnSubsample > 0 && ColumnSubsample <= 1)) throw new ArgumentOutOfRangeException(nameof(ColumnSubsample), ColumnSubsample, "ColumnSubsample must be in (0, 1].");
        Check.Positive(PositiveWeight, nameof(PositiveWeight));
        if (!(ValidationFraction >= 0 && ValidationFraction < 1)) throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "ValidationFraction must be in [0, 1).");
        Check.Positive(EarlyStoppingRounds, nameof(EarlyStoppingRounds));
        Check.NonNegative(Threads, nameof(Threads));
    }
}
