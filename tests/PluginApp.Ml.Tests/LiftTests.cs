using PluginApp.Ml.Metrics;

namespace PluginApp.Ml.Tests;

public class LiftTests
{
    [Fact]
    public void Conversion_TwiceTheRate_MatchesTheLogRatioInterval()
    {
        // 20/100 against 10/100: lift 1; se of the log ratio = sqrt(0.8/20 + 0.9/10) = sqrt(0.13).
        var sut = Lift.Conversion(20, 100, 10, 100)!;

        Assert.Equal(1.0, sut.Lift, 12);
        Assert.Equal(2 * Math.Exp(-1.959963984540054 * Math.Sqrt(0.13)) - 1, sut.Low, 12);
        Assert.Equal(2 * Math.Exp(1.959963984540054 * Math.Sqrt(0.13)) - 1, sut.High, 12);
        Assert.False(sut.Significant); // -1.3% to +305%: not enough to say
    }

    [Fact]
    public void Conversion_LargeArms_IntervalExcludesZero()
    {
        var sut = Lift.Conversion(1200, 10000, 1000, 10000)!;

        Assert.Equal(0.2, sut.Lift, 12);
        Assert.True(sut.Low > 0.1 && sut.High < 0.31);
        Assert.True(sut.Significant);
    }

    [Theory]
    [InlineData(0, 100, 10, 100)]
    [InlineData(10, 100, 0, 100)]
    [InlineData(10, 0, 10, 100)]
    public void Conversion_AnArmWithNothing_IsNull(long ct, long nt, long cc, long nc) => Assert.Null(Lift.Conversion(ct, nt, cc, nc));

    [Fact]
    public void Mean_RevenuePerVisitor_UsesEachArmsVariance()
    {
        // Treatment: 50 visitors spend 10, 50 spend 0 (mean 5, variance 2500/99); control: 50 spend 8, 50 spend 0 (mean 4, variance 1600/99).
        var t = new MeanSummary(100, 500, 5000);
        var c = new MeanSummary(100, 400, 3200);

        var sut = Lift.Mean(t, c)!;

        var se = Math.Sqrt(2500.0 / 99 / (100 * 25) + 1600.0 / 99 / (100 * 16));
        Assert.Equal(0.25, sut.Lift, 12);
        Assert.Equal(1.25 * Math.Exp(-1.959963984540054 * se) - 1, sut.Low, 12);
        Assert.Equal(1.25 * Math.Exp(1.959963984540054 * se) - 1, sut.High, 12);
        Assert.Equal(5, sut.Treatment, 12);
    }

    [Fact]
    public void Mean_ControlWithNoRevenue_IsNull() => Assert.Null(Lift.Mean(new MeanSummary(10, 50, 500), new MeanSummary(10, 0, 0)));
}
