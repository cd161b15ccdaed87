using PluginApp.Ml.Serialization;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Churn;

/// <summary>
/// Everything needed to score churn: the kind, the horizon, BG/NBD and Gamma-Gamma fitted on all history before the
/// training moment, the classifier (discriminative) or the probabilistic score's calibrator. Thread-safe (the ML.NET
/// parts are). Dispose releases the classifier's pooled engines.
/// </summary>
public sealed class ChurnModel : IDisposable
{
    private const string Name = "ChurnModel", Magic = "CHRN";
    private const int Version = 2;
    private readonly TabularModel? _classifier;
    private readonly TabularModel? _calibrator;

    internal ChurnModel(ChurnModelKind kind, int horizonDays, BgNbd bgNbd, GammaGamma gammaGamma, TabularModel? classifier, TabularModel? calibrator,
        ChurnShrinkage? shrinkage = null)
    {
        if (kind == ChurnModelKind.Discriminative && classifier is null) throw new ArgumentException("A discriminative churn model needs its classifier.");
        if (shrinkage is { } s && !(s.Toward is >= 0 and <= 1 && s.Weight is >= 0 and <= 1))
            throw new ArgumentOutOfRangeException(nameof(shrinkage), s, "Shrinkage needs Toward and Weight in [0, 1].");
        (Kind, HorizonDays, BgNbd, GammaGamma, _classifier, _calibrator, Shrinkage) = (kind, horizonDays, bgNbd, gammaGamma, classifier, calibrator, shrinkage);
    }

    /// <summary>When set, every served probability p is Toward + Weight x (p − Toward): pulled toward the latest churn rate
    /// because the chosen model's held-out Brier score was not below the base rate's (see <see cref="ChurnTrainer.Train"/>).
    /// Null: the model's own probabilities are served.</summary>
    public ChurnShrinkage? Shrinkage { get; }

    /// <summary>Which score <see cref="ChurnPrediction.ChurnProbability"/> is.</summary>
    public ChurnModelKind Kind { get; }

    /// <summary>H: ChurnProbability is P(no purchase in the next H days).</summary>
    public int HorizonDays { get; }

    /// <summary>The repeat-purchase model (fitted in days, on distinct purchase days).</summary>
    public BgNbd BgNbd { get; }

    /// <summary>The spend model; check <see cref="GammaGamma.Trusted"/>.</summary>
    public GammaGamma GammaGamma { get; }

    /// <summary>The classifier's info (learner, rows), null for the probabilistic kind.</summary>
    public TabularModelInfo? ClassifierInfo => _classifier?.Info;

    /// <summary>Whether the probabilistic score is recalibrated (false: BG/NBD's own probability).</summary>
    public bool Calibrated => Kind == ChurnModelKind.Discriminative || _calibrator is not null;

    /// <summary>
    /// Scores customers at <paramref name="now"/> from their orders before it; one ML.NET pass for the batch. The result
    /// is aligned with the input. A customer without a purchase before now gets NaN probabilities and the reason
    /// "no order before now" (the app should not hand such customers in). Reasons: the top 3 features by contribution
    /// toward churn (discriminative) or the recency, frequency and purchase-pattern facts (probabilistic).
    /// </summary>
    public ChurnPrediction[] Score(IReadOnlyList<CustomerHistory> customers, DateTime now)
    {
        ArgumentNullException.ThrowIfNull(customers);
        var profiles = customers.Select(c => CustomerProfile.At(c, now)).ToArray();
        var live = Enumerable.Range(0, customers.Count).Where(i => profiles[i] is not null).ToArray();
        var rows = live.Select(i => ChurnFeatures.Build(profiles[i]!, BgNbd, HorizonDays)).ToArray();
        var probabilities = new double[rows.Length];
        var reasons = new IReadOnlyList<ChurnReason>[rows.Length];
        if (Kind == ChurnModelKind.Discriminative)
        {
            var explained = rows.Length == 0 ? [] : _classifier!.Explain(rows);
            for (var k = 0; k < rows.Length; k++)
            {
                probabilities[k] = explained[k].Probability;
                reasons[k] = explained[k].Contributions.OrderByDescending(c => c.Contribution)
                    .Select(c => new ChurnReason(c.Feature, ChurnFeatures.Reason(c.Feature, rows[k], HorizonDays), c.Contribution))
                    .DistinctBy(r => r.Text).Take(3).ToArray();
            }
        }
        else
        {
            var raw = live.Select(i => BgNbd.ProbabilityNoOrders(profiles[i]!.Summary(), HorizonDays)).ToArray();
            var p = _calibrator is null ? raw : _calibrator.PredictProbabilities(raw.Select(CalibrationRow).ToArray());
            for (var k = 0; k < rows.Length; k++)
            {
                probabilities[k] = p[k];
                reasons[k] = new[] { "days_since_last_order", "orders", "bgnbd_expected_orders" }
                    .Select(f => new ChurnReason(f, ChurnFeatures.Reason(f, rows[k], HorizonDays), 0)).ToArray();
            }
        }
        if (Shrinkage is { } shrink)
            for (var k = 0; k < probabilities.Length; k++) probabilities[k] = shrink.Apply(probabilities[k]);
        var result = new ChurnPrediction[customers.Count];
        var byIndex = new Dictionary<int, int>();
        for (var k = 0; k < live.Length; k++) byIndex[live[k]] = k;
        for (var i = 0; i < customers.Count; i++)
        {
            if (!byIndex.TryGetValue(i, out var k))
            {
                result[i] = new ChurnPrediction(customers[i].CustomerId, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, null, null,
                    0, double.NaN, 0, [new ChurnReason("orders", "no order before now", 0)], 0);
                continue;
            }
            var pr = profiles[i]!;
            var s = pr.Summary();
            var e365 = BgNbd.ExpectedOrders(s, 365);
            var spend = GammaGamma.ExpectedAverageSpend(s);
            result[i] = new ChurnPrediction(customers[i].CustomerId, probabilities[k], BgNbd.ProbabilityAlive(s), BgNbd.ExpectedOrders(s, 30),
                BgNbd.ExpectedOrders(s, 90), e365, spend, spend * e365, pr.Purchases.Length, pr.DaysSinceLast, pr.NetSpend, reasons[k], pr.Days.Length);
        }
        return result;
    }

    internal static readonly TabularSchema CalibrationSchema = new(
        TabularFeature.Numeric("bgnbd_logit_p_no_order", "log-odds of no order in the horizon by the purchase-pattern model"));

    internal static TabularRow CalibrationSchemaRow(double x) => CalibrationSchema.Row(x);

    internal static TabularRow CalibrationRow(double pNoOrder)
    {
        var p = Math.Clamp(pNoOrder, 1e-9, 1 - 1e-9);
        return CalibrationSchema.Row(Math.Log(p / (1 - p)));
    }

    /// <summary>
    /// Writes the model. Layout (little-endian): magic "CHRN", int32 version 1; int32 kind, int32 horizon days;
    /// string[] feature names; BG/NBD r, alpha, a, b, log-likelihood (float64), customers (int32), interior (int32 0/1);
    /// Gamma-Gamma p, q, gamma, log-likelihood, trimmed-above (float64), customers (int32), trusted (int32 0/1), reason
    /// (string); byte[] classifier (TabularModel blob, empty = none); byte[] calibrator (TabularModel blob, empty = none);
    /// int32 shrunk (0/1), then when 1 the shrinkage's toward and weight (float64; new in version 2).
    /// </summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        w.Write((int)Kind);
        w.Write(HorizonDays);
        ModelFormat.WriteStrings(w, ChurnFeatures.Names);
        w.Write(BgNbd.R); w.Write(BgNbd.Alpha); w.Write(BgNbd.A); w.Write(BgNbd.B); w.Write(BgNbd.LogLikelihood);
        w.Write(BgNbd.Customers); w.Write(BgNbd.Interior ? 1 : 0);
        var g = GammaGamma;
        w.Write(g.P); w.Write(g.Q); w.Write(g.Gamma); w.Write(g.LogLikelihood); w.Write(g.TrimmedAbove);
        w.Write(g.Customers); w.Write(g.Trusted ? 1 : 0); w.Write(g.Reason);
        ModelFormat.WriteBytes(w, Blob(_classifier));
        ModelFormat.WriteBytes(w, Blob(_calibrator));
        w.Write(Shrinkage is null ? 0 : 1);
        if (Shrinkage is { } shrink) { w.Write(shrink.Toward); w.Write(shrink.Weight); }
    }

    private static byte[] Blob(TabularModel? m)
    {
        if (m is null) return [];
        using var ms = new MemoryStream();
        m.Save(ms);
        return ms.ToArray();
    }

    /// <summary>Reads a model written by <see cref="Save"/>; a wrong, truncated or corrupt blob throws
    /// <see cref="InvalidDataException"/> naming the field.</summary>
    public static ChurnModel Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, Name, Magic, Version);
        var kind = (ChurnModelKind)r.ReadInt32("kind", 0, 1);
        var horizon = r.ReadInt32("horizon days", 1, 3650);
        var names = r.ReadStrings("feature names");
        if (!names.SequenceEqual(ChurnFeatures.Names))
            throw new InvalidDataException($"{Name}: field 'feature names' ({string.Join(", ", names)}) does not match this build's features.");
        double D(string field)
        {
            var v = r.ReadDouble(field);
            return double.IsNaN(v) && field.EndsWith("log-likelihood", StringComparison.Ordinal) ? v
                : !double.IsNaN(v) ? v : throw new InvalidDataException($"{Name}: field '{field}' is NaN.");
        }
        BgNbd bg;
        var (br, ba, bA, bB, bll) = (D("BG/NBD r"), D("BG/NBD alpha"), D("BG/NBD a"), D("BG/NBD b"), D("BG/NBD log-likelihood"));
        var (bn, bi) = (r.ReadInt32("BG/NBD customers", 0, int.MaxValue), r.ReadInt32("BG/NBD interior", 0, 1));
        try { bg = new BgNbd(br, ba, bA, bB, bll, bn, bi == 1); }
        catch (ArgumentOutOfRangeException e) { throw new InvalidDataException($"{Name}: field 'BG/NBD {e.ParamName}' is invalid: {e.ActualValue}.", e); }
        GammaGamma gg;
        var (gp, gq, gv, gll, gt) = (D("Gamma-Gamma p"), D("Gamma-Gamma q"), D("Gamma-Gamma gamma"), D("Gamma-Gamma log-likelihood"), D("Gamma-Gamma trimmed above"));
        var (gn, gtrust, greason) = (r.ReadInt32("Gamma-Gamma customers", 0, int.MaxValue), r.ReadInt32("Gamma-Gamma trusted", 0, 1), r.ReadString("Gamma-Gamma reason"));
        try { gg = new GammaGamma(gp, gq, gv, gtrust == 1, greason, gll, gn, gt); }
        catch (ArgumentOutOfRangeException e) { throw new InvalidDataException($"{Name}: field 'Gamma-Gamma {e.ParamName}' is invalid: {e.ActualValue}.", e); }
        var classifier = Nested(r.ReadByteArray("classifier"), "classifier");
        var calibrator = Nested(r.ReadByteArray("calibrator"), "calibrator");
        ChurnShrinkage? shrinkage = r.ReadInt32("shrunk", 0, 1) == 1 ? new ChurnShrinkage(D("shrinkage toward"), D("shrinkage weight")) : null;
        if (shrinkage is { } sh && !(sh.Toward is >= 0 and <= 1 && sh.Weight is >= 0 and <= 1))
            throw new InvalidDataException($"{Name}: field 'shrinkage' is invalid: {sh}.");
        if (kind == ChurnModelKind.Discriminative && classifier is null)
            throw new InvalidDataException($"{Name}: field 'classifier' is empty but the kind is Discriminative.");
        if (classifier is not null && !classifier.Schema.Equals(ChurnFeatures.Schema))
            throw new InvalidDataException($"{Name}: field 'classifier' has another schema than the churn features.");
        if (calibrator is not null && !calibrator.Schema.Equals(CalibrationSchema))
            throw new InvalidDataException($"{Name}: field 'calibrator' has another schema than the calibration feature.");
        return new ChurnModel(kind, horizon, bg, gg, classifier, calibrator, shrinkage);
    }

    private static TabularModel? Nested(byte[] bytes, string field)
    {
        if (bytes.Length == 0) return null;
        try { return TabularModel.Load(new MemoryStream(bytes, writable: false)); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{Name}: field '{field}': {e.Message}", e); }
    }

    /// <summary>Disposes the classifier and calibrator.</summary>
    public void Dispose()
    {
        _classifier?.Dispose();
        _calibrator?.Dispose();
    }
}
