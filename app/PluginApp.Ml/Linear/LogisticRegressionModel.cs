using PluginApp.Ml.Common;
using PluginApp.Ml.Serialization;

namespace PluginApp.Ml.Linear;

/// <summary>Fitted logistic regression; coefficients are on the standardized scale.</summary>
public sealed class LogisticRegressionModel : IBinaryClassifier
{
    private const string Magic = "PLOG";
    private const int Version = 1;

    internal LogisticRegressionModel(string[] names, double[] mean, double[] std, double[] weights, double intercept)
    {
        FeatureNames = names;
        Mean = mean;
        Std = std;
        Weights = weights;
        Intercept = intercept;
    }

    /// <summary>Column names.</summary>
    public string[] FeatureNames { get; }
    /// <summary>Training means used for standardization.</summary>
    public double[] Mean { get; }
    /// <summary>Training standard deviations used for standardization.</summary>
    public double[] Std { get; }
    /// <summary>Coefficients of the standardized features.</summary>
    public double[] Weights { get; }
    /// <summary>Intercept.</summary>
    public double Intercept { get; }
    /// <inheritdoc />
    public int FeatureCount => FeatureNames.Length;

    /// <inheritdoc />
    public double PredictMargin(ReadOnlySpan<float> row)
    {
        var e = Explain(row);
        return e.Bias + e.Contributions.Sum();
    }

    /// <inheritdoc />
    public double PredictProbability(ReadOnlySpan<float> row) => ClassifierExtensions.Sigmoid(PredictMargin(row));

    /// <summary>Contribution of feature j is w_j * z_j (z standardized), so they add up to the margin with the intercept as bias.</summary>
    public Explanation Explain(ReadOnlySpan<float> row)
    {
        if (row.Length != FeatureCount) throw new ArgumentException($"Row has {row.Length} values, the model expects {FeatureCount}.", nameof(row));
        var c = new double[FeatureCount];
        for (var j = 0; j < c.Length; j++)
            c[j] = float.IsNaN(row[j]) ? 0 : Weights[j] * (row[j] - Mean[j]) / Std[j];
        return new Explanation(Intercept, c, FeatureNames);
    }

    /// <summary>
    /// Layout (little-endian): "PLOG" | int32 version=1 | string[] featureNames | float64[] mean | float64[] std |
    /// float64[] weights (each array: int32 length = feature count, then values) | float64 intercept.
    /// </summary>
    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        ModelFormat.WriteHeader(w, Magic, Version);
        ModelFormat.WriteStrings(w, FeatureNames);
        ModelFormat.WriteDoubles(w, Mean);
        ModelFormat.WriteDoubles(w, Std);
        ModelFormat.WriteDoubles(w, Weights);
        w.Write(Intercept);
    }

    /// <summary>Reads a model written by <see cref="Save"/>; throws <see cref="InvalidDataException"/> on a bad blob.</summary>
    public static LogisticRegressionModel Load(Stream stream)
    {
        var r = ModelFormat.ReadHeader(stream, nameof(LogisticRegressionModel), Magic, Version);
        var names = r.ReadStrings("featureNames");
        var mean = r.ReadDoubles("mean", names.Length);
        var std = r.ReadDoubles("std", names.Length);
        var weights = r.ReadDoubles("weights", names.Length);
        var intercept = r.ReadDouble("intercept");
        return new LogisticRegressionModel(names, mean, std, weights, intercept);
    }
}
