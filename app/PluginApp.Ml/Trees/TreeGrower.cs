using System.Runtime.Intrinsics;
using PluginApp.Ml.Common;

namespace PluginApp.Ml.Trees;

/// <summary>
/// Grows one histogram tree best-first (the leaf with the largest gain splits next) on second-order
/// statistics, as in XGBoost (Chen and Guestrin 2016) and LightGBM (Ke et al. 2017). A child's histogram
/// is the parent's minus its sibling's, so only the smaller child is ever scanned.
/// </summary>
internal sealed class TreeGrower
{
    private readonly GbdtOptions _o;
    private readonly byte[] _bins;
    private readonly byte[][] _columnBins; // same bins per feature, so a partition scans one byte array in row order
    private readonly int _columns;
    private readonly int[] _binOffset;
    private readonly int[] _binCount; // real bins + 1 missing bin
    private readonly float[][] _upper;
    private readonly int _totalBins;
    private readonly int _threads;

    public TreeGrower(GbdtOptions o, byte[] bins, int columns, float[][] upper, int threads)
    {
        _o = o;
        _bins = bins;
        _columns = columns;
        _upper = upper;
        _threads = threads;
        _binOffset = new int[columns];
        _binCount = new int[columns];
        var off = 0;
        for (var f = 0; f < columns; f++)
        {
            _binOffset[f] = off;
            _binCount[f] = upper[f].Length + 1;
            off += _binCount[f];
        }
        _totalBins = off;
        var n = bins.Length / columns;
        _columnBins = new byte[columns][];
        Parallel.For(0, columns, f =>
        {
            var c = new byte[n];
            for (var r = 0; r < n; r++) c[r] = bins[r * columns + f];
            _columnBins[f] = c;
        });
    }

    private sealed class Node
    {
        public int Begin, End, Depth, Id;
        public double G, H;
        public double[] Hist = [];
        public Split? Best;
    }

    private sealed record Split(int Feature, int Bin, bool DefaultLeft, double Gain, double GL, double HL, int CountLeft);

    private readonly Stack<double[]> _pool = new();
    private bool[]? _allowed;

    /// <summary>Doubles per histogram bin: sum g, sum h, count and one pad so a bin is one 32-byte vector.</summary>
    private const int Stride = 4;

    /// <summary>Leaf ranges of the last tree: rows[Begin..End) ended in node Leaf.</summary>
    public List<(int Begin, int End, int Leaf)> LeafRanges { get; } = [];

    private double[] Rent()
    {
        double[]? h;
        lock (_pool) _pool.TryPop(out h);
        if (h != null) { Array.Clear(h); return h; }
        return new double[_totalBins * Stride];
    }

    /// <summary>Grows a tree on rows[0..count); rows is reordered in place into leaf ranges.</summary>
    public RegressionTree Grow(int[] rows, int count, double[] grad, double[] hess, bool[]? allowed = null)
    {
        _allowed = allowed;
        LeafRanges.Clear();
        var feature = new List<int>();
        var threshold = new List<float>();
        var thresholdBin = new List<byte>();
        var defaultLeft = new List<bool>();
        var left = new List<int>();
        var right = new List<int>();
        var value = new List<double>();
        int NewNode(double g, double h)
        {
            feature.Add(-1); threshold.Add(0); thresholdBin.Add(0); defaultLeft.Add(false);
            left.Add(-1); right.Add(-1); value.Add(LeafValue(g, h));
            return feature.Count - 1;
        }

        var root = new Node { Begin = 0, End = count, Depth = 0 };
        root.Hist = BuildHistogram(rows, 0, count, grad, hess);
        for (var i = 0; i < count; i++) { root.G += grad[rows[i]]; root.H += hess[rows[i]]; }
        root.Id = NewNode(root.G, root.H);
        root.Best = FindSplit(root);
        var open = new List<Node> { root };
        var leaves = 1;
        var scratch = new int[count];
        while (_o.MaxLeaves == 0 || leaves < _o.MaxLeaves)
        {
            Node? pick = null;
            foreach (var n in open)
                if (n.Best != null && (pick == null || n.Best.Gain > pick.Best!.Gain)) pick = n;
            if (pick == null) break;
            open.Remove(pick);
            var s = pick.Best!;
            var mid = Partition(rows, pick.Begin, pick.End, s, scratch);
            var l = new Node { Begin = pick.Begin, End = mid, Depth = pick.Depth + 1, G = s.GL, H = s.HL };
            var r = new Node { Begin = mid, End = pick.End, Depth = pick.Depth + 1, G = pick.G - s.GL, H = pick.H - s.HL };
            var (small, large) = l.End - l.Begin <= r.End - r.Begin ? (l, r) : (r, l);
            small.Hist = BuildHistogram(rows, small.Begin, small.End, grad, hess);
            large.Hist = pick.Hist;
            System.Numerics.Tensors.TensorPrimitives.Subtract(large.Hist, small.Hist, large.Hist);
            l.Id = NewNode(l.G, l.H);
            r.Id = NewNode(r.G, r.H);
            feature[pick.Id] = s.Feature;
            thresholdBin[pick.Id] = (byte)s.Bin;
            threshold[pick.Id] = _upper[s.Feature][s.Bin];
            defaultLeft[pick.Id] = s.DefaultLeft;
            left[pick.Id] = l.Id;
            right[pick.Id] = r.Id;
            l.Best = FindSplit(l);
            r.Best = FindSplit(r);
            open.Add(l);
            open.Add(r);
            leaves++;
        }
        foreach (var n in open)
        {
            LeafRanges.Add((n.Begin, n.End, n.Id));
            lock (_pool) _pool.Push(n.Hist);
        }
        return new RegressionTree
        {
            Feature = feature.ToArray(), Threshold = threshold.ToArray(), ThresholdBin = thresholdBin.ToArray(),
            DefaultLeft = defaultLeft.ToArray(), Left = left.ToArray(), Right = right.ToArray(), Value = value.ToArray(),
        };
    }

    private double LeafValue(double g, double h) => -g / (h + _o.L2) * _o.LearningRate;

    private unsafe int Partition(int[] rows, int begin, int end, Split s, int[] scratch)
    {
        var f = s.Feature;
        var missing = _binCount[f] - 1;
        int nl = begin, nr = 0;
        fixed (int* rp = rows, sp = scratch)
        fixed (byte* col = _columnBins[f])
        {
            for (var i = begin; i < end; i++)
            {
                var r = rp[i];
                var b = col[r];
                var goLeft = b == missing ? s.DefaultLeft : b <= s.Bin;
                // Branch-free: the direction is random per row, so a branch would mispredict half the time.
                rp[nl] = r;
                sp[nr] = r;
                var l = goLeft ? 1 : 0;
                nl += l;
                nr += 1 - l;
            }
        }
        Array.Copy(scratch, 0, rows, nl, nr);
        return nl;
    }

    /// <summary>Histogram of (sum g, sum h, count) per bin. Large nodes are split across threads by feature: each
    /// bin is still summed by one thread in row order, so the result does not depend on the thread count.</summary>
    private double[] BuildHistogram(int[] rows, int begin, int end, double[] grad, double[] hess)
    {
        var h = Rent();
        if (_threads == 1 || end - begin < 2048 || _columns < 2)
        {
            AccumulateRows(h, rows, begin, end, grad, hess, 0, _columns);
            return h;
        }
        var parts = Math.Min(_threads, _columns);
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = _threads }, t =>
            AccumulateRows(h, rows, begin, end, grad, hess, t * _columns / parts, (t + 1) * _columns / parts));
        return h;
    }

    private unsafe void AccumulateRows(double[] h, int[] rows, int begin, int end, double[] grad, double[] hess, int f0, int f1)
    {
        var cols = _columns;
        // Hot loop of the whole trainer: raw pointers drop the bounds checks on four arrays per update.
        fixed (double* hp = h, gp = grad, sp = hess)
        fixed (byte* bp = _bins)
        fixed (int* op = _binOffset, rp = rows)
        {
            for (var i = begin; i < end; i++)
            {
                var r = rp[i];
                // (g, h, 1, 0) added to a 32-byte bin in one vector read-modify-write.
                var add = Vector256.Create(gp[r], sp[r], 1.0, 0.0);
                var rb = bp + (long)r * cols;
                for (var f = f0; f < f1; f++)
                {
                    var e = hp + (op[f] + rb[f]) * Stride;
                    Vector256.Store(Vector256.Load(e) + add, e);
                }
            }
        }
    }

    private Split? FindSplit(Node node)
    {
        var count = node.End - node.Begin;
        if (node.Depth >= _o.MaxDepth || count < 2 * _o.MinLeafSize) return null;
        var lambda = _o.L2;
        var parentScore = node.G * node.G / (node.H + lambda);
        Split? best = null;
        var h = node.Hist;
        for (var f = 0; f < _columns; f++)
        {
            if (_allowed != null && !_allowed[f]) continue;
            var off = _binOffset[f] * Stride;
            var missing = _binCount[f] - 1;
            var mk = off + missing * Stride;
            double mg = h[mk], mh = h[mk + 1];
            var mc = (int)h[mk + 2];
            double gl = 0, hl = 0;
            var cl = 0;
            if (mc == 0)
            {
                // Common case without missing values: one direction, so a tight loop without the side switch.
                var bestGain = best?.Gain ?? _o.MinSplitGain;
                var bestBin = -1;
                double bestGl = 0, bestHl = 0;
                var bestCl = 0;
                for (var b = 0; b < missing - 1; b++)
                {
                    var k = off + b * Stride;
                    var c = (int)h[k + 2];
                    if (c == 0) continue;
                    gl += h[k]; hl += h[k + 1]; cl += c;
                    if (cl < _o.MinLeafSize) continue;
                    if (count - cl < _o.MinLeafSize) break;
                    double gr = node.G - gl, hr = node.H - hl;
                    if (hl < _o.MinChildWeight || hr < _o.MinChildWeight) continue;
                    var gain = gl * gl / (hl + lambda) + gr * gr / (hr + lambda) - parentScore;
                    if (gain > bestGain) { bestGain = gain; bestBin = b; bestGl = gl; bestHl = hl; bestCl = cl; }
                }
                if (bestBin >= 0)
                    best = new Split(f, bestBin, bestHl >= node.H - bestHl, bestGain, bestGl, bestHl, bestCl);
                continue;
            }
            for (var b = 0; b < missing; b++)
            {
                var k = off + b * Stride;
                if (h[k + 2] == 0 && b < missing - 1) continue; // an empty bin adds no new threshold
                gl += h[k]; hl += h[k + 1]; cl += (int)h[k + 2];
                // b == missing-1 puts every present value left; only useful when missing values go right.
                for (var side = 0; side < 2; side++)
                {
                    var missLeft = side == 0;
                    if (mc == 0 && !missLeft) break;
                    if (b == missing - 1 && missLeft) continue;
                    double gL = gl + (missLeft ? mg : 0), hL = hl + (missLeft ? mh : 0);
                    var cL = cl + (missLeft ? mc : 0);
                    double gR = node.G - gL, hR = node.H - hL;
                    var cR = count - cL;
                    if (cL < _o.MinLeafSize || cR < _o.MinLeafSize || hL < _o.MinChildWeight || hR < _o.MinChildWeight) continue;
                    var gain = gL * gL / (hL + lambda) + gR * gR / (hR + lambda) - parentScore;
                    if (gain <= _o.MinSplitGain || (best != null && gain <= best.Gain)) continue;
                    // Without missing values in this node, unseen NaNs follow the heavier child.
                    var defaultLeft = mc == 0 ? hL >= hR : missLeft;
                    best = new Split(f, b, defaultLeft, gain, gL, hL, cL);
                }
            }
        }
        return best;
    }
}
