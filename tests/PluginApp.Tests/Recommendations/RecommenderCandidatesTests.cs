using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Ml.Recommenders;
using PluginApp.Recommendations;

namespace PluginApp.Tests.Recommendations;

/// <summary>
/// Candidates chosen per store on synthetic stores whose answer is known: one where shoppers buy the top sellers whatever
/// they bought before (popularity should win), one where they buy within a group of products (a model using their history
/// should win), and one too small to choose.
/// </summary>
public sealed class RecommenderCandidatesTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// A small store's held-out evaluation is a time split too: with too few customers ordering in the last 14 days, the
    /// window grows (28 days here), and nothing trains from its start on, anyone's. Until 6 Dec 2026 a small store held
    /// out the last order day of a fifth of its customers, and everyone else's later orders, carts and clicks trained.
    /// </summary>
    [Fact]
    public void SmallStoreSplit_IsATimeSplit_NothingAfterTheWindowStartsTrains()
    {
        var signals = new List<Signal>();
        for (var c = 0; c < 20; c++)
        {
            var key = "c:" + c.ToString(CultureInfo.InvariantCulture);
            signals.Add(new Signal(key, 1, SignalKind.Order, Start.AddDays(c)));
            signals.Add(new Signal(key, 2, SignalKind.Order, Start.AddDays(40 + c).AddHours(12)));
            signals.Add(new Signal(key, 3, SignalKind.AddToCart, Start.AddDays(40 + c).AddHours(11))); // the cart that became it
            signals.Add(new Signal(key, 4, SignalKind.View, Start.AddDays(41 + c)));                        // a click the day after
        }

        var (train, test, split, _) = RecommenderTraining.Split(signals);

        Assert.Equal("last 28 days of orders", split);
        Assert.Equal(20, test.Count); // every customer ordered again in the window (14 of them in the last 14 days)
        Assert.All(test.Values, bought => Assert.Equal([2L], bought));
        var windowStart = signals.Max(s => s.At) - TimeSpan.FromDays(28);
        Assert.All(train, s => Assert.True(s.At < windowStart, $"{s.UserKey} {s.ProductId} at {s.At:u} trains"));
        Assert.Equal(20, train.Count);
    }

    /// <summary>
    /// A store too small to hold anything out gets its model with no held-out figure stored, and a later version measured on
    /// too few customers to choose replaces it even when it trails bestsellers. Until 6 Dec 2026 the unmeasured run stored
    /// NDCG@10 0 for the served candidate and for bestsellers alike, "0 over bestsellers", and the gate held back every later
    /// version below bestsellers against it: the store kept its first model.
    /// </summary>
    [Fact]
    public void UnmeasuredRun_StoresNoFigure_AndALaterMeasuredVersionReplacesIt()
    {
        // One order each: nobody has anything before the window to be asked about.
        var signals = Enumerable.Range(0, 10).Select(c => new Signal("c:" + c.ToString(CultureInfo.InvariantCulture), 1 + c % 3, SignalKind.Order, Start.AddDays(c))).ToList();
        var kind = RecommenderTrainer.Registration;

        var first = RecommenderTraining.Train(signals, AsOf(signals), RecommenderTraining.Defaults);
        var stored = System.Text.Json.JsonSerializer.SerializeToElement(first.Metrics);
        var later = System.Text.Json.JsonSerializer.SerializeToElement(new HeldOutMetrics(0.02, 0.03, 0.04, 40, "last 14 days of orders")
        {
            ServedNdcgAt10 = 0.03, ServedRecallAt10 = 0.02, BaselineNdcgAt10 = 0.05, WinnerMeasured = false, MinEvalSize = 100,
        });

        Assert.Equal(0, first.Metrics.TestUsers);
        Assert.False(stored.TryGetProperty(nameof(HeldOutMetrics.ServedNdcgAt10), out _));
        Assert.False(stored.TryGetProperty(nameof(HeldOutMetrics.BaselineNdcgAt10), out _));
        Assert.Equal((true, "first model (no held-out NDCG@10 yet)"), PluginApp.Training.PromotionGate.Compare(kind, stored, null));
        Assert.True(PluginApp.Training.PromotionGate.Compare(kind, later, stored).Passes);
        Assert.False(PluginApp.Training.PromotionGate.Compare(kind, stored, later).Passes); // an unmeasured one never replaces a measured one
        Assert.True(PluginApp.Training.PromotionGate.Compare(kind, stored, stored).Passes); // nor is one held back by another: the newer data serves
        Assert.StartsWith("Candidates: not compared yet, only 0 held-out customers", PluginApp.Recommendations.Admin.CandidateSummary.Describe(stored));
    }

    /// <summary>Three orders before the held-out window and one in it (the last 14 days) per customer.</summary>
    private static List<Signal> Store(int customers, Func<Random, int, long[]> basket, int seed = 11)
    {
        var random = new Random(seed);
        var signals = new List<Signal>();
        for (var c = 0; c < customers; c++)
        {
            var days = new[] { c % 20, 30 + c % 20, 60 + c % 20, 120 + c % 10 };
            foreach (var day in days)
                foreach (var product in basket(random, c))
                    signals.Add(new Signal("c:" + c.ToString(CultureInfo.InvariantCulture), product, SignalKind.Order, Start.AddDays(day)));
        }
        return signals;
    }

    /// <summary>Four distinct products drawn from a steep Zipf law over 150 products: everyone buys the top sellers.</summary>
    private static long[] TopSellers(Random random, int _)
    {
        var weights = Enumerable.Range(1, 150).Select(i => 1 / Math.Pow(i, 1.2)).ToArray();
        var total = weights.Sum();
        var chosen = new HashSet<long>();
        while (chosen.Count < 4)
        {
            var u = random.NextDouble() * total;
            var i = 0;
            while (i < weights.Length - 1 && (u -= weights[i]) > 0) i++;
            chosen.Add(1000 + i);
        }
        return [.. chosen];
    }

    /// <summary>Three products of the customer's own group of twenty (ten groups, equally popular).</summary>
    private static long[] OwnGroup(Random random, int customer) =>
        Enumerable.Range(0, 20).OrderBy(_ => random.Next()).Take(3).Select(i => 2000L + customer % 10 * 20 + i).ToArray();

    private static DateTimeOffset AsOf(List<Signal> signals) => signals.Max(s => s.At);

    [Fact]
    public void CandidateSelection_StoreWherePopularityWins_PicksPopularity()
    {
        var signals = Store(300, TopSellers);

        var sut = RecommenderTraining.Train(signals, AsOf(signals), RecommenderTraining.Defaults);

        var m = sut.Metrics;
        Assert.True(m.WinnerMeasured, m.Selection);
        Assert.Equal(RecommenderCandidates.Popularity, m.Winner);
        Assert.Equal(ServedCandidate.Popularity, sut.Bundle.Served);
        Assert.True(m.TestUsers >= 100, $"{m.TestUsers} held-out customers");
        Assert.Equal(RecommenderCandidates.All.Order(), m.Candidates.Keys.Order());
        Assert.All(m.Candidates.Where(c => c.Key != m.Winner), c => Assert.True(c.Value.NdcgAt10 <= m.ServedNdcgAt10, $"{c.Key} {c.Value.NdcgAt10} > {m.ServedNdcgAt10}"));
        // The served figures are popularity's; its margin over popularity is nil and over the runner-up not negative.
        Assert.Equal(m.BaselineNdcgAt10, m.ServedNdcgAt10);
        Assert.Equal(m.BaselineRecallAt10, m.ServedRecallAt10);
        Assert.Equal(0, m.MarginOverPopularity);
        Assert.True(m.MarginOverRunnerUp >= 0);
        Assert.Equal(m.ServedNdcgAt10!.Value - m.Candidates[m.RunnerUp!].NdcgAt10, m.MarginOverRunnerUp, 12);
        // NdcgAt10 and RecallAt10 keep their meaning from before candidates: ALS's.
        Assert.Equal((m.Candidates[RecommenderCandidates.Als].NdcgAt10, m.Candidates[RecommenderCandidates.Als].RecallAt10), (m.NdcgAt10, m.RecallAt10));
    }

    [Fact]
    public void CandidateSelection_StoreWithGroupsOfProducts_PicksACandidateThatUsesHistoryOverPopularity()
    {
        var signals = Store(300, OwnGroup);

        var sut = RecommenderTraining.Train(signals, AsOf(signals), RecommenderTraining.Defaults);

        var m = sut.Metrics;
        Assert.True(m.WinnerMeasured, m.Selection);
        Assert.Contains(m.Winner, new[] { RecommenderCandidates.Als, RecommenderCandidates.CoOccurrence, RecommenderCandidates.Blend });
        Assert.Equal(RecommenderCandidates.ToServed(m.Winner), sut.Bundle.Served);
        Assert.True(m.MarginOverPopularity > 0.1, $"{m.Winner} {m.ServedNdcgAt10:F4} vs popularity {m.BaselineNdcgAt10:F4}");
        Assert.True(m.Candidates[RecommenderCandidates.Als].NdcgAt10 > m.BaselineNdcgAt10, "ALS on compressed confidence beats popularity here");
        Assert.True(m.Candidates[RecommenderCandidates.CoOccurrence].NdcgAt10 > m.BaselineNdcgAt10, "bought together beats popularity here");
    }

    [Fact]
    public void CandidateSelection_BelowTheMinimumEvaluationSize_ServesTheBlendAndSaysSo()
    {
        var signals = Store(40, OwnGroup);

        var sut = RecommenderTraining.Train(signals, AsOf(signals), RecommenderTraining.Defaults);

        var m = sut.Metrics;
        Assert.True(m.TestUsers is > 0 and < 100, $"{m.TestUsers} held-out customers");
        Assert.False(m.WinnerMeasured);
        Assert.Equal(RecommenderCandidates.Blend, m.Winner);
        Assert.Equal(ServedCandidate.Blend, sut.Bundle.Served);
        Assert.Contains("fewer than 100", m.Selection);
        Assert.Contains("default (blend)", m.Selection);
        Assert.Equal(4, m.Candidates.Count); // still measured and stored, just not trusted to choose
    }

    /// <summary>
    /// The held-out figures weigh what trains them as of the cutoff, as the served model weighs its data as of its training:
    /// here, with a half-life of two hours, a product that sold to 40 shoppers in the two hours before the cutoff is the
    /// bestseller the popularity baseline ranks first, as it would have been served then. Until 8 Dec 2026 the weights
    /// decayed from the newest signal, 14 days later, which left every one of them at nothing (a small store's 112-day
    /// window halved them at the default half-life).
    /// </summary>
    [Fact]
    public void HeldOutEvaluation_WeighsItsTrainingAsOfTheCutoff()
    {
        var signals = new List<Signal>();
        var cutoff = Start.AddDays(106);
        for (var c = 0; c < 120; c++)
        {
            var key = "c:" + c.ToString(CultureInfo.InvariantCulture);
            signals.Add(new Signal(key, 1 + c % 5, SignalKind.Order, Start.AddDays(c % 20)));
            signals.Add(new Signal(key, 99, SignalKind.Order, cutoff.AddDays(14 - c % 10)));
        }
        for (var b = 0; b < 40; b++)
            signals.Add(new Signal("c:burst" + b.ToString(CultureInfo.InvariantCulture), 99, SignalKind.Order, cutoff.AddHours(-2).AddMinutes(b)));

        var m = RecommenderTraining.Evaluate(signals, RecommenderTraining.Defaults with { HalfLifeDays = 2 / 24.0 });

        Assert.Equal("last 14 days of orders", m.Split);
        Assert.Equal(120, m.TestUsers);
        Assert.True(m.Candidates[RecommenderCandidates.Popularity].NdcgAt10 > 0.99, $"popularity NDCG@10 {m.Candidates[RecommenderCandidates.Popularity].NdcgAt10}");
    }

    /// <summary>
    /// A held-out customer who only bought again what she had is not asked about: no candidate may show her what she had,
    /// so her purchase would count against every one. Until 5 Dec 2026 it did, lowering each figure by however much the
    /// store's customers re-buy; here half of them re-buy and half buy something new.
    /// </summary>
    [Fact]
    public void HeldOutEvaluation_CountsOnlyWhatTheCustomerHadNotBoughtBefore()
    {
        var signals = new List<Signal>();
        for (var k = 0; k < 5; k++)
            signals.Add(new Signal("c:seed" + k.ToString(CultureInfo.InvariantCulture), 10 + k, SignalKind.Order, Start.AddDays(10)));
        for (var c = 0; c < 200; c++)
        {
            var key = "c:" + c.ToString(CultureInfo.InvariantCulture);
            foreach (var day in new[] { 0, 30, 60 }) signals.Add(new Signal(key, 1 + c % 5, SignalKind.Order, Start.AddDays(day + c % 20)));
            signals.Add(new Signal(key, c % 2 == 0 ? 1 + c % 5 : 10 + c % 5, SignalKind.Order, Start.AddDays(120 + c % 10)));
        }

        var m = RecommenderTraining.Evaluate(signals, RecommenderTraining.Defaults);

        Assert.Equal("last 14 days of orders", m.Split);
        Assert.Equal(100, m.TestUsers);
    }

    [Fact]
    public void CandidateChoice_PureSelection_PicksTheHighestNdcgTiesGoToTheDefaultAndStatesMargins()
    {
        var options = new CandidateSelectionOptions { Default = "blend", Baseline = "popularity", MinEvalSize = 50 };
        CandidateScore[] scores = [new("als", 0.10, 0.08), new("co_occurrence", 0.12, 0.09), new("popularity", 0.05, 0.04), new("blend", 0.12, 0.10)];

        var tie = CandidateSelection.Choose(scores, 60, options);
        var clear = CandidateSelection.Choose([.. scores.Take(3)], 60, options with { Default = "als" });
        var small = CandidateSelection.Choose(scores, 49, options);

        Assert.Equal(("blend", true, "co_occurrence"), (tie.Winner.Name, tie.Measured, tie.RunnerUp?.Name));
        Assert.Equal(0, tie.MarginOverRunnerUp, 12);
        Assert.Equal(0.07, tie.MarginOverBaseline, 12);
        Assert.Equal(("co_occurrence", "als"), (clear.Winner.Name, clear.RunnerUp?.Name));
        Assert.Equal(0.02, clear.MarginOverRunnerUp, 12);
        Assert.Equal(("blend", false), (small.Winner.Name, small.Measured));
        Assert.Contains("only 49 held-out customers (fewer than 50)", small.Reason);
        Assert.Throws<ArgumentException>(() => CandidateSelection.Choose(scores, 60, options with { Default = "nope" }));
    }

    [Fact]
    public void ConfidenceCompression_LogScalesWeights_AndNoneLeavesThemRaw()
    {
        Interaction[] data = [new(0, 0, 0), new(0, 1, 1), new(1, 0, 1000)];

        var log = ConfidenceCompression.Log.Apply(data);
        var raw = ConfidenceCompression.None.Apply(data);

        Assert.Equal([0f, MathF.Log(2), MathF.Log(1001)], log.Select(x => x.Weight), new ToleranceComparer(1e-5f));
        Assert.Equal(data, raw);
        Assert.Equal(MathF.Log(1 + 10f / 5), new ConfidenceCompression(5).Apply(10f), 5);
    }

    [Fact]
    public void RecommenderBundle_Format3KeepsTheServedCandidate_OlderFormatsServeTheBlend()
    {
        Interaction[] data = [new(0, 0, 3), new(0, 1, 2), new(1, 1, 1), new(1, 2, 4), new(2, 0, 1), new(2, 2, 2)];
        var als = new AlsTrainer(new AlsOptions { Factors = 2, Iterations = 3, Seed = 1 }).Train(data, 3, 3);
        var pop = new PopularityTrainer().Train(data, 3);
        var co = new CoOccurrenceTrainer().Train(data, 3, 3);
        var bytes = new RecommenderBundle(als, pop, co, [11, 12, 13], ServedCandidate.Popularity).ToBytes();

        var read = RecommenderBundle.FromBytes(bytes);
        // Format 2 is format 3 without the trailing served candidate.
        var v2 = bytes[..^4];
        BitConverter.GetBytes(2).CopyTo(v2, 4);

        Assert.Equal(3, BitConverter.ToInt32(bytes, 4));
        Assert.Equal(ServedCandidate.Popularity, read.Served);
        Assert.Equal(ServedCandidate.Blend, RecommenderBundle.FromBytes(v2).Served);
        Assert.Equal([11L, 12, 13], RecommenderBundle.FromBytes(v2).ProductIds);
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(float obj) => 0;
    }
}
