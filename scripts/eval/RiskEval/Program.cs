using System.Globalization;
using Npgsql;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;
using PluginApp.Risk;

// Order risk, end to end: the scores the app stored for the test days against the data set's labels, beside what the
// same code computes offline on the same days (features rebuilt from the database, the registered model, a fresh fit).
const string Usage = "usage: RiskEval --conn CONNECTION --shop SHOP --labels LABELS.csv --train-from D --train-to D --test-from D --test-to D [--label-delay-days 7]";
var a = args.Select((v, i) => (v, i)).Where(p => p.i % 2 == 0 && p.v.StartsWith("--", StringComparison.Ordinal))
    .ToDictionary(p => p.v[2..], p => p.i + 1 < args.Length ? args[p.i + 1] : "");
string Arg(string name) => a.TryGetValue(name, out var v) ? v : throw new ArgumentException($"--{name} is required\n{Usage}");
DateTimeOffset Day(string name) => DateTimeOffset.Parse(Arg(name), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

var (trainFrom, trainTo, testFrom, testTo) = (Day("train-from"), Day("train-to"), Day("test-from"), Day("test-to"));
var labels = File.ReadLines(Arg("labels")).Skip(1).Select(l => l.Split(','))
    .ToDictionary(c => long.Parse(c[0], CultureInfo.InvariantCulture), c => c[3] == "1");
await using var db = NpgsqlDataSource.Create(Arg("conn"));
await using var conn = await db.OpenConnectionAsync();
long shopId;
await using (var cmd = new NpgsqlCommand("SELECT id FROM shops WHERE domain = $1", conn) { Parameters = { new() { Value = Arg("shop") } } })
    shopId = (long)(await cmd.ExecuteScalarAsync() ?? throw new InvalidOperationException("no such shop"));

// Every order of the evaluated days with what the app stored.
var orders = new List<(long Id, DateTimeOffset At, long Card, double Stored, int? Version, double PriorWeight)>();
await using (var cmd = new NpgsqlCommand("""
    SELECT o.id, o.created_at, coalesce(o.customer_id, o.id), s.score, s.model_version, s.prior_weight
    FROM orders o LEFT JOIN risk_scores s ON s.shop_id = o.shop_id AND s.order_id = o.id
    WHERE o.shop_id = $1 AND o.created_at >= $2 AND o.created_at < $3 ORDER BY o.created_at, o.id
    """, conn) { Parameters = { new() { Value = shopId }, new() { Value = testFrom }, new() { Value = testTo } } })
await using (var r = await cmd.ExecuteReaderAsync())
    while (await r.ReadAsync())
        orders.Add((r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), r.GetInt64(2), r.IsDBNull(3) ? double.NaN : r.GetDouble(3),
            r.IsDBNull(4) ? null : r.GetInt32(4), r.IsDBNull(5) ? 1 : r.GetDouble(5)));
var unscored = orders.Count(o => double.IsNaN(o.Stored));
orders = orders.Where(o => !double.IsNaN(o.Stored) && labels.ContainsKey(o.Id)).ToList();
var y = orders.Select(o => labels[o.Id]).ToArray();
var days = orders.Select(o => (int)(o.At - testFrom).TotalDays).ToArray();
var cards = orders.Select(o => o.Card).ToArray();

async Task<Dictionary<long, float[]>> FeaturesAsync(IEnumerable<long> ids)
{
    var all = new Dictionary<long, float[]>();
    foreach (var chunk in ids.Chunk(2000))
        foreach (var (id, f) in await OrderFeatures.BuildAsync(conn, shopId, chunk, CancellationToken.None)) all[id] = f;
    return all;
}
var features = await FeaturesAsync(orders.Select(o => o.Id));

// The registered model the scores came from, recomputed on rebuilt features: any difference is training/serving skew.
var version = orders.Select(o => o.Version).FirstOrDefault(v => v is not null);
double[] recomputed;
if (version is { } v)
{
    byte[] artifact;
    string metricsJson;
    await using (var cmd = new NpgsqlCommand("SELECT artifact, metrics::text FROM models WHERE shop_id = $1 AND kind = 'risk' AND version = $2", conn)
        { Parameters = { new() { Value = shopId }, new() { Value = v } } })
    await using (var r = await cmd.ExecuteReaderAsync())
    {
        await r.ReadAsync();
        (artifact, metricsJson) = ((byte[])r[0], r.GetString(1));
    }
    using var model = TabularModel.Load(new MemoryStream(artifact));
    var weight = 1 - orders.First(o => o.Version == v).PriorWeight;
    Console.WriteLine($"model version {v} (model weight {weight:F3}); its training metrics: {metricsJson}");
    if (model.Schema.Features.Select(f => f.Name).SequenceEqual(OrderFeatures.Names))
    {
        using var learnt = System.Text.Json.JsonDocument.Parse(metricsJson);
        var active = new ActiveRiskModel(v, model, weight, RiskModels.BaseRateOf(learnt.RootElement.GetProperty("TrainFraud").GetDouble(),
            learnt.RootElement.GetProperty("TrainOrders").GetDouble()));
        recomputed = RiskModels.Assess(orders.Select(o => features[o.Id]).ToList(), "", active).Select(x => x.Score).ToArray();
    }
    else
    {
        // Run against a database an older build scored: the features changed since, so only the fresh fit below compares.
        Console.WriteLine($"model version {v} was trained on another feature list than this build's; not recomputed");
        recomputed = orders.Select(_ => double.NaN).ToArray();
    }
}
else recomputed = orders.Select(o => RulePrior.Assess(features[o.Id], "").Score).ToArray();
var prior = orders.Select(o => RulePrior.Assess(features[o.Id], "").Score).ToArray();
var stored = orders.Select(o => o.Stored).ToArray();

// A fresh offline fit on the training days (labels from the data set, all known; the orders the app's trainer learns from),
// scored on the same test orders.
var train = new List<RiskTrainer.KnownOrder>();
await using (var cmd = new NpgsqlCommand($"SELECT o.id, o.created_at FROM orders o WHERE o.shop_id = $1 AND o.created_at >= $2 AND o.created_at < $3 AND {RiskTrainer.Learnable}", conn)
    { Parameters = { new() { Value = shopId }, new() { Value = trainFrom }, new() { Value = trainTo } } })
await using (var r = await cmd.ExecuteReaderAsync())
    while (await r.ReadAsync())
        if (labels.TryGetValue(r.GetInt64(0), out var fraud)) train.Add(new RiskTrainer.KnownOrder(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), fraud));
foreach (var (id, f) in await FeaturesAsync(train.Select(o => o.Id))) features[id] = f;
var test = orders.Select((o, i) => new RiskTrainer.KnownOrder(o.Id, o.At, y[i])).ToList();
var (fresh, freshMetrics) = RiskTrainer.Fit(train.Where(o => features.ContainsKey(o.Id)).OrderBy(o => o.At).ToList(), test, features);
var freshScores = fresh.PredictProbabilities(test.Select(o => RiskTrainer.Row(features[o.Id])).ToList());
fresh.Dispose();

void Table(bool[] keep)
{
    var ky = y.Where((_, i) => keep[i]).ToArray();
    var kDays = days.Where((_, i) => keep[i]).ToArray();
    var kCards = cards.Where((_, i) => keep[i]).ToArray();
    string Line(string name, double[] all)
    {
        var s = all.Where((_, i) => keep[i]).ToArray();
        return s.Any(double.IsNaN) ? $"| {name} | – | – | – |" : string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {BinaryMetrics.RocAuc(s, ky):F3} | {BinaryMetrics.AveragePrecision(s, ky):F3} | {FraudMetrics.CardPrecisionAtK(kDays, kCards, s, ky, 100):F3} |");
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ky.Length} orders, {ky.Count(l => l)} fraud"));
    Console.WriteLine("| scores | ROC-AUC | average precision | card precision@100 |");
    Console.WriteLine("|---|---|---|---|");
    Console.WriteLine(Line("stored by the app (end to end)", stored));
    Console.WriteLine(Line("recomputed offline from rebuilt features, same model", recomputed));
    Console.WriteLine(Line("rule prior alone", prior));
    Console.WriteLine(Line($"fresh offline fit ({freshMetrics.Learner}) on the training days", freshScores));
}
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"test days {testFrom:yyyy-MM-dd} to {testTo:yyyy-MM-dd}: {orders.Count} scored orders with labels, {unscored} not scored; train days {trainFrom:yyyy-MM-dd} to {trainTo:yyyy-MM-dd}: {train.Count} orders, {train.Count(o => o.Fraud)} fraud"));
Console.Write("every order of the test days: ");
Table(orders.Select(_ => true).ToArray());

// The handbook's test set (its chapter 3 protocol): a card with a fraud placed from two weeks before the test days up to
// the label delay before the order's day is known to be compromised, and its orders are left out.
var delay = TimeSpan.FromDays(a.TryGetValue("label-delay-days", out var d) ? int.Parse(d, CultureInfo.InvariantCulture) : 7);
var knownFrauds = new List<(long Card, DateTimeOffset At)>();
await using (var cmd = new NpgsqlCommand("SELECT id, created_at, coalesce(customer_id, id) FROM orders WHERE shop_id = $1 AND created_at >= $2 AND created_at < $3", conn)
    { Parameters = { new() { Value = shopId }, new() { Value = testFrom.AddDays(-14) }, new() { Value = testTo } } })
await using (var r = await cmd.ExecuteReaderAsync())
    while (await r.ReadAsync())
        if (labels.TryGetValue(r.GetInt64(0), out var fraud) && fraud) knownFrauds.Add((r.GetInt64(2), r.GetFieldValue<DateTimeOffset>(1)));
var byCard = knownFrauds.ToLookup(f => f.Card, f => f.At);
var handbook = orders.Select((o, i) => !byCard[cards[i]].Any(at => at < new DateTimeOffset(o.At.UtcDateTime.Date, TimeSpan.Zero) - delay)).ToArray();
Console.Write("the handbook's test set (cards known to be compromised left out): ");
Table(handbook);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"largest |stored - recomputed|: {stored.Zip(recomputed, (s, r) => Math.Abs(s - r)).DefaultIfEmpty(0).Max():G3}"));
