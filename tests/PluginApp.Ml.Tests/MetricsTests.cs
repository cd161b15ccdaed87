using PluginApp.Ml.Metrics;

namespace PluginApp.Ml.Tests;

public class MetricsTests
{
    [Fact]
    public void RocAuc_NoTies_MatchesHandComputed()
    {
        Assert.Equal(0.75, BinaryMetrics.RocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 12);
    }

    [Fact]
    public void RocAuc_TiedPositiveAndNegative_CountsHalf()
    {
        // Pairs: (0.5+ vs 0.2-) 1, (0.5+ vs 0.5-) 0.5, (0.7+ vs both) 2 -> 3.5 / 4.
        Assert.Equal(0.875, BinaryMetrics.RocAuc([0.2, 0.5, 0.5, 0.7], [false, true, false, true]), 12);
    }

    [Fact]
    public void RocAuc_SingleClass_IsNaN()
    {
        Assert.True(double.IsNaN(BinaryMetrics.RocAuc([0.2, 0.5], [true, true])));
        Assert.True(double.IsNaN(BinaryMetrics.PrAuc([0.2, 0.5], [false, false])));
    }

    [Fact]
    public async Task AveragePrecision_WithANaNScore_SaysSoInsteadOfNeverReturning()
    {
        var run = Task.Run(() => BinaryMetrics.AveragePrecision([0.2, double.NaN, 0.7], [false, true, true]));
        Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(10))) == run, "AveragePrecision did not return within 10 s");
        var e = await Assert.ThrowsAsync<ArgumentException>(() => run);
        Assert.Equal("1 of 3 scores are not finite numbers (the first at row 1); a ranking metric cannot place them.", e.Message);
    }

    [Fact]
    public void PrAuc_AllScoresTied_IsOptimisticUnlikeAveragePrecision()
    {
        double[] p = [0.5, 0.5, 0.5, 0.5];
        bool[] y = [true, false, false, false];

        // Why: documents ML.NET's tie handling (measured), the reason AveragePrecision is kept next to it.
        Assert.Equal(1.0, BinaryMetrics.PrAuc(p, y), 12);
        Assert.Equal(0.25, BinaryMetrics.AveragePrecision(p, y), 12);
    }

    [Fact]
    public void PrAuc_ContinuousScores_CloseToAveragePrecision()
    {
        var rng = new PluginApp.Ml.Common.SplitMix64(3);
        var y = Enumerable.Range(0, 4000).Select(_ => rng.NextDouble() < 0.1).ToArray();
        var p = y.Select(l => Math.Clamp(rng.NextGaussian() * 0.15 + (l ? 0.55 : 0.4), 0.001, 0.999)).ToArray();

        Assert.InRange(BinaryMetrics.PrAuc(p, y) - BinaryMetrics.AveragePrecision(p, y), -0.01, 0.01);
    }

    [Fact]
    public void AveragePrecision_SmallCase_MatchesHandComputed()
    {
        // Thresholds 0.8 (R .5, P 1), 0.4 (R .5), 0.35 (R 1, P 2/3): 0.5 + 0.5 * 2/3.
        Assert.Equal(0.5 + 1.0 / 3, BinaryMetrics.AveragePrecision([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 12);
    }

    [Fact]
    public void LogLossAndBrier_SmallCase_MatchHandComputedInNats()
    {
        double[] p = [0.9, 0.2];
        bool[] y = [true, false];

        // Why: ML.NET reports bits; 1e-6 covers its float32 probability column.
        Assert.Equal(-(Math.Log(0.9) + Math.Log(0.8)) / 2, BinaryMetrics.LogLoss(p, y), 6);
        Assert.Equal((0.01 + 0.04) / 2, BinaryMetrics.Brier(p, y), 12);
    }

    [Fact]
    public void LogLoss_CertainAndWrong_ClippedNotInfinite()
    {
        var sut = BinaryMetrics.LogLoss([0.0, 1.0], [true, false]);

        // Why: -ln(1e-7) = 16.1; the float32 column rounds 1 - 1e-7 to 1 - 1.19e-7, so the mean lands a little lower.
        Assert.InRange(sut, 15.5, 16.2);
    }

    [Fact]
    public void Calibration_TwoBins_MatchesHandComputed()
    {
        // Bin [0, .5): p .1, .3 -> mean .2, rate .5; bin [.5, 1]: p .6, .8, 1 -> mean .8, rate 2/3.
        double[] p = [0.1, 0.3, 0.6, 0.8, 1.0];
        bool[] y = [true, false, true, false, true];

        var (ece, table) = BinaryMetrics.Calibration(p, y, bins: 2);

        Assert.Equal(2.0 / 5 * 0.3 + 3.0 / 5 * Math.Abs(0.8 - 2.0 / 3), ece, 12);
        Assert.Equal(2, table[0].Count);
        Assert.Equal(0.2, table[0].MeanPredicted, 12);
        Assert.Equal(2.0 / 3, table[1].ObservedRate, 12);
        Assert.Equal((0.5, 1.0), (table[1].Lower, table[1].Upper));
    }

    [Fact]
    public void Calibration_EmptyBin_ReportsNaNAndSkipsIt()
    {
        var (ece, table) = BinaryMetrics.Calibration([0.05, 0.95], [false, true], bins: 10);

        Assert.Equal(0.05, ece, 12);
        Assert.True(double.IsNaN(table[5].MeanPredicted));
        Assert.Equal(0, table[5].Count);
    }

    [Fact]
    public void Evaluate_PerfectRanking_AllFieldsFilled()
    {
        var sut = BinaryMetrics.Evaluate([0.1, 0.2, 0.8, 0.9], [false, false, true, true]);

        Assert.Equal((4, 2), (sut.Count, sut.Positives));
        Assert.Equal(1.0, sut.RocAuc, 12);
        Assert.Equal(1.0, sut.AveragePrecision, 12);
        Assert.Equal((0.01 + 0.04 + 0.04 + 0.01) / 4, sut.Brier, 12);
        Assert.Equal(10, sut.Reliability.Count);
    }

    [Fact]
    public void PrecisionRecallAt_Threshold_MatchesHandComputed()
    {
        var (precision, recall) = BinaryMetrics.PrecisionRecallAt([0.9, 0.6, 0.4, 0.7], [true, false, true, true], 0.6);

        Assert.Equal(2.0 / 3, precision, 12);
        Assert.Equal(2.0 / 3, recall, 12);
    }

    [Fact]
    public void RankingMetrics_SmallList_MatchHandComputed()
    {
        int[] ranked = [1, 2, 3];
        var relevant = new HashSet<int> { 2, 3 };

        Assert.Equal((1 / Math.Log2(3) + 0.5) / (1 + 1 / Math.Log2(3)), RankingMetrics.Ndcg(ranked, relevant, 3), 12);
        Assert.Equal(1.0 / Math.Log2(3) / (1 + 1 / Math.Log2(3)), RankingMetrics.Ndcg(ranked, relevant, 2), 12);
        Assert.Equal(1.0, RankingMetrics.HitRate(ranked, relevant, 2));
        Assert.Equal(0.0, RankingMetrics.HitRate(ranked, relevant, 1));
        Assert.Equal(0.5, RankingMetrics.Recall(ranked, relevant, 2));
        Assert.Equal(0.5, RankingMetrics.Precision(ranked, relevant, 2));
        Assert.Equal(1.0, RankingMetrics.Recall(ranked, relevant, 3));
    }

    [Fact]
    public void CatalogCoverage_TwoLists_CountsDistinctItems()
    {
        Assert.Equal(0.3, RankingMetrics.CatalogCoverage([[1, 2], [2, 3]], 10), 12);
    }

    [Fact]
    public void CardPrecisionAtK_TwoDays_DropsCardsCaughtEarlier()
    {
        // Day 0: card 1 (fraud, 0.9), card 2 (genuine, 0.8) -> top-1 = card 1, CP = 1.
        // Day 1: card 1 again (0.95) is already caught and dropped; card 3 (genuine, 0.5) -> CP = 0.
        int[] days = [0, 0, 0, 1, 1];
        long[] cards = [1, 1, 2, 1, 3];
        double[] scores = [0.9, 0.1, 0.8, 0.95, 0.5];
        bool[] labels = [true, false, false, true, false];

        Assert.Equal(0.5, FraudMetrics.CardPrecisionAtK(days, cards, scores, labels, 1), 12);
    }
}
