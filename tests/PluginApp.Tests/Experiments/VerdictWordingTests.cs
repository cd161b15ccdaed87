using PluginApp.Experiments;
using PluginApp.Ml.Experiments;

namespace PluginApp.Tests.Experiments;

/// <summary>What the experiments page says an arm's lift is of, in the merchant's words.</summary>
public sealed class VerdictWordingTests
{
    private static ArmSample Arm(long n, double share) => new(n, n * share, n * share); // 0/1 outcomes: sum of squares = sum

    /// <summary>
    /// Conversion counts a visitor once whatever she ordered, so its lift is of the share of visitors who ordered. Until 6 Dec
    /// 2026 it read "more orders per visitor", which a visitor's second order does not move.
    /// </summary>
    [Fact]
    public void ConversionLift_IsWordedAsTheShareOfVisitorsWhoOrdered()
    {
        var up = ExperimentAnalysis.Verdict(ExperimentAnalysis.Compare(Arm(20_000, 0.05), Arm(20_000, 0.06)), ExperimentResults.Wording("conversion", "policy", "control"));
        var down = ExperimentAnalysis.Verdict(ExperimentAnalysis.Compare(Arm(20_000, 0.06), Arm(20_000, 0.05)), ExperimentResults.Wording("conversion", "policy", "control"));

        Assert.StartsWith("policy arm has a 20.0% higher share of visitors who ordered, 95% interval ", up);
        Assert.StartsWith("policy arm has a 16.7% lower share of visitors who ordered, 95% interval ", down);
    }
}
