using System.Numerics;
using System.Runtime.Intrinsics;

namespace PluginApp.Ml.Common;

/// <summary>A scored item returned by recommenders.</summary>
/// <param name="Item">Item index.</param>
/// <param name="Score">Model score; larger is better.</param>
public readonly record struct ScoredItem(int Item, float Score);

/// <summary>Partial selection of the K best scores with a small min-heap: O(n log k), no full sort.</summary>
public static class TopK
{
    /// <summary>Returns the k highest scores, best first; ties go to the lower item index so results are stable.</summary>
    /// <param name="exclude">Items never returned; asked only about an item that would otherwise enter the top k.</param>
    public static ScoredItem[] Select(ReadOnlySpan<float> scores, int k, Func<int, bool>? exclude = null)
    {
        if (k <= 0) return [];
        var heap = new ScoredItem[k];
        var size = 0;
        var i = 0;
        for (; i < scores.Length && size < k; i++)
        {
            var s = scores[i];
            if (float.IsNaN(s) || float.IsNegativeInfinity(s) || (exclude != null && exclude(i))) continue;
            heap[size++] = new ScoredItem(i, s);
            SiftUp(heap, size - 1);
        }
        if (size == k)
        {
            // Why only strictly above the heap's worst: every item in the heap has a lower index than i, so a tie never wins,
            // and NaN and -inf never compare above. Eight scores are compared at once; most of a catalog never gets past that.
            var worst = heap[0].Score;
            if (Vector256.IsHardwareAccelerated)
                for (; i + Vector256<float>.Count <= scores.Length; i += Vector256<float>.Count)
                {
                    var above = Vector256.GreaterThan(Vector256.Create(scores.Slice(i, Vector256<float>.Count)), Vector256.Create(worst)).ExtractMostSignificantBits();
                    for (; above != 0; above &= above - 1)
                        Offer(heap, ref worst, scores, i + BitOperations.TrailingZeroCount(above), exclude);
                }
            for (; i < scores.Length; i++)
                if (scores[i] > worst) Offer(heap, ref worst, scores, i, exclude);
        }
        var result = heap.AsSpan(0, size).ToArray();
        Array.Sort(result, (a, b) => Better(a, b) ? -1 : Better(b, a) ? 1 : 0);
        return result;
    }

    /// <summary>Item i in place of the heap's worst if it still beats it (the worst may have risen since i was compared) and is not excluded.</summary>
    private static void Offer(ScoredItem[] heap, ref float worst, ReadOnlySpan<float> scores, int i, Func<int, bool>? exclude)
    {
        var s = scores[i];
        if (!(s > worst) || (exclude != null && exclude(i))) return;
        heap[0] = new ScoredItem(i, s);
        SiftDown(heap, heap.Length, 0);
        worst = heap[0].Score;
    }

    private static bool Better(ScoredItem a, ScoredItem b) => a.Score > b.Score || (a.Score == b.Score && a.Item < b.Item);

    private static void SiftUp(ScoredItem[] h, int i)
    {
        while (i > 0)
        {
            var p = (i - 1) / 2;
            if (!Better(h[p], h[i])) break;
            (h[p], h[i]) = (h[i], h[p]);
            i = p;
        }
    }

    private static void SiftDown(ScoredItem[] h, int n, int i)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < n && Better(h[m], h[l])) m = l;
            if (r < n && Better(h[m], h[r])) m = r;
            if (m == i) return;
            (h[m], h[i]) = (h[i], h[m]);
            i = m;
        }
    }
}
