using PluginApp.Ml.Common;

namespace PluginApp.Ml.Experiments;

/// <summary>Options of <see cref="ExperimentAnalysis.Compare"/>; all defaults here. <see cref="Validate"/> names the bad option.</summary>
public sealed record ExperimentAnalysisOptions
{
    /// <summary>
    /// 1 − confidence of every interval (0.05: 95 % intervals). With k treatment arms each compared to one control, pass
    /// 0.05 / k (Bonferroni) if the merchant reads all k verdicts as one family.
    /// </summary>
    public double Alpha { get; init; } = 0.05;

    /// <summary>
    /// τ² of the normal mixture behind the sequential intervals, in units of the per-unit outcome variance σ² (pooled
    /// within arms, before CUPED): τ² = MixingVariance · σ². Default 0.0025, i.e. τ = 0.05 σ.
    /// <para>Why 0.05 σ. The mixture is a prior over the true difference (Johari, Pekelis, Walsh): the test is most
    /// powerful for differences of about τ. In standard-error units the sequential half-width is
    /// SE · √((1 + 1/ρ)(2 ln(1/α) + ln(1 + ρ))) with ρ = τ² / SE², smallest (1.55× the fixed 1.96 SE at α = 0.05) at
    /// ρ ≈ 8; and a fixed-horizon test planned with 80 % power for a difference δ stops where SE² = δ² / 7.85. So τ = δ
    /// makes the interval tightest exactly where a classical test for δ would end. 0.05 σ is the difference merchants'
    /// experiments can hope to show: about a 5 % lift of margin per cart (coefficient of variation ≈ 1), a 20 % lift of
    /// a 5 % conversion rate, a 25-50 % lift of revenue per visitor (CV 5-10); smaller effects need more traffic than
    /// most stores have. With balanced arms SE² ≈ 2σ²/n, so the design point is n ≈ 6,400 units per arm; the interval
    /// stays within 2× the fixed one from ~650 to ~10 million units per arm and is 3.8× at 100. Tune it from the
    /// app's past experiments (the spread of their observed effects) once there are some.</para>
    /// </summary>
    public double MixingVariance { get; init; } = 0.0025;

    /// <summary>Whether to apply CUPED when the covariate has variance and it lowers the variance of the difference.</summary>
    public bool UseCuped { get; init; } = true;

    /// <summary>Units each arm needs before <see cref="ExperimentAnalysis.Outcome"/> calls anything but "not enough data".
    /// Why 100: below it the normal approximation of a skewed or rare outcome is poor (and the sequential interval is
    /// about 4× the fixed one anyway).</summary>
    public int MinUnitsPerArm { get; init; } = 100;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> whose ParamName is the option.</summary>
    public void Validate()
    {
        if (!(Alpha > 0 && Alpha < 0.5)) throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "Alpha must be in (0, 0.5).");
        Check.Positive(MixingVariance, nameof(MixingVariance));
        if (MinUnitsPerArm < 2) throw new ArgumentOutOfRangeException(nameof(MinUnitsPerArm), MinUnitsPerArm, "MinUnitsPerArm must be >= 2.");
    }
}

/// <summary>A two-sided interval. NaN ends when there is not enough data to compute it.</summary>
public readonly record struct ConfidenceInterval(double Low, double High)
{
    /// <summary>Whether the interval excludes 0 ("a difference shown").</summary>
    public bool ExcludesZero => Low > 0 || High < 0;

    /// <summary>Whether <paramref name="value"/> lies in the closed interval.</summary>
    public bool Contains(double value) => value >= Low && value <= High;

    /// <summary>High − Low.</summary>
    public double Width => High - Low;
}

/// <summary>
/// Treatment against control (<see cref="ExperimentAnalysis.Compare"/>). Point estimates and intervals are CUPED-adjusted
/// when <see cref="CupedUsed"/>; the raw means are always reported too. The merchant-facing call is the
/// <b>sequential</b> interval: only it stays valid when the result is looked at every day.
/// </summary>
public sealed record ExperimentComparison
{
    /// <summary>Units in the control arm.</summary>
    public required long ControlUnits { get; init; }

    /// <summary>Units in the treatment arm.</summary>
    public required long TreatmentUnits { get; init; }

    /// <summary>Raw mean outcome of the control arm.</summary>
    public required double ControlMean { get; init; }

    /// <summary>Raw mean outcome of the treatment arm.</summary>
    public required double TreatmentMean { get; init; }

    /// <summary>Control mean of Y − θ(X − X̄) (X̄ over both arms); the raw mean when CUPED is not used.</summary>
    public required double AdjustedControlMean { get; init; }

    /// <summary>Treatment mean of Y − θ(X − X̄); the raw mean when CUPED is not used.</summary>
    public required double AdjustedTreatmentMean { get; init; }

    /// <summary>Treatment − control (adjusted means).</summary>
    public required double Difference { get; init; }

    /// <summary>Difference / adjusted control mean (0.041 is +4.1 %); NaN when that mean is not &gt; 0.</summary>
    public required double RelativeLift { get; init; }

    /// <summary>Standard error of <see cref="Difference"/> (Welch: each arm's own variance).</summary>
    public required double StandardError { get; init; }

    /// <summary>Linear delta-method standard error of <see cref="RelativeLift"/>, for reference: the relative intervals
    /// are Fieller's, not RelativeLift ± z·SE (see <see cref="ExperimentAnalysis.Compare"/> for why).</summary>
    public required double RelativeStandardError { get; init; }

    /// <summary>Fixed-horizon interval on the difference: valid only if looked at once, at a sample size fixed in advance.</summary>
    public required ConfidenceInterval FixedDifference { get; init; }

    /// <summary>Fixed-horizon interval on the relative lift (Fieller); NaN when unbounded or undefined.</summary>
    public required ConfidenceInterval FixedRelative { get; init; }

    /// <summary>Always-valid interval on the difference (normal-mixture confidence sequence): valid at every look.</summary>
    public required ConfidenceInterval SequentialDifference { get; init; }

    /// <summary>Always-valid interval on the relative lift (Fieller with the mixture boundary); excludes 0 exactly when
    /// <see cref="SequentialDifference"/> does; NaN when unbounded (control mean not clearly above 0) or undefined.</summary>
    public required ConfidenceInterval SequentialRelative { get; init; }

    /// <summary>Whether the estimates above are CUPED-adjusted.</summary>
    public required bool CupedUsed { get; init; }

    /// <summary>θ = pooled within-arm cov(Y, X) / var(X), reported even when CUPED was not used; 0 when X has no variance.</summary>
    public required double CupedTheta { get; init; }

    /// <summary>1 − Var(CUPED difference) / Var(raw difference) with <see cref="CupedTheta"/>; reported even when CUPED
    /// was not used (≤ 0 then means it would not have helped); 0 when X has no variance. ≈ corr(X, Y)².</summary>
    public required double VarianceReduction { get; init; }

    /// <summary>τ² actually used, in squared outcome units (<see cref="ExperimentAnalysisOptions.MixingVariance"/> · σ²).</summary>
    public required double MixingVariance { get; init; }

    /// <summary>Options the comparison was made with.</summary>
    public required ExperimentAnalysisOptions Options { get; init; }
}

/// <summary>What an experiment shows so far, read from the sequential interval.</summary>
public enum ExperimentOutcome
{
    /// <summary>An arm below <see cref="ExperimentAnalysisOptions.MinUnitsPerArm"/>, or no variation in the outcome yet.</summary>
    NotEnoughData = 0,
    /// <summary>The sequential interval on the difference lies above 0.</summary>
    TreatmentBetter = 1,
    /// <summary>The sequential interval on the difference lies below 0.</summary>
    TreatmentWorse = 2,
    /// <summary>The sequential interval on the difference contains 0.</summary>
    NoDifferenceYet = 3,
}

/// <summary>
/// Words for <see cref="ExperimentAnalysis.Verdict"/>: "{TreatmentArm} arm {Verb} 4.1% {More} {Metric}, 95% interval
/// 1.2% to 7.0%", e.g. ("offer", "control", "margin per cart", "carts") -> "offer arm earns 4.1% more margin per cart";
/// for conversion ("offer", "control", "share of visitors who ordered", "visitors", Verb: "has a", More: "higher", Less: "lower").
/// </summary>
/// <param name="TreatmentArm">Name of the treatment arm ("offer").</param>
/// <param name="ControlArm">Name of the control arm ("control", "holdout").</param>
/// <param name="Metric">The outcome per unit ("margin per cart").</param>
/// <param name="Units">The unit, plural ("carts", "visitors").</param>
public sealed record VerdictWording(string TreatmentArm, string ControlArm, string Metric, string Units)
{
    /// <summary>Verb between the arm and the amount.</summary>
    public string Verb { get; init; } = "earns";

    /// <summary>Word for a positive difference.</summary>
    public string More { get; init; } = "more";

    /// <summary>Word for a negative difference.</summary>
    public string Less { get; init; } = "less";

    /// <summary>The metric is a share (of visitors who ordered): its difference is told in percentage points.</summary>
    public bool Share { get; init; }
}
