using PluginApp.Ml.Recommenders;

namespace PluginApp.Ml.Tests;

public class AlsTests
{
    private static readonly AlsOptions Small = new() { Factors = 4, Iterations = 10, Regularization = 1, Alpha = 10, Seed = 3 };

    [Theory]
    [InlineData(AlsSolver.ConjugateGradient)]
    [InlineData(AlsSolver.Cholesky)]
    public void Train_BlockStructuredInteractions_RanksInBlockItemsFirst(AlsSolver solver)
    {
        var sut = new AlsTrainer(Small with { Solver = solver });

        var model = sut.Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items);

        for (var u = 0; u < Synthetic.Users; u++)
        {
            // A user who already has most of the block can only be offered its few remaining items.
            var k = Math.Min(5, Synthetic.ItemsPerBlock - model.SeenItems(u).Length);
            var top = model.RecommendForUser(u, k);
            Assert.Equal(k, top.Length);
            Assert.All(top, s => Assert.Equal(Synthetic.BlockOfUser(u), Synthetic.BlockOfItem(s.Item)));
            Assert.All(top, s => Assert.DoesNotContain(s.Item, model.SeenItems(u).ToArray()));
        }
    }

    [Fact]
    public void RecommendForCart_ItemsFromOneBlock_ReturnsThatBlockAndNotTheCart()
    {
        var model = new AlsTrainer(Small).Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items);
        var sut = model;

        for (var b = 0; b < Synthetic.Blocks; b++)
        {
            int[] cart = [b * Synthetic.ItemsPerBlock, b * Synthetic.ItemsPerBlock + 3, b * Synthetic.ItemsPerBlock + 7];
            var top = sut.RecommendForCart(cart, 8);
            Assert.All(top, s => Assert.Equal(b, Synthetic.BlockOfItem(s.Item)));
            Assert.All(top, s => Assert.DoesNotContain(s.Item, cart));
        }
    }

    [Fact]
    public void FoldIn_TrainingUsersItems_ApproximatesTrainedUserVector()
    {
        var data = Synthetic.BlockInteractions();
        var sut = new AlsTrainer(Small with { Solver = AlsSolver.Cholesky }).Train(data, Synthetic.Users, Synthetic.Items);

        var folded = sut.FoldIn(sut.SeenItems(4));

        // Cholesky training ends with an exact item solve, so folding in a user's items reproduces it closely.
        var trained = sut.UserVector(4).ToArray();
        var scoresA = sut.ScoreAll(folded);
        var scoresB = sut.ScoreAll(trained);
        for (var i = 0; i < scoresA.Length; i++) Assert.Equal(scoresB[i], scoresA[i], 0.05);
    }

    [Fact]
    public void WithoutUsers_SavedAndLoaded_HoldsNoUserRowsAndServesCartsTheSame()
    {
        var trained = new AlsTrainer(Small).Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items);

        var sut = trained.WithoutUsers();
        using var ms = new MemoryStream();
        sut.Save(ms);
        ms.Position = 0;
        var loaded = AlsModel.Load(ms);

        Assert.Equal(0, loaded.UserCount);
        Assert.Empty(loaded.UserFactors);
        Assert.Throws<ArgumentOutOfRangeException>(() => loaded.UserVector(0).Length);
        int[] cart = [1, 5, 9];
        Assert.Equal(trained.RecommendForCart(cart, 6).Select(s => s.Item), loaded.RecommendForCart(cart, 6).Select(s => s.Item));
        Assert.Equal(trained.SimilarItems(2, 5).Select(s => s.Item), loaded.SimilarItems(2, 5).Select(s => s.Item));
    }

    [Fact]
    public void SimilarItems_ItemInBlock_NeighboursInSameBlock()
    {
        var sut = new AlsTrainer(Small).Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items);

        var similar = sut.SimilarItems(25, 5);

        Assert.All(similar, s => Assert.Equal(1, Synthetic.BlockOfItem(s.Item)));
        Assert.DoesNotContain(similar, s => s.Item == 25);
    }

    [Fact]
    public void Train_SameSeedDifferentThreads_BitwiseIdenticalFactors()
    {
        var data = Synthetic.BlockInteractions();
        var sut1 = new AlsTrainer(Small with { Threads = 1 });
        var sut2 = new AlsTrainer(Small with { Threads = 2 });

        var a = sut1.Train(data, Synthetic.Users, Synthetic.Items);
        var b = sut2.Train(data.Reverse().ToArray(), Synthetic.Users, Synthetic.Items);

        Assert.Equal(a.UserFactors, b.UserFactors);
        Assert.Equal(a.ItemFactors, b.ItemFactors);
    }

    [Fact]
    public void SaveLoad_RoundTrip_IdenticalRecommendations()
    {
        var sut = new AlsTrainer(Small).Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items);
        using var ms = new MemoryStream();
        sut.Save(ms);
        ms.Position = 0;

        var loaded = AlsModel.Load(ms);

        Assert.Equal(sut.UserFactors, loaded.UserFactors);
        Assert.Equal(sut.ItemFactors, loaded.ItemFactors);
        Assert.Equal(sut.RecommendForUser(3, 10), loaded.RecommendForUser(3, 10));
        Assert.Equal(sut.RecommendForCart([1, 2], 10), loaded.RecommendForCart([1, 2], 10));
    }

    [Theory]
    [InlineData("Factors")]
    [InlineData("Regularization")]
    [InlineData("Alpha")]
    [InlineData("Iterations")]
    [InlineData("ConjugateGradientSteps")]
    [InlineData("Threads")]
    public void Constructor_BadHyperparameter_ThrowsNamingIt(string name)
    {
        var o = name switch
        {
            "Factors" => new AlsOptions { Factors = 0 },
            "Regularization" => new AlsOptions { Regularization = -1 },
            "Alpha" => new AlsOptions { Alpha = double.NaN },
            "Iterations" => new AlsOptions { Iterations = 0 },
            "ConjugateGradientSteps" => new AlsOptions { ConjugateGradientSteps = 0 },
            _ => new AlsOptions { Threads = -2 },
        };

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new AlsTrainer(o));

        Assert.Equal(name, ex.ParamName);
    }

    [Fact]
    public void Train_ItemOutOfRange_Throws()
    {
        var sut = new AlsTrainer(Small);

        Assert.Throws<ArgumentOutOfRangeException>(() => sut.Train([new Interaction(0, 5)], 1, 5));
    }
}
