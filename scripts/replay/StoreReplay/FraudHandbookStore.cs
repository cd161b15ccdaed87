using System.Globalization;

namespace StoreReplay;

public sealed record FraudOptions
{
    public int Seed { get; init; } = 7;
    /// <summary>Keep transactions with TX_DATETIME in [From, To); null = unbounded.</summary>
    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }
    public int? MaxTransactions { get; init; }
    public string Currency { get; init; } = "EUR";
}

/// <summary>
/// The Fraud Detection Handbook simulation as orders: card -> customer 5_000_000+CUSTOMER_ID, terminal -> a
/// storefront client (browser_ip in 198.18.0.0/15 and a session hash), TX_AMOUNT -> the total of one line of
/// a generic product, TX_DATETIME -> created_at; order id 4_100_000_000+TRANSACTION_ID. Only those columns are
/// read: TX_FRAUD and TX_FRAUD_SCENARIO go to the label list, the precomputed window features are never loaded.
/// </summary>
public static class FraudHandbookStore
{
    public const long OrderIdBase = 4_100_000_000;
    public const long CustomerIdBase = 5_000_000;

    public static ReplayProduct GenericProduct(DateTimeOffset createdAt) => new(1_900_000, 2_900_000, 3_900_000, "CARD-PURCHASE",
        "Card purchase", "card-purchase", "Purchase", "Replay", 1.00m, null, 0, createdAt);

    /// <param name="csvGz">The data set's files in date order (their names sort that way).</param>
    public static ReplayStore Load(IEnumerable<Stream> csvGz, FraudOptions options)
    {
        var store = new ReplayStore { Seed = options.Seed, Currency = options.Currency };
        var customers = new Dictionary<long, ReplayCustomer>();
        ReplayProduct? product = null;
        var ipOffset = Determinism.MixToInt(options.Seed, 198_18) & 0x1FFFF;
        var stop = false;
        foreach (var stream in csvGz)
        {
            if (stop) break;
            using var reader = new StreamReader(InputStreams.Decompressing(stream));
            var csv = new CsvLines(reader);
            if (!csv.Read()) continue;
            var col = csv.Record!.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i, StringComparer.Ordinal);
            int C(string name) => col.TryGetValue(name, out var i) ? i : throw new InvalidDataException($"column {name} is missing");
            int txId = C("TRANSACTION_ID"), time = C("TX_DATETIME"), card = C("CUSTOMER_ID"), terminal = C("TERMINAL_ID"),
                amount = C("TX_AMOUNT"), fraud = C("TX_FRAUD"), scenario = C("TX_FRAUD_SCENARIO");
            while (!stop && csv.Read())
            {
                var f = csv.Record!;
                var at = Formats.ParseDataTime(f[time]);
                if (options.From is { } from && at < from) continue;
                // Rows are in TX_DATETIME order, so the window ends at the first later row.
                if (options.To is { } to && at >= to || store.Orders.Count >= options.MaxTransactions) { stop = true; break; }

                product ??= GenericProduct(at.AddDays(-1));
                var cardId = CustomerIdBase + long.Parse(f[card], CultureInfo.InvariantCulture);
                if (!customers.TryGetValue(cardId, out var customer))
                    customers[cardId] = customer = new ReplayCustomer(cardId,
                        string.Create(CultureInfo.InvariantCulture, $"customer{cardId}@example.invalid"), null, at.AddDays(-1));
                var terminalId = long.Parse(f[terminal], CultureInfo.InvariantCulture);
                var tx = long.Parse(f[txId], CultureInfo.InvariantCulture);
                var order = new ReplayOrder
                {
                    Id = OrderIdBase + tx, Number = tx, CreatedAt = at, Customer = customer,
                    BrowserIp = TerminalIp(terminalId, ipOffset), SessionHash = TerminalSession(options.Seed, terminalId),
                };
                var total = Math.Round(Formats.ParseDecimal(f[amount]), 2, MidpointRounding.AwayFromZero);
                order.Lines.Add(new ReplayLine(order.Id * OnlineRetailStore.LineIdFactor, product, product.Title, 1, total));
                store.Orders.Add(order);
                store.Labels.Add(new FraudLabel(order.Id, tx, at, int.Parse(f[fraud], CultureInfo.InvariantCulture),
                    int.Parse(f[scenario], CultureInfo.InvariantCulture)));
            }
        }
        if (product is not null) store.Products.Add(product);
        store.Customers.AddRange(customers.Values);
        return store;
    }

    /// <summary>A terminal's address in 198.18.0.0/15 (benchmarking space, never routed): a seeded bijection of the id.</summary>
    public static string TerminalIp(long terminal, int offset)
    {
        var n = (int)((terminal * 40_503 + offset) & 0x1FFFF); // odd multiplier: one address per terminal
        return string.Create(CultureInfo.InvariantCulture, $"198.{18 + (n >> 16)}.{(n >> 8) & 0xFF}.{n & 0xFF}");
    }

    private static string TerminalSession(int seed, long terminal) =>
        Determinism.Hex(Determinism.RngFor(seed, terminal, purpose: 3), 16);
}
