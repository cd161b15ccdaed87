using System.Globalization;
using Npgsql;
using PluginApp.Ml.Metrics;
using PluginApp.Ml.Tabular;
using PluginApp.Risk;

// Order risk, end to end: the scores the app stored for the test days against the data set's labels, beside what the
// same code computes offline on the same days (features rebuilt from the database, the registered model, a fresh fit).
const string Usage = "usage: RiskEval --conn CONNECTION --shop SHOP --labels LABELS.csv --train-from D --train-to D --test-from D --test-to D [--label-delay-days 7] [--small-stores 30,60,100,200 [--seeds 5]]";
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

// Small stores (--small-stores N,...), instead of the end-to-end tables: the training days' orders drawn down to N fraud
// labels at the data's own fraud rate (each draw's orders in time order), each draw trained with the app's own
// RiskTrainer.Fit and judged on every order of the test days, scored or not: the model alone, the rule prior, and the
// served score at the evidence weight (n / (n + 50)) and at the weight training chose on its latest quarter.
if (a.TryGetValue("small-stores", out var sizesArg))
{
    async Task<List<RiskTrainer.KnownOrder>> OrdersAsync(DateTimeOffset from, DateTimeOffset to)
    {
        var list = new List<RiskTrainer.KnownOrder>();
        await using var cmd = new NpgsqlCommand($"SELECT o.id, o.created_at FROM orders o WHERE o.shop_id = $1 AND o.created_at >= $2 AND o.created_at < $3 AND {RiskTrainer.Learnable} ORDER BY o.created_at, o.id", conn)
            { Parameters = { new() { Value = shopId }, new() { Value = from }, new() { Value = to } } };
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
            if (labels.TryGetValue(r.GetInt64(0), out var f)) list.Add(new RiskTrainer.KnownOrder(r.GetInt64(0), r.GetFieldValue<DateTimeOffset>(1), f));
        return list;
    }
    var built = new Dictionary<long, float[]>();
    async Task BuildAsync(IEnumerable<long> ids)
    {
        foreach (var (id, f) in await FeaturesAsync(ids.Where(i => !built.ContainsKey(i)))) built[id] = f;
    }
    var pool = await OrdersAsync(trainFrom, trainTo);
    var judged = await OrdersAsync(testFrom, testTo);
    await BuildAsync(judged.Select(o => o.Id));
    var truth = judged.Select(o => o.Fraud).ToArray();
    var priorJudged = judged.Select(o => RulePrior.Assess(built[o.Id], "").Score).ToArray();
    var (frauds, legit) = (pool.Where(o => o.Fraud).ToList(), pool.Where(o => !o.Fraud).ToList());
    var seeds = a.TryGetValue("seeds", out var sd) ? int.Parse(sd, CultureInfo.InvariantCulture) : 5;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"small stores drawn from {pool.Count:N0} training orders ({frauds.Count:N0} fraud), {seeds} draws a size, judged on {judged.Count:N0} test orders ({truth.Count(t => t):N0} fraud); the rule prior's average precision {BinaryMetrics.AveragePrecision(priorJudged, truth):F3}"));
    Console.WriteLine("| fraud labels | model alone | served, evidence weight | served, chosen weight | best weight on the test orders | weights chosen |");
    Console.WriteLine("|---|---|---|---|---|---|");
    foreach (var n in sizesArg.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)))
    {
        // A store is drawn down from the history: one as large as the history, or larger, would be the whole history every draw.
        if (n < 1 || n >= frauds.Count)
        {
            Console.WriteLine($"| {n} | not drawn: the training days hold {frauds.Count:N0} fraud orders, and a store is drawn from 1 to {frauds.Count - 1:N0} of them |");
            continue;
        }
        var rows = new List<(double Model, double Evidence, double Chosen, double Best, double Weight)>();
        for (var seed = 1; seed <= seeds; seed++)
        {
            var rng = new Random(seed * 7919 + n);
            var draw = frauds.OrderBy(_ => rng.Next()).Take(n).Concat(legit.OrderBy(_ => rng.Next()).Take((int)Math.Round(n * (double)legit.Count / frauds.Count)))
                .OrderBy(o => o.At).ThenBy(o => o.Id).ToList();
            await BuildAsync(draw.Select(o => o.Id));
            var (model, metrics) = RiskTrainer.Fit(draw, judged, built);
            var scores = model.PredictProbabilities(judged.Select(o => RiskTrainer.Row(built[o.Id])).ToList());
            model.Dispose();
            double Ap(double w) => BinaryMetrics.AveragePrecision(scores.Select((x, i) => RiskModels.Served(x, priorJudged[i], w)).ToArray(), truth);
            rows.Add((metrics.PrAuc, Ap(metrics.EvidenceWeight ?? RiskModels.ModelWeightOf(metrics.TrainFraud)), metrics.ServedPrAuc ?? double.NaN,
                RiskTrainer.WeightGrid.Max(Ap), metrics.ModelWeight ?? double.NaN));
            Console.Error.WriteLine($"  {n} labels, draw {seed}: weight chosen on {metrics.WeightChosenOn}");
        }
        static string Cell(IEnumerable<double> v)
        {
            var s = v.Order().ToArray();
            return string.Create(CultureInfo.InvariantCulture, $"{s[s.Length / 2]:F3} ({s[0]:F2}–{s[^1]:F2})");
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {n} | {Cell(rows.Select(r => r.Model))} | {Cell(rows.Select(r => r.Evidence))} | {Cell(rows.Select(r => r.Chosen))} | {Cell(rows.Select(r => r.Best))} | {string.Join(", ", rows.Select(r => r.Weight.ToString("0.00", CultureInfo.InvariantCulture)))} |"));
    }
    return;
}

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
