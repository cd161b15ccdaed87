namespace PluginApp.Ml.Metrics;

/// <summary>A treatment arm against a control arm: both values, the relative lift and its 95% confidence interval.</summary>
/// <param name="Lift">Treatment / Control − 1 (0.12 is +12%).</param>
/// <param name="Low">Lower end of the 95% interval of the lift.</param>
/// <param name="High">Upper end of the 95% interval of the lift.</param>
public sealed record LiftEstimate(double Treatment, double Control, double Lift, double Low, double High)
{
    /// <summary>Whether the interval excludes "no difference".</summary>
    public bool Significant => Low > 0 || High < 0;
}

/// <summary>Count, sum and sum of squares of a per-shopper value (zeros included), enough for a mean and its variance.</summary>
public readonly record struct MeanSummary(long Count, double Sum, double SumOfSquares)
{
    public double Mean => Count == 0 ? double.NaN : Sum / Count;

    /// <summary>Sample variance (n − 1).</summary>
    public double Variance => Count < 2 ? double.NaN : Math.Max(0, (SumOfSquares - Sum * Sum / Count) / (Count - 1));
}

/// <summary>
/// Relative lift between two arms with a 95% interval from the log of the ratio and its delta-method standard error:
/// for proportions Katz, Baptista, Azen and Pike (1978), "Obtaining confidence intervals for the risk ratio in cohort
/// studies"; for means the same construction with each arm's sample variance. Null when an arm has nothing to compare.
/// </summary>
public static class Lift
{
    private const double Z95 = 1.959963984540054;

    /// <summary>Conversion: the share of shoppers with at least one order in each arm.</summary>
    public static LiftEstimate? Conversion(long convertedTreatment, long shoppersTreatment, long convertedControl, long shoppersControl)
    {
        if (shoppersTreatment <= 0 || shoppersControl <= 0 || convertedTreatment <= 0 || convertedControl <= 0) return null;
        if (convertedTreatment > shoppersTreatment || convertedControl > shoppersControl)
            throw new ArgumentException("an arm has more converted shoppers than shoppers");
        double t = (double)convertedTreatment / shoppersTreatment, c = (double)convertedControl / shoppersControl;
        var se = Math.Sqrt((1 - t) / convertedTreatment + (1 - c) / convertedControl);
        return Ratio(t, c, se);
    }

    /// <summary>A mean per shopper, e.g. revenue per visitor.</summary>
    public static LiftEstimate? Mean(MeanSummary treatment, MeanSummary control)
    {
        if (treatment.Count < 2 || control.Count < 2 || treatment.Mean <= 0 || control.Mean <= 0) return null;
        var se = Math.Sqrt(treatment.Variance / (treatment.Count * treatment.Mean * treatment.Mean)
                           + control.Variance / (control.Count * control.Mean * control.Mean));
        return Ratio(treatment.Mean, control.Mean, se);
    }

    private static LiftEstimate Ratio(double treatment, double control, double logSe)
    {
        var log = Math.Log(treatment / control);
        return new LiftEstimate(treatment, control, Math.Exp(log) - 1, Math.Exp(log - Z95 * logSe) - 1, Math.Exp(log + Z95 * logSe) - 1);
    }
}
