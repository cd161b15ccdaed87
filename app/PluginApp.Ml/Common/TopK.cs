namespace PluginApp.Ml.Common;

/// <summary>A scored item returned by recommenders.</summary>
/// <param name="Item">Item index.</param>
/// <param name="Score">Model score; larger is better.</param>
public readonly record struct ScoredItem(int Item, float Score);

/// <summary>Partial selection of the K best scores with a small min-heap: O(n log k), no full sort.</summary>
public static class TopK
{
    /// <summary>Returns the k highest scores, best first; ties go to the lower item index so results are stable.</summary>
    public static ScoredItem[] Select(ReadOnlySpan<float> scores, int k, Func<int, bool>? exclude = null)
    {
        if (k <= 0) return [];
        var heap = new ScoredItem[k];
        var size = 0;
        for (var i = 0; i < scores.Length; i++)
        {
            var s = scores[i];
            if (float.IsNaN(s) || float.IsNegativeInfinity(s)) continue;
            if (exclude != null && exclude(i)) continue;
            var item = new ScoredItem(i, s);
            if (size < k) { heap[size++] = item; SiftUp(heap, size - 1); }
            else if (Better(item, heap[0])) { heap[0] = item; SiftDown(heap, size, 0); }
        }
        var result = heap.AsSpan(0, size).ToArray();
        Array.Sort(result, (a, b) => Better(a, b) ? -1 : Better(b, a) ? 1 : 0);
        return result;
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
