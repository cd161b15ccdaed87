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

    /// <summary>
    /// A cart's vector solves the fold-in's normal equations (Y^T Y + lambda I + sum (c - 1) y y^T) x = sum c y, whether it
    /// is a few items (solved through the inverse computed once per model) or many (factorized per call), and asking again
    /// after other carts gives the same vector.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(24)]
    public void FoldIn_ACart_SolvesTheNormalEquations(int items)
    {
        var sut = new AlsTrainer(Small with { Factors = 8 }).Train(Synthetic.BlockInteractions(), Synthetic.Users, Synthetic.Items);
        var cart = Enumerable.Range(0, items).Select(i => (i * 7) % Synthetic.Items).ToArray();
        cart[0] = cart[^1]; // a repeated item counts twice: one vector, twice the confidence

        var x = sut.FoldIn(cart);
        sut.FoldIn([1, 2]);
        sut.FoldIn(Enumerable.Range(0, 30).ToArray());

        Assert.Equal(x, sut.FoldIn(cart));
        int k = sut.Factors;
        var a = new double[k, k];
        var b = new double[k];
        for (var i = 0; i < sut.ItemCount; i++)
        {
            var y = sut.ItemVector(i);
            for (var p = 0; p < k; p++)
                for (var q = 0; q < k; q++) a[p, q] += y[p] * y[q];
        }
        for (var p = 0; p < k; p++) a[p, p] += sut.Regularization;
        foreach (var g in cart.GroupBy(i => i))
        {
            var c = 1 + sut.Alpha * g.Count();
            var y = sut.ItemVector(g.Key);
            for (var p = 0; p < k; p++)
            {
                b[p] += c * y[p];
                for (var q = 0; q < k; q++) a[p, q] += (c - 1) * y[p] * y[q];
            }
        }
        for (var p = 0; p < k; p++)
        {
            var ax = 0.0;
            for (var q = 0; q < k; q++) ax += a[p, q] * x[q];
            Assert.True(Math.Abs(ax - b[p]) <= 1e-3 * Math.Max(1, Math.Abs(b[p])), $"row {p}: A x = {ax}, b = {b[p]}");
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
