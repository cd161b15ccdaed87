using PluginApp.Ml.Recommenders;

namespace PluginApp.Ml.Tests;

public class BaselineTests
{
    [Fact]
    public void Popularity_NoDecay_RanksByTotalWeight()
    {
        var sut = new PopularityTrainer();
        Interaction[] data = [new(0, 1), new(1, 1), new(2, 2, 3f), new(0, 0)];

        var model = sut.Train(data, 4);

        Assert.Equal([2, 1, 0], model.Recommend(3).Select(s => s.Item));
        Assert.Equal([1, 0], model.Recommend(2, i => i == 2).Select(s => s.Item));
    }

    [Fact]
    public void Popularity_HalfLifeOneDay_OldInteractionsCountHalf()
    {
        var sut = new PopularityTrainer(new PopularityOptions { HalfLifeDays = 1 });
        const long day = 86400;
        Interaction[] data = [new(0, 0, 1f, 0), new(0, 0, 1f, 0), new(0, 0, 1f, 0), new(1, 1, 1f, 2 * day)];

        var model = sut.Train(data, 2);

        Assert.Equal(0.75f, model.Scores[0], 1e-6f);
        Assert.Equal(1f, model.Scores[1], 1e-6f);
        Assert.Equal(1, model.Recommend(1)[0].Item);
    }

    [Fact]
    public void CoOccurrence_TwoBasketsShareItems_LiftMatchesHandComputed()
    {
        var sut = new CoOccurrenceTrainer(new CoOccurrenceOptions { MinCoCount = 1, SupportShrinkage = 0 });
        // Baskets: {0,1}, {0,1}, {0,2}, {3}. N = 4, n0 = 3, n1 = 2, n01 = 2 -> lift = 2*4/(3*2) = 4/3.
        Interaction[] data = [new(0, 0), new(0, 1), new(1, 0), new(1, 1), new(2, 0), new(2, 2), new(3, 3)];

        var model = sut.Train(data, 4, 4);

        var n = model.Neighbors(0);
        Assert.Equal(4f / 3f, n.Single(x => x.Item == 1).Score, 1e-6f);
        Assert.Equal(4f / 3f, n.Single(x => x.Item == 2).Score, 1e-6f);
        Assert.Equal(4f / 3f, model.Neighbors(1).Single().Score, 1e-6f);
        var cart = model.RecommendForCart([1], 2);
        Assert.Equal(0, cart[0].Item);
        Assert.DoesNotContain(cart, s => s.Item == 1);
    }

    [Fact]
    public void CoOccurrence_MinCoCount_DropsRarePairs()
    {
        var sut = new CoOccurrenceTrainer(new CoOccurrenceOptions { MinCoCount = 2, SupportShrinkage = 0 });
        Interaction[] data = [new(0, 0), new(0, 1), new(1, 0), new(1, 1), new(2, 0), new(2, 2)];

        var model = sut.Train(data, 3, 3);

        Assert.Equal([1], model.Neighbors(0).Select(x => x.Item));
    }

    [Fact]
    public void CoOccurrenceAndPopularity_SaveLoad_RoundTrip()
    {
        Interaction[] data = [new(0, 0), new(0, 1), new(1, 0), new(1, 1), new(2, 0), new(2, 2)];
        var sut = new CoOccurrenceTrainer(new CoOccurrenceOptions { MinCoCount = 1, SupportShrinkage = 0 }).Train(data, 3, 3);
        var pop = new PopularityTrainer().Train(data, 3);
        using var a = new MemoryStream();
        using var b = new MemoryStream();
        sut.Save(a);
        pop.Save(b);
        a.Position = 0;
        b.Position = 0;

        var sut2 = CoOccurrenceModel.Load(a);
        var pop2 = PopularityModel.Load(b);

        Assert.Equal(sut.RecommendForCart([0], 3), sut2.RecommendForCart([0], 3));
        Assert.Equal(pop.Scores, pop2.Scores);
    }

    [Fact]
    public void Constructor_BadHyperparameter_ThrowsNamingIt()
    {
        Assert.Equal("MaxNeighbors", Assert.Throws<ArgumentOutOfRangeException>(() => new CoOccurrenceTrainer(new CoOccurrenceOptions { MaxNeighbors = 0 })).ParamName);
        Assert.Equal("HalfLifeDays", Assert.Throws<ArgumentOutOfRangeException>(() => new PopularityTrainer(new PopularityOptions { HalfLifeDays = -1 })).ParamName);
    }
}
