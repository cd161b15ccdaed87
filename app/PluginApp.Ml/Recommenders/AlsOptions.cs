using PluginApp.Ml.Common;

namespace PluginApp.Ml.Recommenders;

/// <summary>How each row's regularized least-squares system is solved.</summary>
public enum AlsSolver
{
    /// <summary>A few conjugate-gradient steps warm-started from the previous factors (Takacs et al. 2011); O(nnz k) per row.</summary>
    ConjugateGradient,
    /// <summary>Exact solve by Cholesky; O(nnz k^2 + k^3) per row.</summary>
    Cholesky,
}

/// <summary>Hyperparameters of <see cref="AlsTrainer"/>. Every default lives here.</summary>
public sealed record AlsOptions
{
    /// <summary>Latent dimension k.</summary>
    public int Factors { get; init; } = 64;

    /// <summary>L2 penalty lambda on every user and item vector.</summary>
    public double Regularization { get; init; } = 0.05;

    /// <summary>Confidence slope: an observed weight r gets confidence 1 + Alpha * r.</summary>
    public double Alpha { get; init; } = 10.0;

    /// <summary>Full sweeps (users then items).</summary>
    public int Iterations { get; init; } = 15;

    /// <summary>Row solver.</summary>
    public AlsSolver Solver { get; init; } = AlsSolver.ConjugateGradient;

    /// <summary>Conjugate-gradient steps per row and sweep (ignored by Cholesky).</summary>
    public int ConjugateGradientSteps { get; init; } = 3;

    /// <summary>Standard deviation of the initial factors, divided by sqrt(Factors).</summary>
    public double InitScale { get; init; } = 0.1;

    /// <summary>Seed of the initial factors; the result is a function of the seed alone.</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Worker threads; 0 means Environment.ProcessorCount. Rows are solved independently, so the
    /// result does not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad option.</summary>
    public void Validate()
    {
        Check.InRange(Factors, 1, 1024, nameof(Factors));
        Check.NonNegative(Regularization, nameof(Regularization));
        Check.NonNegative(Alpha, nameof(Alpha));
        Check.InRange(Iterations, 1, 10_000, nameof(Iterations));
        Check.InRange(ConjugateGradientSteps, 1, 1024, nameof(ConjugateGradientSteps));
        Check.Positive(InitScale, nameof(InitScale));
        Check.NonNegative(Threads, nameof(Threads));
        if (!Enum.IsDefined(Solver)) throw new ArgumentOutOfRangeException(nameof(Solver), Solver, "Unknown solver.");
    }
}
