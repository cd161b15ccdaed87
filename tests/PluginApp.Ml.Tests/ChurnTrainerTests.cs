using PluginApp.Ml.Churn;

namespace PluginApp.Ml.Tests;

public class ChurnTrainerTests
{
    private static readonly DateTime Now = new(2026, 11, 30, 0, 0, 0, DateTimeKind.Utc);

    private static CustomerHistory[] Cut(IEnumerable<CustomerHistory> store, DateTime now) =>
        store.Select(c => c with { Orders = c.Orders.Where(o => o.At < now).ToArray() }).ToArray();

    [Fact]
    public void ChurnFeatures_OrdersAtOrAfterCutoff_ChangeNothing()
    {
        var store = ChurnSimulation.Store(300, Now, 600, seed: 21);
        var before = Cut(store, Now);
        var bg = BgNbd.Fit(before.Select(c => RepeatSummary.From(c, Now)).ToArray());
        // The future: a purchase exactly at the cutoff (the boundary a "<=" would leak), refunds and new categories after it.
        var after = before.Select(c => c with
        {
            Orders = c.Orders.Concat([
                new ChurnOrder(Now, 999, 50, 0, false, ["leak"]),
                new ChurnOrder(Now.AddDays(3), 10, 0, 10, true, ["leak2"]),
                new ChurnOrder(Now.AddDays(40), 120),
            ]).Reverse().ToArray(),
        }).ToArray();

        for (var i = 0; i < before.Length; i++)
        {
            var a = ChurnFeatures.Build(before[i], Now, bg, 90);
            var b = ChurnFeatures.Build(after[i], Now, bg, 90);
            foreach (var name in ChurnFeatures.Names) Assert.Equal(a[name], b[name]);
            Assert.Equal(RepeatSummary.From(before[i], Now), RepeatSummary.From(after[i], Now));
        }
    }

    [Fact]
    public void Reason_OneTimeBuyer_SaysOneOrderInWords()
    {
        var customer = new CustomerHistory("a", [new ChurnOrder(Now.AddDays(-40), 25)]);
        var row = ChurnFeatures.Build(customer, Now, null, 90);

        Assert.Equal("one order so far", ChurnFeatures.Reason("orders", row, 90));
        Assert.Equal("only one order so far, 40 days ago", ChurnFeatures.Reason("days_since_last_order", row, 90));
    }


    [Fact]
    public void ChurnFeatures_ACancellationAfterTheCutoff_IsNotKnownAtIt()
    {
        // An order placed 20 days before the cutoff and cancelled 3 days after it: at the cutoff it was a purchase.
        ChurnOrder[] Orders(bool cancelledLater) =>
        [
            new ChurnOrder(Now.AddDays(-80), 40, Order: "1"),
            new ChurnOrder(Now.AddDays(-20), 60, Order: "2", Cancelled: cancelledLater, CancelledAt: cancelledLater ? Now.AddDays(3) : null),
            new ChurnOrder(Now.AddDays(-50), 30, Order: "3", Cancelled: true, CancelledAt: Now.AddDays(-49)),
        ];
        var later = ChurnFeatures.Build(new CustomerHistory("a", Orders(true)), Now, null, 90);
        var never = ChurnFeatures.Build(new CustomerHistory("a", Orders(false)), Now, null, 90);

        foreach (var name in ChurnFeatures.Names) Assert.Equal(never[name], later[name]);
        Assert.Equal("last order 20 days ago; usually orders every 60 days", ChurnFeatures.Reason("days_since_last_order", later, 90));
        // The one cancelled before the cutoff is known there: one order of three.
        Assert.Equal("33 % of orders refunded or cancelled", ChurnFeatures.Reason("refunded_order_share", later, 90));
        // Read after the cancellation, it is known: one order left.
        Assert.Equal("one order so far", ChurnFeatures.Reason("orders", ChurnFeatures.Build(new CustomerHistory("a", Orders(true)), Now.AddDays(4), null, 90), 90));
    }

    [Fact]
    public void ChurnFeatures_RefundEntries_CountTowardTheirOrder()
    {
        // Two orders kept, the first refunded in part a week later; a third cancelled and refunded in full.
        var customer = new CustomerHistory("a",
        [
            new ChurnOrder(Now.AddDays(-60), 100, Order: "1"),
            new ChurnOrder(Now.AddDays(-53), 0, Refunded: 30, Order: "1"),
            new ChurnOrder(Now.AddDays(-30), 100, Order: "2"),
            new ChurnOrder(Now.AddDays(-20), 80, Order: "3", Cancelled: true, CancelledAt: Now.AddDays(-19)),
            new ChurnOrder(Now.AddDays(-19), 0, Refunded: 80, Order: "3", Cancelled: true, CancelledAt: Now.AddDays(-19)),
        ]);
        var row = ChurnFeatures.Build(customer, Now, null, 90);

        // Orders 1 and 3 of three, each once.
        Assert.Equal("67 % of orders refunded or cancelled", ChurnFeatures.Reason("refunded_order_share", row, 90));
        // 30 of the 200 spent; the cancelled order's refund gave back nothing that was spent.
        Assert.Equal("15 % of spend refunded", ChurnFeatures.Reason("refund_share", row, 90));

        // A credit note naming no order (a transactions file) is a refunded order of its own.
        var file = new CustomerHistory("b", [new ChurnOrder(Now.AddDays(-60), 100), new ChurnOrder(Now.AddDays(-50), 0, Refunded: 20)]);
        Assert.Equal("50 % of orders refunded or cancelled", ChurnFeatures.Reason("refunded_order_share", ChurnFeatures.Build(file, Now, null, 90), 90));
    }

    [Fact]
    public void ChurnFeatures_ActiveMonthShare_NeverExceedsEveryMonth()
    {
        // First order late on its day, the second 29 days later; read the next morning: two 30-day periods, both with an order.
        var first = new DateTime(2026, 10, 1, 23, 0, 0, DateTimeKind.Utc);
        var customer = new CustomerHistory("a", [new ChurnOrder(first, 10), new ChurnOrder(first.AddDays(29).AddHours(-10), 10)]);
        var row = ChurnFeatures.Build(customer, first.AddDays(29).AddHours(11), null, 90);

        Assert.Equal("ordered in 100 % of the months since the first order", ChurnFeatures.Reason("active_month_share", row, 90));
    }
    [Fact]
    public void Train_TinyStore_SaysNotEnoughDataWithExactCounts()
    {
        var store = new[]
        {
            new CustomerHistory("a", [new ChurnOrder(Now.AddDays(-50), 10), new ChurnOrder(Now.AddDays(-20), 12)]),
            new CustomerHistory("b", [new ChurnOrder(Now.AddDays(-80), 10), new ChurnOrder(Now.AddDays(-80).AddHours(2), 5)]), // one day
            new CustomerHistory("c", [new ChurnOrder(Now.AddDays(-30), 10)]),
            new CustomerHistory("d", [new ChurnOrder(Now.AddDays(-90), 10), new ChurnOrder(Now.AddDays(-60), 10, Cancelled: true)]),
            new CustomerHistory("e", [new ChurnOrder(Now.AddDays(-9), 10), new ChurnOrder(Now.AddDays(-2), 0, Refunded: 10)]),
            new CustomerHistory("f", [new ChurnOrder(Now.AddDays(-200), 10), new ChurnOrder(Now.AddDays(-100), 10), new ChurnOrder(Now.AddDays(5), 10)]),
        };

        var sut = ChurnTrainer.Train(store, Now, new ChurnOptions { MinRepeatCustomers = 20 });

        // Repeat = two distinct purchase days before now: a and f only (b's are one day; d's and e's second orders are not purchases).
        Assert.Null(sut.Model);
        Assert.Equal("not enough data yet: 2 customers with repeat orders, 20 needed", sut.NotEnoughData);
        Assert.Equal(2, sut.RepeatCustomers);
    }

    [Fact]
    public void Backtest_OrdersInTheLabelWindowChanged_OnlyLabelsChange()
    {
        // A random split (or CV) would train on some held-out customers' labels, so its held-out scores would move when the
        // label window changes. A time split trains only on history before the cutoff: every score stays bit-identical.
        var store = ChurnSimulation.Store(800, Now, 700, seed: 5);
        var cutoff = Now.AddDays(-90);
        var original = Cut(store, Now);
        var altered = original.Select((c, i) => c with
        {
            Orders = i % 2 == 0
                ? c.Orders.Where(o => o.At < cutoff).ToArray()
                : c.Orders.Append(new ChurnOrder(cutoff.AddDays(10), 50)).ToArray(),
        }).ToArray();
        var options = new ChurnOptions { Seed = 3 };

        var a = ChurnTrainer.Backtest(original, cutoff, Now, options);
        var b = ChurnTrainer.Backtest(altered, cutoff, Now, options);

        Assert.Equal(cutoff.AddDays(-90), a.TrainingCutoff);
        Assert.Contains(ChurnTrainer.Discriminative, a.Scores.Keys);
        Assert.NotEqual(a.Labels, b.Labels);
        Assert.Equal(a.Scores.Keys.Order(), b.Scores.Keys.Order());
        foreach (var (name, scores) in a.Scores) Assert.Equal(scores, b.Scores[name]);
    }

    /// <summary>
    /// The forecast check counts what BG/NBD forecasts: new purchase days after the cutoff, within the window, by customers
    /// who had bought before it. A second order on the cutoff's own day, two orders on one day, a cancelled order, an order
    /// as the window ends or after it and a customer who first bought after the cutoff add nothing; an order a minute before
    /// the end counts.
    /// </summary>
    [Fact]
    public void ForecastCheck_CountsNewPurchaseDaysInTheWindow_ByCustomersKnownAtTheCutoff()
    {
        var cutoff = new DateTime(2026, 11, 20, 12, 0, 0, DateTimeKind.Utc);
        var a = new CustomerHistory("a",
        [
            new ChurnOrder(new DateTime(2026, 10, 1, 10, 0, 0), 40), new ChurnOrder(new DateTime(2026, 11, 20, 9, 0, 0), 30),
            new ChurnOrder(new DateTime(2026, 11, 20, 15, 0, 0), 20), // the cutoff's day, already a purchase day
            new ChurnOrder(new DateTime(2026, 11, 25, 10, 0, 0), 25), new ChurnOrder(new DateTime(2026, 11, 25, 18, 0, 0), 15), // one day
            new ChurnOrder(new DateTime(2026, 11, 27, 10, 0, 0), 50, Cancelled: true, CancelledAt: new DateTime(2026, 11, 28)),
            new ChurnOrder(new DateTime(2026, 11, 30, 11, 59, 0), 45), // a minute before the window ends: counts
            new ChurnOrder(new DateTime(2026, 12, 5, 10, 0, 0), 35), // after the 10-day window
        ]);
        var e = new CustomerHistory("e", [new ChurnOrder(new DateTime(2026, 10, 3), 40), new ChurnOrder(new DateTime(2026, 11, 30, 12, 0, 0), 40)]); // as it ends: not
        var b = new CustomerHistory("b", [new ChurnOrder(new DateTime(2026, 11, 22), 60), new ChurnOrder(new DateTime(2026, 11, 26), 60)]);
        var c = new CustomerHistory("c", [new ChurnOrder(new DateTime(2026, 11, 1), 0, Refunded: 10), new ChurnOrder(new DateTime(2026, 11, 24), 10)]);
        var bg = new BgNbd(0.6, 40, 0.8, 3);

        var check = ChurnForecastCheck.Of([a, b, c, e], bg, cutoff, 10);

        Assert.Equal((2, 2), (check.Customers, check.Actual));
        Assert.Equal(bg.ExpectedOrders(RepeatSummary.From(a, cutoff), 10) + bg.ExpectedOrders(RepeatSummary.From(e, cutoff), 10), check.Forecast, 12);
        Assert.Equal(2 / check.Forecast, check.Ratio, 12);
    }

    /// <summary>
    /// On a store whose customers buy the way BG/NBD assumes, the held-out forecast is close to what happened; a busy
    /// season in the window (every purchase there echoed the next day) leaves the forecast exactly as it was, fitted on
    /// history before the window, and the check shows it fell short.
    /// </summary>
    [Fact]
    public void Backtest_ForecastCheck_IsCloseOnBgNbdCustomers_AndShowsABusySeasonItCouldNotKnow()
    {
        var store = Cut(ChurnSimulation.Store(1500, Now, 700, seed: 11), Now);
        var cutoff = Now.AddDays(-90);
        var busy = store.Select(c => c with
        {
            Orders = c.Orders.Concat(c.Orders.Where(o => o.At >= cutoff && o.At < Now.AddDays(-1)).Select(o => o with { At = o.At.AddDays(1) })).ToArray(),
        }).ToArray();

        var usual = ChurnTrainer.Backtest(store, cutoff, Now).Forecast!;
        var season = ChurnTrainer.Backtest(busy, cutoff, Now).Forecast!;

        Assert.InRange(usual.Ratio, 0.85, 1.15);
        Assert.Equal(usual.Forecast, season.Forecast, 9);
        Assert.Equal(usual.Customers, season.Customers);
        Assert.True(season.Ratio > 1.6 * usual.Ratio, $"{season.Ratio} against {usual.Ratio}");
        var trained = ChurnTrainer.Train(store, Now);
        Assert.Equal((trained.HeldOutCutoff, trained.HorizonDays), (trained.Forecast!.From, trained.Forecast.HorizonDays));
        Assert.Equal(trained.HeldOutRows, trained.Forecast.Customers); // the page names the held-out customers as the forecast's
        var bt = ChurnTrainer.Backtest(store, cutoff, Now);
        Assert.Equal(ChurnForecastCheck.Of(store, bt.BgNbd!, cutoff, bt.HorizonDays), bt.Forecast);
    }

    [Theory]
    [InlineData(20, 30)]   // 80th percentile 20 days -> clamped up to MinHorizonDays
    [InlineData(70, 70)]
    [InlineData(500, 365)] // clamped down to MaxHorizonDays
    public void Horizon_RegularGaps_IsTheGapClampedToBounds(int gap, int expected)
    {
        var store = Enumerable.Range(0, 30).Select(i => new CustomerHistory($"c{i}",
            Enumerable.Range(0, 4).Select(k => new ChurnOrder(Now.AddDays(-1 - gap * k - i % 3), 10)).ToArray())).ToArray();

        var (days, rule) = ChurnTrainer.Horizon(store, Now);

        Assert.Equal(expected, days);
        Assert.Contains("90 gaps", rule);
    }

    [Fact]
    public void Horizon_FewRepeatGaps_IsTheDefault()
    {
        var store = Enumerable.Range(0, 10).Select(i => new CustomerHistory($"c{i}",
            [new ChurnOrder(Now.AddDays(-100), 10), new ChurnOrder(Now.AddDays(-40), 10)])).ToArray();

        var (days, rule) = ChurnTrainer.Horizon(store, Now, new ChurnOptions { DefaultHorizonDays = 120 });

        Assert.Equal(120, days);
        Assert.Contains("only 10 gaps", rule);
    }

    [Theory]
    [InlineData("MinHorizonDays")]
    [InlineData("MaxHorizonDays")]
    [InlineData("DefaultHorizonDays")]
    [InlineData("HorizonGapQuantile")]
    [InlineData("MinHeldOut")]
    [InlineData("GammaGammaTrimShare")]
    public void Options_BadValue_ThrowsNamingTheOption(string option)
    {
        var sut = option switch
        {
            "MinHorizonDays" => new ChurnOptions { MinHorizonDays = 0 },
            "MaxHorizonDays" => new ChurnOptions { MaxHorizonDays = 10 },
            "DefaultHorizonDays" => new ChurnOptions { DefaultHorizonDays = 400 },
            "HorizonGapQuantile" => new ChurnOptions { HorizonGapQuantile = 1.5 },
            "MinHeldOut" => new ChurnOptions { MinHeldOut = 0 },
            _ => new ChurnOptions { GammaGammaTrimShare = -0.1 },
        };

        var ex = Assert.Throws<ArgumentOutOfRangeException>(sut.Validate);

        Assert.Equal(option, ex.ParamName);
    }
}
