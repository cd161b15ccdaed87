using System.Diagnostics;
using System.Globalization;
using ReplayCli;
using StoreReplay;

const string Usage = """
    usage: replay --data DIR [--dataset online-retail|fraud] [--seed 7]
                  [--from YYYY-MM-DD --to YYYY-MM-DD | --max-invoices N | --max-transactions N]
                  [--session-share 0.3] [--abandoned-share 0.1] [--guests true|false] [--labels-out FILE.csv]
                  [--shift-days N]
                  ( --jsonl-out DIR
                  | --url http://127.0.0.1:5080 --secret S --shop demo-store.myshopify.com
                    [--rate 200] [--concurrency 8] [--max-deliveries N] [--timeout-seconds 7200]
                    [--shopper-days 14 --shoppers-from YYYY-MM-DD [--shoppers-per-day 100]]
                    [--fraud-cancellation-delay-days 7 [--cancellations-after YYYY-MM-DD]] )
    --fraud-cancellation-delay-days: each fraud order is cancelled for fraud this many days after it was placed; with
                    --jsonl-out the export (made at --to) holds the cancellations up to --to; with --url they are sent
                    as orders/cancelled after the orders, or, with --cancellations-after, only those dated after it
                    and no orders (the ones an export made then could not hold)
    --shopper-days: instead of webhooks, storefront shoppers (the baskets from --shoppers-from on) through the app
                    proxy and orders/create, one day at a time up to yesterday on the Demo app's clock
    --shift-days:   online-retail only: N days added to every date after --from/--to (and --shoppers-from) are applied,
                    so the slice plays as recent history
    """;

try
{
    var a = new CliArgs(args);
    var clock = Stopwatch.StartNew();
    var store = Load(a);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"loaded {a.Get("dataset") ?? "online-retail"}: {store.Products.Count} products, {store.Customers.Count} customers, {store.Orders.Count} orders, {store.LineCount} lines, {store.Refunds.Count} refunds, {store.Sessions.Count} sessions ({store.Sessions.Count(s => s.Abandoned)} abandoned) in {clock.Elapsed.TotalSeconds:F1} s"));
    if (a.Get("labels-out") is { } labels) Labels.Write(store, labels);

    var delay = a.Int("fraud-cancellation-delay-days");
    var orderById = store.Orders.ToDictionary(o => o.Id);
    // Each fraud order cancelled for fraud, the given days after it was placed.
    List<(ReplayOrder Order, DateTimeOffset At)> FraudCancellations(int days) => store.Labels.Where(l => l.Fraud == 1)
        .Select(l => orderById[l.OrderId]).OrderBy(o => o.CreatedAt).Select(o => (o, o.CreatedAt.AddDays(days))).ToList();

    if (a.Get("jsonl-out") is { } dir)
    {
        if (delay is { } d)
        {
            var exportedAt = a.Date("to") ?? store.Orders.Max(o => o.CreatedAt);
            var inExport = FraudCancellations(d).Where(c => c.At <= exportedAt).ToList();
            foreach (var (o, at) in inExport) o.Cancelled = (at, "FRAUD");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fraud cancellations ({d} days after each order) up to {exportedAt:yyyy-MM-dd}: {inExport.Count} in the export"));
        }
        Directory.CreateDirectory(dir);
        using (var f = File.Create(Path.Combine(dir, "products.jsonl"))) BulkJsonlEmitter.WriteProducts(store, f);
        using (var f = File.Create(Path.Combine(dir, "customers.jsonl"))) BulkJsonlEmitter.WriteCustomers(store, f);
        using (var f = File.Create(Path.Combine(dir, "orders.jsonl"))) BulkJsonlEmitter.WriteOrders(store, f);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote products.jsonl, customers.jsonl, orders.jsonl to {dir} in {clock.Elapsed.TotalSeconds:F1} s"));
        return 0;
    }

    var url = a.Required("url").TrimEnd('/') + "/";
    using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
    var sender = new WebhookSender(http, new WebhookSenderOptions
    {
        ClientSecret = a.Required("secret"),
        ShopDomain = a.Required("shop"),
        RatePerSecond = a.Double("rate") ?? 200,
        Concurrency = a.Int("concurrency") ?? 8,
        MaxDeliveries = a.Int("max-deliveries"),
        MaxDuration = TimeSpan.FromSeconds(a.Int("timeout-seconds") ?? 7200),
    });
    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
    if (a.Int("shopper-days") is { } days)
    {
        var shoppersFrom = a.Date("shoppers-from") ?? throw new ArgumentException("--shoppers-from is required with --shopper-days");
        var played = await Shoppers.PlayAsync(store, shoppersFrom.AddDays(a.Int("shift-days") ?? 0),
            days, a.Int("shoppers-per-day") ?? 100, http, sender, stop.Token);
        Console.WriteLine($"shoppers: {played.Shoppers} over {days} days, {played.Shown} shown something they wanted, {played.Orders} ordered, {played.Failed} failed; cart offers: {(played.CartActions.Count == 0 ? "none" : string.Join(", ", played.CartActions.Select(kv => $"{kv.Key} {kv.Value}")))}");
        return played.Failed == 0 ? 0 : 1;
    }
    var after = a.Date("cancellations-after");
    if (after is not null && delay is null) throw new ArgumentException("--cancellations-after needs --fraud-cancellation-delay-days");
    // With --cancellations-after the orders are already in the app (a backfill brought them): only the late labels are sent.
    var report = after is null ? await sender.SendAsync(WebhookEmitter.Emit(store), stop.Token) : new SendReport(new Dictionary<string, int>(), new Dictionary<string, int>(), 0, 0, 0, []);
    if (after is null) Console.WriteLine(Summary.Line(report));
    if (delay is { } delayDays && report.Failed == 0)
    {
        // The labels back through Shopify's own path.
        var cancellations = FraudCancellations(delayDays).Where(c => after is null || c.At > after)
            .Select(c => WebhookEmitter.FraudCancellation(store, c.Order, c.At)).ToList();
        var labelled = await sender.SendAsync(cancellations, stop.Token);
        Console.WriteLine($"fraud cancellations ({delayDays} days after each order{(after is null ? "" : $", dated after {after:yyyy-MM-dd}")}): " + Summary.Line(labelled));
        if (labelled.Failed > 0) return 1;
    }
    foreach (var error in report.FirstErrors) Console.Error.WriteLine("  " + error);
    return report.Failed == 0 && report.NotAttempted == 0 ? 0 : 1;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(Usage);
    return 2;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("interrupted");
    return 130;
}

static ReplayStore Load(CliArgs a)
{
    var data = a.Required("data");
    var seed = a.Int("seed") ?? 7;
    switch (a.Get("dataset") ?? "online-retail")
    {
        case "online-retail":
            using (var file = File.OpenRead(Path.Combine(data, "online-retail", "online_retail.csv.gz")))
                return OnlineRetailStore.Load(file, new OnlineRetailOptions
                {
                    Seed = seed, From = a.Date("from"), To = a.Date("to"), MaxInvoices = a.Int("max-invoices"),
                    SessionShare = a.Double("session-share") ?? 0.3, AbandonedShare = a.Double("abandoned-share") ?? 0.1,
                    IncludeGuestOrders = !string.Equals(a.Get("guests"), "false", StringComparison.OrdinalIgnoreCase),
                    Shift = TimeSpan.FromDays(a.Int("shift-days") ?? 0),
                });
        case "fraud" when a.Has("shift-days"):
            throw new ArgumentException("--shift-days is for --dataset online-retail");
        case "fraud":
            var files = Directory.GetFiles(Path.Combine(data, "fraud-handbook-sim"), "*.csv.gz").Order(StringComparer.Ordinal).ToList();
            var streams = files.Select(f => (Stream)File.OpenRead(f)).ToList();
            try
            {
                return FraudHandbookStore.Load(streams, new FraudOptions
                {
                    Seed = seed, From = a.Date("from"), To = a.Date("to"),
                    MaxTransactions = a.Int("max-transactions") ?? a.Int("max-invoices"),
                });
            }
            finally { streams.ForEach(s => s.Dispose()); }
        default:
            throw new ArgumentException("--dataset is online-retail or fraud");
    }
}
