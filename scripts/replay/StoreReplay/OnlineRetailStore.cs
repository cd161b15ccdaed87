using System.Globalization;

namespace StoreReplay;

/// <summary>
/// Online Retail (UCI) as a store. Ids: product 1_000_000+k, variant 2_000_000+k, inventory item 3_000_000+k
/// (k = the StockCode's first appearance in the file); customer = CustomerID; order 4_000_000_000+invoice;
/// line = order*10_000+index (an invoice has up to 1,114 lines, so *1000 would collide); refund
/// 8_000_000_000+cancelled invoice*100+k, its lines refund*10_000+index.
/// </summary>
public static class OnlineRetailStore
{
    public const long OrderIdBase = 4_000_000_000;
    public const int LineIdFactor = 10_000;
    public const string Vendor = "Online Retail";

    public static ReplayStore Load(Stream csvOrGzip, OnlineRetailOptions options)
    {
        var rows = OnlineRetailRows.Read(csvOrGzip, options);
        var store = new ReplayStore { Seed = options.Seed, Currency = "GBP" };
        var sales = rows.Where(r => r.IsSaleInvoice && r.Quantity > 0 && r.Price > 0
                                    && (r.CustomerId is not null || options.IncludeGuestOrders)).ToList();
        var products = BuildProducts(sales, options.Seed);
        store.Products.AddRange(products.Values.OrderBy(p => p.Id));
        var customers = BuildCustomers(sales);
        store.Customers.AddRange(customers.Values);
        var firstRowOfOrder = BuildOrders(store, sales, products, customers);
        store.Refunds.AddRange(RetailRefunds.Build(rows, store.Orders, firstRowOfOrder));
        Sessions.AddTo(store, options.SessionShare, options.AbandonedShare);
        return store;
    }

    private static Dictionary<string, ReplayProduct> BuildProducts(List<RetailRow> sales, int seed)
    {
        var products = new Dictionary<string, ReplayProduct>(StringComparer.Ordinal);
        foreach (var g in sales.GroupBy(r => r.StockCode))
        {
            var first = g.First();
            var title = MostCommon(g.Select(r => r.Description).Where(d => d.Length > 0)) ?? first.StockCode;
            var price = MostCommon(g.Select(r => r.Price));
            var id = 1_000_000L + first.ProductIndex;
            var rng = Determinism.RngFor(seed, id, purpose: 2);
            var inventory = rng.NextDouble() < 0.05 ? 0 : rng.Next(1, 250);
            decimal? cost = rng.NextDouble() < 0.8 ? Math.Round(price * (0.35m + 0.40m * (decimal)rng.NextDouble()), 2) : null;
            products[g.Key] = new ReplayProduct(id, 2_000_000L + first.ProductIndex, 3_000_000L + first.ProductIndex, first.StockCode,
                title, Formats.Slug(title + " " + first.StockCode), ProductType(title), Vendor, price, cost, inventory,
                first.Date.AddDays(-1));
        }
        return products;
    }

    /// <summary>The last word of the title ("... T-LIGHT HOLDER" -> "Holder"): enough for per-type business rules.</summary>
    public static string ProductType(string title)
    {
        var word = title.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => new string(w.Where(char.IsAsciiLetter).ToArray()))
            .LastOrDefault(w => w.Length > 1);
        return word is null ? "Other" : char.ToUpperInvariant(word[0]) + word[1..].ToLowerInvariant();
    }

    private static Dictionary<long, ReplayCustomer> BuildCustomers(List<RetailRow> sales)
    {
        var customers = new Dictionary<long, ReplayCustomer>();
        foreach (var r in sales)
            if (r.CustomerId is { } id && !customers.ContainsKey(id))
                customers[id] = new ReplayCustomer(id, string.Create(CultureInfo.InvariantCulture, $"customer{id}@example.invalid"),
                    Countries.IsoCode(r.Country), r.Date.AddDays(-1));
        return customers;
    }

    private static Dictionary<long, int> BuildOrders(ReplayStore store, List<RetailRow> sales,
        Dictionary<string, ReplayProduct> products, Dictionary<long, ReplayCustomer> customers)
    {
        var firstRow = new Dictionary<long, int>();
        foreach (var g in sales.GroupBy(r => r.Invoice))
        {
            var first = g.First();
            var number = long.Parse(first.Invoice, CultureInfo.InvariantCulture);
            var order = new ReplayOrder
            {
                Id = OrderIdBase + number, Number = number, CreatedAt = first.Date,
                Customer = first.CustomerId is { } c ? customers[c] : null, CountryCode = Countries.IsoCode(first.Country),
            };
            foreach (var r in g)
            {
                var product = products[r.StockCode];
                order.Lines.Add(new ReplayLine(order.Id * LineIdFactor + order.Lines.Count, product,
                    r.Description.Length > 0 ? r.Description : product.Title, r.Quantity, r.Price));
            }
            store.Orders.Add(order);
            firstRow[order.Id] = first.Index;
        }
        // Stable: invoices of the same minute keep their file order.
        var sorted = store.Orders.OrderBy(o => o.CreatedAt).ToList();
        store.Orders.Clear();
        store.Orders.AddRange(sorted);
        return firstRow;
    }

    /// <summary>The most frequent value; ties go to the one seen first.</summary>
    private static T? MostCommon<T>(IEnumerable<T> values) where T : notnull
    {
        var counts = new Dictionary<T, (int Count, int First)>();
        var i = 0;
        foreach (var v in values)
        {
            counts[v] = counts.TryGetValue(v, out var c) ? (c.Count + 1, c.First) : (1, i);
            i++;
        }
        return counts.Count == 0 ? default : counts.OrderByDescending(kv => kv.Value.Count).ThenBy(kv => kv.Value.First).First().Key;
    }
}
