using PluginApp.Ml.Common;
using PluginApp.Ml.Intent;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Tests;

/// <summary>
/// A seeded store of carts whose chance of an order follows a known logit: strongly on reached checkout, cart updates,
/// idle time, the customer's orders and abandonments, a discount and the value ratio, with a mobile-at-checkout
/// interaction and an evening bump; cart value alone carries a little of it, reached checkout alone more. Snapshot moments
/// are spread at random over <paramref name="days"/>, so the list is not in time order.
/// </summary>
internal static class IntentSimulation
{
    public static readonly DateTime Start = new(2026, 6, 1, 0, 0, 0, DateTimeKind.Utc);

    public static IntentExample[] Store(int carts, int days, ulong seed) => Store(carts, days, seed, out _);

    /// <summary>The store and each cart's true probability of an order.</summary>
    public static IntentExample[] Store(int carts, int days, ulong seed, out double[] truth)
    {
        var rng = new SplitMix64(seed);
        var result = new IntentExample[carts];
        truth = new double[carts];
        for (var i = 0; i < carts; i++)
        {
            var at = Start.AddMinutes(rng.NextDouble() * days * 1440);
            const double median = 60;
            var value = Math.Round(Math.Exp(Math.Log(median) + 0.7 * rng.NextGaussian()), 2);
            var items = Math.Max(1, (int)Math.Round(value / (20 + 20 * rng.NextDouble())));
            var distinct = 1 + rng.NextInt(items);
            var created = Math.Exp(3 + 1.5 * rng.NextGaussian());
            var idle = created * rng.NextDouble();
            var updates = rng.NextInt(7);
            var checkout = rng.NextDouble() < 0.4;
            var known = rng.NextDouble() < 0.6;
            var returning = known ? rng.NextDouble() < 0.5 : (bool?)null;
            int? orders = known ? returning == true ? rng.NextInt(8) : 0 : null;
            int? abandoned = known ? rng.NextInt(4) : null;
            var u = rng.NextDouble();
            var device = u < 0.55 ? "mobile" : u < 0.9 ? "desktop" : "tablet";
            var hour = rng.NextInt(24);
            var day = rng.NextInt(7);
            var discount = rng.NextDouble() < 0.2;
            var logit = -1.2 + 2.0 * (checkout ? 1 : 0) + 0.35 * Math.Min(updates, 5) - 0.35 * Math.Log(1 + idle)
                + 0.5 * Math.Log(1 + (orders ?? 0)) - 0.5 * Math.Min(abandoned ?? 0, 3) + 0.6 * (discount ? 1 : 0)
                + 0.5 * Math.Log(value / median) - (checkout && device == "mobile" ? 0.8 : 0) + (hour >= 18 ? 0.4 : 0);
            truth[i] = 1 / (1 + Math.Exp(-logit));
            var ordered = rng.NextDouble() < truth[i];
            result[i] = new IntentExample(new CartSnapshot
            {
                CartValue = value, Items = items, DistinctProducts = distinct, MinutesSinceCreated = created, MinutesSinceUpdated = idle,
                Updates = updates, ReachedCheckout = checkout, ReturningCustomer = returning, CustomerOrders = orders,
                PastAbandonments = abandoned, Device = device, HourOfDay = hour, DayOfWeek = day, DiscountApplied = discount,
                ShopMedianOrderValue = median,
            }, ordered, at);
        }
        return result;
    }
}

/// <summary>One trained store of 3,000 carts (enough for Auto to pick LightGbm), shared by the tests.</summary>
public sealed class IntentFixture : IDisposable
{
    public IntentFixture()
    {
        Examples = IntentSimulation.Store(3000, 120, seed: 11, out var truth);
        Truth = truth;
        Result = IntentTrainer.Train(Examples);
    }

    internal IntentExample[] Examples { get; }
    internal double[] Truth { get; }
    public IntentTrainingResult Result { get; }

    public void Dispose() => Result.Model?.Dispose();
}

public class IntentTests(IntentFixture fx) : IClassFixture<IntentFixture>
{
    private static readonly CartSnapshot Sample = new()
    {
        CartValue = 138, Items = 1, DistinctProducts = 1, MinutesSinceCreated = 185, MinutesSinceUpdated = 12, Updates = 3,
        ReachedCheckout = true, ReturningCustomer = true, CustomerOrders = 4, PastAbandonments = 2, Device = " Mobile",
        HourOfDay = 20, DayOfWeek = 6, DiscountApplied = false, ShopMedianOrderValue = 60,
    };

    private IntentModel Model => fx.Result.Model ?? throw new InvalidOperationException(fx.Result.NotEnoughData);

    private static byte[] Blob(IntentModel m)
    {
        using var ms = new MemoryStream();
        m.Save(ms);
        return ms.ToArray();
    }

    [Fact]
    public void IntentFeatures_SameSnapshot_GiveIdenticalRowsAndReasons()
    {
        var a = IntentFeatures.Build(Sample);
        var b = IntentFeatures.Build(Sample with { });
        var batch = IntentFeatures.Build([Sample, Sample]);

        foreach (var name in IntentFeatures.Names)
        {
            Assert.Equal(a[name], b[name]);
            Assert.Equal(a[name], batch[1][name]);
            Assert.Equal(IntentFeatures.Reason(name, a), IntentFeatures.Reason(name, b));
        }
        Assert.Equal("cart worth 2.3x the store's usual order (138.00)", IntentFeatures.Reason("value_ratio", a));
        Assert.Equal(IntentFeatures.Reason("value_ratio", a), IntentFeatures.Reason("cart_value", a));
        Assert.Equal("changed the cart 3 times", IntentFeatures.Reason("updates", a));
        Assert.Equal("returning customer with 4 orders", IntentFeatures.Reason("customer_orders", a));
        Assert.Equal("returning customer with 4 orders", IntentFeatures.Reason("returning_customer", a));
        Assert.Equal("abandoned 2 carts before", IntentFeatures.Reason("past_abandonments", a));
        Assert.Equal("1 item in the cart", IntentFeatures.Reason("items", a));
        Assert.Equal("one product", IntentFeatures.Reason("distinct_products", a));
        Assert.Equal("last changed 12 minutes ago", IntentFeatures.Reason("minutes_since_updated", a));
        Assert.Equal("cart created 3 hours ago", IntentFeatures.Reason("minutes_since_created", a));
        Assert.Equal("reached checkout", IntentFeatures.Reason("reached_checkout", a));
        Assert.Equal("shopping on mobile", IntentFeatures.Reason("device", a));
        Assert.Equal("cart active in the evening (store time)", IntentFeatures.Reason("part_of_day", a));
        Assert.Equal("on a weekend", IntentFeatures.Reason("weekend", a));
        Assert.Equal("no discount applied", IntentFeatures.Reason("discount_applied", a));
        Assert.Equal(138.0, IntentFeatures.Raw(a, "cart_value"));
        Assert.Equal(3.0, IntentFeatures.Raw(a, "updates"));
    }

    [Fact]
    public void IntentFeatures_AnonymousCart_SaysWhatIsNotKnown()
    {
        var row = IntentFeatures.Build(new CartSnapshot { CartValue = 40, Items = 2, DistinctProducts = 2, Device = "SmartTV" });

        Assert.Null(row["value_ratio"]);
        Assert.Null(row["customer_orders"]);
        Assert.Equal("other", row["device"]);
        Assert.Equal("cart worth 40.00", IntentFeatures.Reason("cart_value", row));
        Assert.Equal("customer not known", IntentFeatures.Reason("customer_orders", row));
        Assert.Equal("earlier carts not known", IntentFeatures.Reason("past_abandonments", row));
        Assert.Equal("time of day not known", IntentFeatures.Reason("part_of_day", row));
        Assert.Equal("cart not changed since it was created", IntentFeatures.Reason("updates", row));
        Assert.Equal("new customer, no order before", IntentFeatures.Reason("customer_orders", IntentFeatures.Build(Sample with { ReturningCustomer = false, CustomerOrders = 0 })));
    }

    [Theory]
    [InlineData("CartValue")]
    [InlineData("Items")]
    [InlineData("MinutesSinceUpdated")]
    [InlineData("HourOfDay")]
    [InlineData("DayOfWeek")]
    [InlineData("PastAbandonments")]
    public void IntentFeatures_ImpossibleSnapshot_IsRejectedNamingTheField(string field)
    {
        var bad = field switch
        {
            "CartValue" => Sample with { CartValue = double.NaN },
            "Items" => Sample with { Items = -1 },
            "MinutesSinceUpdated" => Sample with { MinutesSinceUpdated = double.PositiveInfinity },
            "HourOfDay" => Sample with { HourOfDay = 24 },
            "DayOfWeek" => Sample with { DayOfWeek = 7 },
            _ => Sample with { PastAbandonments = -2 },
        };

        var ex = Assert.Throws<ArgumentException>(() => IntentFeatures.Build(bad));
        var inTraining = Assert.Throws<ArgumentException>(() => IntentTrainer.Train([new IntentExample(Sample, true, IntentSimulation.Start), new IntentExample(bad, false, IntentSimulation.Start)]));

        Assert.Contains("snapshot." + field, ex.Message);
        Assert.Contains("examples[1].Snapshot." + field, inTraining.Message);
    }

    [Fact]
    public void Train_SyntheticStore_BeatsEveryBaselineOnTheLatestCarts()
    {
        var sut = fx.Result;

        Assert.Null(sut.NotEnoughData);
        Assert.True(sut.BeatsBaselines, sut.Reason);
        var m = sut.Evaluation!.Metrics;
        Assert.Equal(TabularLearner.LightGbm, sut.EvaluatedInfo!.Learner);
        foreach (var name in new[] { IntentTrainer.BaseRate, IntentTrainer.CartValueOnly, IntentTrainer.CheckoutOnly })
        {
            var b = sut.Baseline(name) ?? throw new Xunit.Sdk.XunitException($"no baseline '{name}'");
            Assert.Equal(sut.HeldOutCarts, b.Metrics.Count);
            Assert.Equal(sut.HeldOutOrders, b.Metrics.Positives);
            Assert.True(m.RocAuc > b.Metrics.RocAuc + 0.05, $"{name}: {b.Metrics.RocAuc:F3} vs the model's {m.RocAuc:F3}");
            Assert.True(m.Brier < b.Metrics.Brier, $"{name}: Brier {b.Metrics.Brier:F4} vs the model's {m.Brier:F4}");
        }
        var latest = Enumerable.Range(0, fx.Examples.Length).Where(i => fx.Examples[i].At >= sut.HeldOutFrom).ToArray();
        var ceiling = Metrics.BinaryMetrics.RocAuc(latest.Select(i => fx.Truth[i]).ToArray(), latest.Select(i => fx.Examples[i].Ordered).ToArray());
        Assert.InRange(m.RocAuc, ceiling - 0.05, ceiling + 0.03);   // the true probabilities score 0.797 here, the model 0.777
        Assert.True(m.Brier < sut.Evaluation.BaseRateBrier);
        Assert.Contains("beats every baseline", sut.Reason);
    }

    [Fact]
    public void Train_SplitsByTime_TheLatestCartsAreHeldOut()
    {
        var sut = fx.Result;
        var examples = fx.Examples;
        var cut = sut.HeldOutFrom!.Value;
        var latestFirst = examples.Select(e => e.At).OrderDescending().ToArray();

        // The input is not in time order, so a split by position would not be a split by time.
        Assert.False(examples.Select(e => e.At).SequenceEqual(examples.Select(e => e.At).Order()));
        Assert.Equal(600, sut.HeldOutCarts);                                   // 20 % of 3,000 (no ties at the cut)
        Assert.Equal(latestFirst[599], cut);                                   // the 600 latest moments
        Assert.True(sut.TrainingUntil < cut);
        Assert.Equal(latestFirst[600], sut.TrainingUntil);
        Assert.Equal(examples.Count(e => e.At >= cut), sut.HeldOutCarts);
        Assert.Equal(examples.Count(e => e.At >= cut && e.Ordered), sut.HeldOutOrders);
        Assert.Equal(examples.Count(e => e.At < cut && e.Ordered), sut.TrainingOrders);
        Assert.All(sut.HeldOutAt, t => Assert.True(t >= cut));
        Assert.Equal(sut.HeldOutAt.Order(), sut.HeldOutAt);
        Assert.Equal(2400, sut.EvaluatedInfo!.TrainingRows + sut.EvaluatedInfo.ValidationRows);
    }

    [Fact]
    public void Train_LabelsOfTheLatestCartsChanged_HeldOutScoresDoNotMove()
    {
        // A random split (or CV) would train on some of the latest carts, so its held-out scores would move when their
        // labels change. The time split never trains on them: every held-out probability stays bit-identical.
        var store = IntentSimulation.Store(800, 60, seed: 4);
        var options = new IntentOptions { Tabular = IntentOptions.DefaultTabular with { Learner = TabularLearner.LogisticRegression }, Refit = false };
        var a = IntentTrainer.Train(store, options);
        var cut = a.HeldOutFrom!.Value;
        var flipped = store.Select(e => e.At >= cut ? e with { Ordered = !e.Ordered } : e).ToArray();

        var b = IntentTrainer.Train(flipped, options);

        Assert.Equal(cut, b.HeldOutFrom);
        Assert.NotEqual(a.HeldOutLabels, b.HeldOutLabels);
        Assert.Equal(a.HeldOutProbabilities, b.HeldOutProbabilities);
        Assert.NotEqual(a.Evaluation!.Metrics.RocAuc, b.Evaluation!.Metrics.RocAuc);
        Assert.Equal(640, a.Model!.TrainingCarts);   // Refit = false serves the evaluated fit (the earlier 80 %)
        a.Model.Dispose();
        b.Model!.Dispose();
    }

    [Fact]
    public void Train_Refit_ServesTheEvaluatedLearnerOnEveryCart()
    {
        Assert.Equal(fx.Examples.Length, Model.TrainingCarts);
        Assert.Equal(fx.Examples.Count(e => e.Ordered), Model.TrainingOrders);
        Assert.Equal(fx.Result.EvaluatedInfo!.Learner, Model.Info.Learner);
        Assert.Equal(fx.Examples.Length, Model.Info.TrainingRows + Model.Info.ValidationRows);
        Assert.Contains("refitted on all 3,000 carts", fx.Result.Reason);
    }

    [Fact]
    public void Train_TooFewCarts_SaysNotEnoughDataWithTheCounts()
    {
        var store = IntentSimulation.Store(120, 30, seed: 2);
        var orders = store.Count(e => e.Ordered);

        var sut = IntentTrainer.Train(store);

        Assert.Null(sut.Model);
        Assert.Null(sut.Evaluation);
        Assert.Equal($"not enough data yet: 120 carts, {orders} that became orders; 300 carts and 50 orders needed", sut.NotEnoughData);
        Assert.Equal(120, sut.Carts);
        Assert.Equal(orders, sut.Orders);
    }

    [Fact]
    public void Train_NoOrderAmongTheLatestCarts_SaysNotEnoughDataToEvaluate()
    {
        var store = IntentSimulation.Store(500, 60, seed: 6);
        var cut = store.Select(e => e.At).OrderDescending().ElementAt(99);
        var late = store.Select(e => e.At >= cut ? e with { Ordered = false } : e).ToArray();

        var sut = IntentTrainer.Train(late);

        Assert.Null(sut.Model);
        Assert.StartsWith("not enough data yet to evaluate: split at ", sut.NotEnoughData);
        Assert.Contains("the 100 latest carts 0 orders and 100 without; 10 of each needed", sut.NotEnoughData);
    }

    [Fact]
    public void Train_CancelledToken_Throws()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => IntentTrainer.Train(fx.Examples, null, cts.Token));
    }

    [Fact]
    public void SaveLoad_RoundTrip_GivesIdenticalScoresAndReasons()
    {
        var carts = fx.Examples.Take(200).Select(e => e.Snapshot).Append(Sample).ToArray();
        var expected = Model.Score(carts);

        using var loaded = IntentModel.Load(new MemoryStream(Blob(Model)));
        var actual = loaded.Score(carts);

        Assert.Equal(Model.TrainingCarts, loaded.TrainingCarts);
        Assert.Equal(Model.Info, loaded.Info);
        for (var i = 0; i < carts.Length; i++)
        {
            Assert.Equal(expected[i].Probability, actual[i].Probability);
            Assert.Equal(expected[i].Reasons, actual[i].Reasons);
        }
        Assert.Equal(expected[^1].Probability, loaded.PredictProbability(Sample), 6);
    }

    [Fact]
    public void Score_GivesProbabilitiesAndDistinctReasonsInWords()
    {
        var scores = Model.Score(fx.Examples.Take(300).Select(e => e.Snapshot).ToArray());

        Assert.All(scores, s => Assert.InRange(s.Probability, 0, 1));
        Assert.All(scores, s => Assert.Equal(3, s.Reasons.Count));
        Assert.All(scores, s => Assert.Equal(s.Reasons.Count, s.Reasons.Select(r => r.Text).Distinct().Count()));
        Assert.Contains(scores, s => s.Reasons.Any(r => r.Feature == "reached_checkout"));
        var checkout = Model.Score(Sample with { ReachedCheckout = true, Device = "desktop" }).Probability;
        var browsing = Model.Score(Sample with { ReachedCheckout = false, Device = "desktop" }).Probability;
        Assert.True(checkout > browsing + 0.1, $"checkout {checkout:F3} vs browsing {browsing:F3}");
    }

    [Fact]
    public void Load_WrongMagicOrOtherFeatures_ThrowsNamingTheField()
    {
        var blob = Blob(Model);
        var magic = (byte[])blob.Clone();
        magic[0] = (byte)'X';
        var names = (byte[])blob.Clone();
        names[8 + 4 + 1] = (byte)'X';   // first feature name: after the header, the count and its length prefix

        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => IntentModel.Load(new MemoryStream(magic))).Message);
        Assert.Contains("'feature names'", Assert.Throws<InvalidDataException>(() => IntentModel.Load(new MemoryStream(names))).Message);
        Assert.Contains("IntentModel", Assert.Throws<InvalidDataException>(() => IntentModel.Load(new MemoryStream(blob[..(blob.Length / 2)]))).Message);
    }

    public static TheoryData<string> BadOptions => ["HeldOutShare", "MinCarts", "MinOrders", "MinAbandoned", "MinHeldOutPerClass", "Tabular.LearningRate", "Tabular.ValidationFraction"];

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Train_BadOption_IsRejectedNamingIt(string option)
    {
        var o = option switch
        {
            "HeldOutShare" => new IntentOptions { HeldOutShare = 0 },
            "MinCarts" => new IntentOptions { MinCarts = 0 },
            "MinOrders" => new IntentOptions { MinOrders = -1 },
            "MinAbandoned" => new IntentOptions { MinAbandoned = 0 },
            "MinHeldOutPerClass" => new IntentOptions { MinHeldOutPerClass = 0 },
            "Tabular.LearningRate" => new IntentOptions { Tabular = IntentOptions.DefaultTabular with { LearningRate = 0 } },
            _ => new IntentOptions { Tabular = IntentOptions.DefaultTabular with { ValidationFraction = 0.9 } },
        };

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => IntentTrainer.Train([], o));

        Assert.Equal(option, ex.ParamName);
        Assert.StartsWith(option, ex.Message);
    }
}
