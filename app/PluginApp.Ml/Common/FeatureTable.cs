namespace PluginApp.Ml.Common;

/// <summary>Dense row-major feature matrix with column names. NaN marks a missing value.</summary>
public sealed class FeatureTable
{
    /// <summary>Wraps row-major values (not copied).</summary>
    public FeatureTable(float[] values, int rows, IReadOnlyList<string> featureNames)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(featureNames);
        if (featureNames.Count == 0) throw new ArgumentException("At least one feature is required.", nameof(featureNames));
        if (rows < 0 || (long)rows * featureNames.Count != values.Length)
            throw new ArgumentException($"values has {values.Length} entries, expected rows ({rows}) x columns ({featureNames.Count}).", nameof(values));
        Values = values;
        Rows = rows;
        FeatureNames = featureNames.ToArray();
    }

    /// <summary>Row-major values.</summary>
    public float[] Values { get; }
    /// <summary>Number of rows.</summary>
    public int Rows { get; }
    /// <summary>Number of columns.</summary>
    public int Columns => FeatureNames.Length;
    /// <summary>Column names.</summary>
    public string[] FeatureNames { get; }

    /// <summary>One row.</summary>
    public ReadOnlySpan<float> Row(int r) => Values.AsSpan(r * Columns, Columns);

    /// <summary>Copy of the selected rows, in the given order.</summary>
    public FeatureTable Subset(ReadOnlySpan<int> rows)
    {
        var c = Columns;
        var v = new float[rows.Length * c];
        for (var i = 0; i < rows.Length; i++) Row(rows[i]).CopyTo(v.AsSpan(i * c, c));
        return new FeatureTable(v, rows.Length, FeatureNames);
    }
}

/// <summary>One feature's share of a score.</summary>
/// <param name="Feature">Feature name.</param>
/// <param name="Value">Contribution to the margin (log-odds).</param>
public readonly record struct FeatureContribution(string Feature, double Value);

/// <summary>A margin split into a bias plus one contribution per feature; Bias + sum(Contributions) = margin.</summary>
public sealed class Explanation
{
    /// <summary>Creates an explanation.</summary>
    public Explanation(double bias, double[] contributions, string[] featureNames)
    {
        Bias = bias;
        Contributions = contributions;
        FeatureNames = featureNames;
    }

    /// <summary>Part of the margin that no feature explains (base score / intercept).</summary>
    public double Bias { get; }
    /// <summary>Per-feature contributions, in column order.</summary>
    public double[] Contributions { get; }
    /// <summary>Column names.</summary>
    public string[] FeatureNames { get; }
    /// <summary>Bias plus all contributions.</summary>
    public double Margin => Bias + Contributions.Sum();

    /// <summary>The n features with the largest absolute contribution, largest first.</summary>
    public IReadOnlyList<FeatureContribution> TopReasons(int n) =>
        Contributions.Select((v, i) => new FeatureContribution(FeatureNames[i], v))
            .Where(c => c.Value != 0)
            .OrderByDescending(c => Math.Abs(c.Value)).ThenBy(c => c.Feature, StringComparer.Ordinal)
            .Take(n).ToArray();
}

/// <summary>A trained binary classifier that scores one row at a time.</summary>
public interface IBinaryClassifier
{
    /// <summary>Number of input columns.</summary>
    int FeatureCount { get; }
    /// <summary>Log-odds.</summary>
    double PredictMargin(ReadOnlySpan<float> row);
    /// <summary>Uncalibrated probability, sigmoid of the margin.</summary>
    double PredictProbability(ReadOnlySpan<float> row);
    /// <summary>Margin decomposed into feature contributions.</summary>
    Explanation Explain(ReadOnlySpan<float> row);
}

/// <summary>Helpers for classifiers.</summary>
public static class ClassifierExtensions
{
    /// <summary>Probabilities for every row of a table.</summary>
    public static double[] PredictProbabilities(this IBinaryClassifier model, FeatureTable table)
    {
        ArgumentNullException.ThrowIfNull(model);
        var p = new double[table.Rows];
        for (var i = 0; i < p.Length; i++) p[i] = model.PredictProbability(table.Row(i));
        return p;
    }

    /// <summary>Margins for every row of a table.</summary>
    public static double[] PredictMargins(this IBinaryClassifier model, FeatureTable table)
    {
        ArgumentNullException.ThrowIfNull(model);
        var p = new double[table.Rows];
        for (var i = 0; i < p.Length; i++) p[i] = model.PredictMargin(table.Row(i));
        return p;
    }

    internal static double Sigmoid(double m) => m >= 0 ? 1 / (1 + Math.Exp(-m)) : Math.Exp(m) / (1 + Math.Exp(m));
}
