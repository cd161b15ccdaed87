using PluginApp.Ml.Common;

namespace PluginApp.Ml.Linear;

/// <summary>Hyperparameters of <see cref="LogisticRegressionTrainer"/>. Every default lives here.</summary>
public sealed record LogisticRegressionOptions
{
    /// <summary>Penalty 0.5 * L2 * |w|^2 added to the summed log loss (the intercept is not penalized).
    /// L2 = 1 matches scikit-learn's default C = 1.</summary>
    public double L2 { get; init; } = 1.0;

    /// <summary>Maximum Newton iterations.</summary>
    public int MaxIterations { get; init; } = 50;

    /// <summary>Stop when the relative decrease of the objective falls below this.</summary>
    public double Tolerance { get; init; } = 1e-10;

    /// <summary>Weight of positive rows in the loss.</summary>
    public double PositiveWeight { get; init; } = 1.0;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad option.</summary>
    public void Validate()
    {
        Check.NonNegative(L2, nameof(L2));
        Check.InRange(MaxIterations, 1, 10_000, nameof(MaxIterations));
        Check.Positive(Tolerance, nameof(Tolerance));
        Check.Positive(PositiveWeight, nameof(PositiveWeight));
    }
}
