using PluginApp.Ml.Common;

namespace PluginApp.Ml.Tests;

public class TopKTests
{
    [Theory]
    [InlineData(1, 8)]
    [InlineData(7, 64)]
    [InlineData(4001, 64)]
    [InlineData(13, 12)]
    [InlineData(9, 5)]
    public void MatrixVector_ScoresEveryRow_AsItsDotProduct(int rows, int cols)
    {
        var random = new Random(rows * 31 + cols);
        var matrix = Enumerable.Range(0, rows * cols).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var vector = Enumerable.Range(0, cols).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var result = new float[rows + 3];

        MatrixVector.Multiply(matrix, rows, vector, result);

        for (var r = 0; r < rows; r++)
        {
            var expected = 0.0;
            for (var c = 0; c < cols; c++) expected += (double)matrix[r * cols + c] * vector[c];
            Assert.Equal(expected, result[r], 1e-4);
        }
        Assert.All(result[rows..], x => Assert.Equal(0f, x));
    }

    [Fact]
    public void Select_WithAnExclusion_SkipsThoseItems_AndAsksOnlyAboutItemsThatWouldRank()
    {
        var random = new Random(5);
        var scores = Enumerable.Range(0, 4000).Select(_ => (float)random.NextDouble()).ToArray();
        var excluded = Enumerable.Range(0, 4000).OrderByDescending(i => scores[i]).Where((_, n) => n % 3 == 0).Take(20).ToHashSet();
        var asked = 0;

        var top = TopK.Select(scores, 30, i => { asked++; return excluded.Contains(i); });

        var expected = Enumerable.Range(0, 4000).Where(i => !excluded.Contains(i)).OrderByDescending(i => scores[i]).Take(30).ToArray();
        Assert.Equal(expected, top.Select(s => s.Item).ToArray());
        // A catalog of 4,000 asks about the few hundred items that beat the heap's worst on the way, not every item.
        Assert.InRange(asked, 30, 1000);
    }

    [Theory]
    [InlineData(0, 5)]
    [InlineData(3, 5)]
    [InlineData(37, 10)]
    [InlineData(4003, 30)]
    [InlineData(4003, 1)]
    public void Select_TiesNaNAndMinusInfinity_GivesTheSortedBest_TiesToTheLowerIndex(int n, int k)
    {
        for (var seed = 0; seed < 20; seed++)
        {
            var random = new Random(seed);
            // Few distinct values, so ties are everywhere; some NaN and -inf, which never rank.
            var scores = Enumerable.Range(0, n).Select(_ => random.Next(12) switch
            {
                0 => float.NaN,
                1 => float.NegativeInfinity,
                var v => v / 4f,
            }).ToArray();
            var excluded = new HashSet<int>(Enumerable.Range(0, n).Where(i => i % 7 == 3));

            var top = TopK.Select(scores, k, excluded.Contains);

            var expected = Enumerable.Range(0, n).Where(i => !float.IsNaN(scores[i]) && !float.IsNegativeInfinity(scores[i]) && !excluded.Contains(i))
                .OrderByDescending(i => scores[i]).ThenBy(i => i).Take(k).Select(i => new ScoredItem(i, scores[i])).ToArray();
            Assert.Equal(expected, top);
        }
    }
}
