using System.Diagnostics;
using System.Globalization;
using MlBench;
using PluginApp.Recommendations;

// The recommender's candidates on any interactions file, through the code a store's training runs: signals -> the
// held-out time split (last 14 days of orders, or a longer window for a small store) -> every candidate on the same
// customers -> the choice by NDCG@10. Also ALS on raw weights (no confidence compression), for comparison.
const string Usage = """
    usage: RecommenderEval --file F.csv[.gz] --user-col C --item-col I --time-col T [--quantity-col Q] [--date-format F|unix]
                           [--separator ,|tab] [--columns a,b,c (a file without a header)] [--item-needs-digit]
                           [--until yyyy-MM-dd] [--alpha A] [--reg L] [--epsilon E] [--min-eval N] [--name NAME]
    """;
var a = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i < args.Length; i++)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected '{args[i]}'\n{Usage}");
    a[args[i][2..]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "";
}
string Arg(string name) => a.TryGetValue(name, out var v) ? v : throw new ArgumentException($"--{name} is required\n{Usage}");
string? Opt(string name) => a.TryGetValue(name, out var v) ? v : null;
double Num(string name, double fallback) => Opt(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

var file = Arg("file");
var separator = Opt("separator") is "tab" ? '\t' : (Opt("separator") ?? ",")[0];
var dateFormat = Opt("date-format") ?? "yyyy-MM-dd HH:mm:ss";
var until = Opt("until") is { } u ? DateTimeOffset.Parse(u, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal) : DateTimeOffset.MaxValue;
var needsDigit = a.ContainsKey("item-needs-digit");

var rows = Csv.Rows(file, separator);
string[] header;
using (var e = rows.GetEnumerator())
{
    if (Opt("columns") is { } cols) header = cols.Split(',');
    else if (e.MoveNext()) header = e.Current;
    else throw new InvalidDataException($"{file} is empty");
}
var hasHeader = Opt("columns") is null;
int cUser = Csv.Col(header, Arg("user-col")), cItem = Csv.Col(header, Arg("item-col")), cTime = Csv.Col(header, Arg("time-col"));
int? cQty = Opt("quantity-col") is { } q ? Csv.Col(header, q) : null;

var watch = Stopwatch.StartNew();
var items = new Dictionary<string, long>(StringComparer.Ordinal);
var signals = new List<Signal>();
var skipped = 0;
foreach (var f in rows.Skip(hasHeader ? 1 : 0))
{
    var user = f[cUser].Trim();
    var item = f[cItem].Trim();
    var quantity = cQty is { } c && Csv.TryNum(f[c], out var n) ? n : 1;
    // Returns (negative quantities), rows without a customer and, when asked, codes without a digit (postage, fees) are not purchases.
    if (user.Length == 0 || item.Length == 0 || quantity <= 0 || (needsDigit && !item.Any(char.IsDigit))) { skipped++; continue; }
    var at = dateFormat == "unix"
        ? DateTimeOffset.FromUnixTimeSeconds(long.Parse(f[cTime], CultureInfo.InvariantCulture))
        : new DateTimeOffset(DateTime.ParseExact(f[cTime], dateFormat, CultureInfo.InvariantCulture), TimeSpan.Zero);
    if (at >= until) continue;
    if (!items.TryGetValue(item, out var id)) items[item] = id = items.Count + 1;
    signals.Add(new Signal("c:" + user, id, SignalKind.Order, at, (float)quantity));
}
if (signals.Count == 0) throw new InvalidDataException("no purchase rows");
var asOf = signals.Max(s => s.At);
var defaults = RecommenderTraining.Defaults;
var p = defaults with
{
    Alpha = Num("alpha", defaults.Alpha), Regularization = Num("reg", defaults.Regularization),
    ConfidenceEpsilon = Num("epsilon", defaults.ConfidenceEpsilon), MinEvalSize = (int)Num("min-eval", defaults.MinEvalSize),
};
var name = Opt("name") ?? Path.GetFileName(file);
Console.WriteLine(FormattableString.Invariant(
    $"{name}: {signals.Count:N0} purchase rows ({skipped:N0} skipped), {signals.Select(s => s.UserKey).Distinct().Count():N0} customers, {items.Count:N0} products, {signals.Min(s => s.At):yyyy-MM-dd} to {asOf:yyyy-MM-dd}; read in {watch.Elapsed.TotalSeconds:F1} s"));
Console.WriteLine($"parameters: {p}");

watch.Restart();
var m = RecommenderTraining.Evaluate(signals, p);
var seconds = watch.Elapsed.TotalSeconds;
watch.Restart();
var raw = RecommenderTraining.Evaluate(signals, p with { ConfidenceEpsilon = 0 });
var rawSeconds = watch.Elapsed.TotalSeconds;

Console.WriteLine(FormattableString.Invariant($"split: {m.Split}, {m.TestUsers:N0} held-out customers (minimum to choose {m.MinEvalSize}); evaluated in {seconds:F1} s"));
if (m.Candidates.Count == 0 || raw.Candidates.Count == 0)
    throw new InvalidDataException($"nothing measured ({m.Split}): no held-out customer had bought anything before the split");
Console.WriteLine("| candidate | NDCG@10 | Recall@10 |");
Console.WriteLine("|---|---|---|");
foreach (var (candidate, c) in m.Candidates)
    Console.WriteLine(FormattableString.Invariant($"| {candidate}{(candidate == m.Winner ? " (served)" : "")} | {c.NdcgAt10:F4} | {c.RecallAt10:F4} |"));
var rawAls = raw.Candidates[RecommenderCandidates.Als];
Console.WriteLine(FormattableString.Invariant($"| als on raw weights (not a candidate) | {rawAls.NdcgAt10:F4} | {rawAls.RecallAt10:F4} |"));
Console.WriteLine(FormattableString.Invariant(
    $"winner: {m.Winner} ({m.Selection}); margin over the runner-up ({m.RunnerUp}) {m.MarginOverRunnerUp:+0.0000;-0.0000;0}, over popularity {m.MarginOverPopularity:+0.0000;-0.0000;0}"));
Console.WriteLine(FormattableString.Invariant(
    $"ALS lift over popularity in NDCG@10: compressed {m.Candidates[RecommenderCandidates.Als].NdcgAt10 / Math.Max(1e-9, m.BaselineNdcgAt10 ?? 0):F2}x, raw {rawAls.NdcgAt10 / Math.Max(1e-9, raw.BaselineNdcgAt10 ?? 0):F2}x (raw run {rawSeconds:F1} s)"));
