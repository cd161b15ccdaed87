using PluginApp.Ml.Metrics;

namespace PluginApp.Ml.Tests;

public class MetricsTests
{
    [Fact]
    public void RocAuc_NoTies_MatchesHandComputed()
    {
        Assert.Equal(0.75, ClassificationMetrics.RocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 12);
    }

    [Fact]
    public void RocAuc_TiedPositiveAndNegative_CountsHalf()
    {
        // Pairs: (0.5+ vs 0.2-) 1, (0.5+ vs 0.5-) 0.5, (0.7+ vs both) 2 -> 3.5 / 4.
        Assert.Equal(0.875, ClassificationMetrics.RocAuc([0.2, 0.5, 0.5, 0.7], [false, true, false, true]), 12);
    }

    [Fact]
    public void RocAuc_SingleClass_IsNaN()
    {
        Assert.True(double.IsNaN(ClassificationMetrics.RocAuc([0.2, 0.5], [true, true])));
    }

    [Fact]
    public void AveragePrecision_SmallCase_MatchesHandComputed()
    {
        // Thresholds 0.8 (R .5, P 1), 0.4 (R .5), 0.35 (R 1, P 2/3): 0.5 + 0.5 * 2/3.
        Assert.Equal(0.5 + 1.0 / 3, ClassificationMetrics.AveragePrecision([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 12);
    }

    [Fact]
    public void AveragePrecision_AllTied_EqualsPrevalence()
    {
        Assert.Equal(0.25, ClassificationMetrics.AveragePrecision([0.5, 0.5, 0.5, 0.5], [true, false, false, false]), 12);
    }

    [Fact]
    public void LogLossAndBrier_SmallCase_MatchHandComputed()
    {
        double[] p = [0.9, 0.2];
        bool[] y = [true, false];

        Assert.Equal(-(Math.Log(0.9) + Math.Log(0.8)) / 2, ClassificationMetrics.LogLoss(p, y), 12);
        Assert.Equal((0.01 + 0.04) / 2, ClassificationMetrics.Brier(p, y), 12);
    }

    [Fact]
    public void PrecisionRecallAt_Threshold_MatchesHandComputed()
    {
        var (precision, recall) = ClassificationMetrics.PrecisionRecallAt([0.9, 0.6, 0.4, 0.7], [true, false, true, true], 0.6);

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

        Assert.Equal(0.5, ClassificationMetrics.CardPrecisionAtK(days, cards, scores, labels, 1), 12);
    }
}
