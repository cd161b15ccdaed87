using System.Diagnostics;
using System.Globalization;
using PluginApp.Ml.Common;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Recommenders;

namespace MlBench;

/// <summary>
/// Online Retail, temporal split. Train on invoices before the cutoff (customer x product, weight = number of
/// invoice lines). Known-customer protocol: rank the catalog for each training customer who buys again after the
/// cutoff, excluding products they bought before; relevant = new products bought after the cutoff.
/// Cart protocol: every later invoice with at least 2 known products; one product (seeded choice) is held out,
/// the rest is the anonymous cart.
/// </summary>
internal static class RetailBench
{
    private sealed record Line(string Invoice, string Product, string? Customer, DateTime Time);

    /// <summary>Grid over alpha and lambda on a validation window that ends at the evaluation cutoff:
    /// train before validationCutoff, score the customers' baskets in [validationCutoff, cutoff).</summary>
    public static AlsOptions Tune(string path, DateTime validationCutoff, DateTime cutoff, AlsOptions start, TextWriter log)
    {
        var lines = Load(path).Where(l => l.Time < cutoff).ToList();
        var best = start;
        var bestNdcg = -1.0;
        foreach (var a in new[] { 1.0, 5, 20 })
            foreach (var r in new[] { 1.0, 5, 20 })
            {
                var o = start with { Alpha = a, Regularization = r };
                var t = new Table();
                Evaluate(lines, validationCutoff, t, o, TextWriter.Null, out var ndcg);
                log.WriteLine(FormattableString.Invariant($"  tune retail alpha={a} reg={r}: valid NDCG@10 {ndcg:F4}"));
                if (ndcg > bestNdcg) { bestNdcg = ndcg; best = o; }
            }
        log.WriteLine($"  retail chosen: {best}");
        return best;
    }

    public static void Run(string path, DateTime cutoff, Table table, AlsOptions als, TextWriter log) =>
        Evaluate(Load(path), cutoff, table, als, log, out _);

    private static List<Line> Load(string path)
    {
        var lines = new List<Line>();
        var first = true;
        int cInv = 0, cCode = 1, cQty = 3, cDate = 4, cCust = 6;
        foreach (var f in Csv.Rows(path))
        {
            if (first)
            {
                first = false;
                cInv = Csv.Col(f, "InvoiceNo"); cCode = Csv.Col(f, "StockCode"); cQty = Csv.Col(f, "Quantity");
                cDate = Csv.Col(f, "InvoiceDate"); cCust = Csv.Col(f, "CustomerID");
                continue;
            }
            if (f[cInv].StartsWith('C') || !Csv.TryNum(f[cQty], out var q) || q <= 0) continue;
            // Postage, fees and manual adjustments have no digit in their code; they are not products.
            if (!f[cCode].Any(char.IsDigit)) continue;
            var time = DateTime.ParseExact(f[cDate], "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            lines.Add(new Line(f[cInv], f[cCode].ToUpperInvariant(), f[cCust].Length == 0 ? null : f[cCust], time));
        }
        return lines;
    }

    private static void Evaluate(List<Line> lines, DateTime cutoff, Table table, AlsOptions als, TextWriter log, out double customerNdcg)
    {
        var train = lines.Where(l => l.Time < cutoff).ToList();
        var test = lines.Where(l => l.Time >= cutoff).ToList();
        var users = new Dictionary<string, int>();
        var items = new Dictionary<string, int>();
        var inter = new List<Interaction>();
        var invoiceIds = new Dictionary<string, int>();
        var baskets = new List<Interaction>();
        var epoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Unspecified);
        foreach (var l in train)
        {
            if (!items.TryGetValue(l.Product, out var i)) items[l.Product] = i = items.Count;
            if (!invoiceIds.TryGetValue(l.Invoice, out var b)) invoiceIds[l.Invoice] = b = invoiceIds.Count;
            baskets.Add(new Interaction(b, i));
            if (l.Customer == null) continue;
            if (!users.TryGetValue(l.Customer, out var u)) users[l.Customer] = u = users.Count;
            inter.Add(new Interaction(u, i, 1f, (long)(l.Time - epoch).TotalSeconds));
        }
        log.WriteLine($"  retail: {users.Count} customers, {items.Count} products, {inter.Count} training lines, cutoff {cutoff:yyyy-MM-dd}");
        var data = inter.ToArray();
        var sw = Stopwatch.StartNew();
        var model = new AlsTrainer(als).Train(data, users.Count, items.Count);
        var alsSeconds = sw.Elapsed.TotalSeconds;
        var pop = new PopularityTrainer(new PopularityOptions { HalfLifeDays = 30 }).Train(data, items.Count);
        sw.Restart();
        var cooc = new CoOccurrenceTrainer().Train(baskets.ToArray(), invoiceIds.Count, items.Count);
        var coocSeconds = sw.Elapsed.TotalSeconds;

        // Known customers.
        var relevant = new HashSet<int>[users.Count];
        for (var u = 0; u < users.Count; u++) relevant[u] = [];
        foreach (var l in test)
            if (l.Customer != null && users.TryGetValue(l.Customer, out var u) && items.TryGetValue(l.Product, out var i)) relevant[u].Add(i);
        var seen = new HashSet<int>[users.Count];
        for (var u = 0; u < users.Count; u++) { seen[u] = [.. model.SeenItems(u).ToArray()]; relevant[u].ExceptWith(seen[u]); }
        int[] Ids(ScoredItem[] s) => s.Select(x => x.Item).ToArray();
        var a = RecBench.Evaluate(users.Count, items.Count, u => Ids(model.RecommendForUser(u, 10)), u => relevant[u]);
        var p = RecBench.Evaluate(users.Count, items.Count, u => Ids(pop.Recommend(10, seen[u].Contains)), u => relevant[u]);
        var c = RecBench.Evaluate(users.Count, items.Count, u => Ids(cooc.RecommendForCart(seen[u].ToArray(), 10, seen[u].Contains)), u => relevant[u]);
        customerNdcg = a.Ndcg;
        var ds = $"online-retail customers (cutoff {cutoff:yyyy-MM-dd}, {relevant.Count(r => r.Count > 0)} users; a={als.Alpha}, l={als.Regularization})";
        table.Add(ds, "Recall@10", Table.F(a.Recall), $"pop {Table.F(p.Recall)} / co-occ {Table.F(c.Recall)}", "-", $"ALS {Table.F(alsSeconds, 2)}");
        table.Add(ds, "NDCG@10", Table.F(a.Ndcg), $"pop {Table.F(p.Ndcg)} / co-occ {Table.F(c.Ndcg)}", "-", $"co-occ {Table.F(coocSeconds, 2)}");
        table.Add(ds, "ALS train s (k=64, 15 it)", Table.F(alsSeconds, 2), "-", "target < 5 s", Table.F(alsSeconds, 2));

        // Anonymous carts from later invoices.
        var rng = new SplitMix64(11);
        var carts = test.GroupBy(l => l.Invoice).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Select(l => items.TryGetValue(l.Product, out var i) ? i : -1).Where(i => i >= 0).Distinct().ToArray())
            .Where(x => x.Length >= 2).ToArray();
        var held = new int[carts.Length];
        var cartItems = new int[carts.Length][];
        for (var j = 0; j < carts.Length; j++)
        {
            var h = rng.NextInt(carts[j].Length);
            held[j] = carts[j][h];
            cartItems[j] = carts[j].Where((_, t) => t != h).ToArray();
        }
        var rel = held.Select(h => new HashSet<int> { h }).ToArray();
        var ca = RecBench.Evaluate(carts.Length, items.Count, j => Ids(model.RecommendForCart(cartItems[j], 10)), j => rel[j]);
        var cp = RecBench.Evaluate(carts.Length, items.Count, j => { var s = cartItems[j].ToHashSet(); return Ids(pop.Recommend(10, s.Contains)); }, j => rel[j]);
        var cc = RecBench.Evaluate(carts.Length, items.Count, j => Ids(cooc.RecommendForCart(cartItems[j], 10)), j => rel[j]);
        var dc = $"online-retail carts, fold-in, 1 held out ({carts.Length} baskets)";
        table.Add(dc, "Recall@10 (=HR@10)", Table.F(ca.Recall), $"pop {Table.F(cp.Recall)} / co-occ {Table.F(cc.Recall)}", "-", "-");
        table.Add(dc, "NDCG@10", Table.F(ca.Ndcg), $"pop {Table.F(cp.Ndcg)} / co-occ {Table.F(cc.Ndcg)}", "-", "-");
    }
}
