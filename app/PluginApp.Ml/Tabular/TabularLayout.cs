using Microsoft.ML;
using Microsoft.ML.Data;

namespace PluginApp.Ml.Tabular;

/// <summary>The row ML.NET sees: every numeric feature in one float vector, the numerics that were missing in
/// training once more (for their missing indicators), and every categorical feature in one text vector.</summary>
internal sealed class TabularMlInput
{
    /// <summary>Numeric features in schema order (NaN = missing).</summary>
    public float[] Num = [];
    /// <summary>The numeric features that get a missing indicator.</summary>
    public float[] NumM = [];
    /// <summary>Categorical features in schema order (<see cref="TabularLayout.MissingCategory"/> = missing).</summary>
    public ReadOnlyMemory<char>[] Cat = [];
    /// <summary>Label (training only).</summary>
    public bool Label;
    /// <summary>Example weight (training only).</summary>
    public float Weight = 1;
}

/// <summary>What a <see cref="PredictionEngine{TSrc,TDst}"/> reads back.</summary>
internal sealed class TabularMlOutput
{
    // Why: ML.NET's prediction engine writes these fields by reflection, which the compiler cannot see.
#pragma warning disable CS0649
    /// <summary>The learner's raw score (log-odds).</summary>
    public float Score;
    /// <summary>Calibrated probability.</summary>
    public float Probability;
#pragma warning restore CS0649
}

/// <summary>One vocabulary entry for ML.NET's one-hot encoder.</summary>
internal sealed class TabularMlTerm
{
    /// <summary>The category.</summary>
    public ReadOnlyMemory<char> Value;
}

/// <summary>
/// How a schema's features map to ML.NET's input columns and to the slots of the <c>Features</c> vector the learner sees,
/// so that contributions can be summed back to the original features.
/// </summary>
internal sealed class TabularLayout
{
    /// <summary>Stands in for a missing category, so "missing" is a level of its own in the one-hot encoding.</summary>
    public const string MissingCategory = "(missing)";

    public const string NumColumn = "Num", MissColumn = "NumM", CatColumn = "Cat", LabelColumn = "Label", WeightColumn = "Weight";
    public const string FeaturesColumn = "Features", ScoreColumn = "Score", ProbabilityColumn = "Probability", ContributionsColumn = "FeatureContributions";

    public TabularLayout(TabularSchema schema, int[] missingIndicators, int[] slotFeature)
    {
        Schema = schema;
        Numeric = Enumerable.Range(0, schema.Count).Where(i => schema.Features[i].Kind == FeatureKind.Numeric).ToArray();
        Categorical = Enumerable.Range(0, schema.Count).Where(i => schema.Features[i].Kind == FeatureKind.Categorical).ToArray();
        MissingIndicators = missingIndicators;
        SlotFeature = slotFeature;
        Definition = CreateDefinition();
    }

    public TabularSchema Schema { get; }
    /// <summary>Schema indexes of the numeric features, in order.</summary>
    public int[] Numeric { get; }
    /// <summary>Schema indexes of the categorical features, in order.</summary>
    public int[] Categorical { get; }
    /// <summary>Schema indexes of the numeric features that get a missing indicator (they were missing in training).</summary>
    public int[] MissingIndicators { get; }
    /// <summary>For every slot of the Features vector, the schema index of the feature it came from.</summary>
    public int[] SlotFeature { get; }
    /// <summary>ML.NET schema of <see cref="TabularMlInput"/> with the vector sizes fixed.</summary>
    public SchemaDefinition Definition { get; }

    public TabularLayout WithSlots(int[] slotFeature) => new(Schema, MissingIndicators, slotFeature);

    private SchemaDefinition CreateDefinition()
    {
        var def = SchemaDefinition.Create(typeof(TabularMlInput));
        // Why: a vector of size 0 means "variable length" to ML.NET, so an absent part is left out instead.
        Fix(def, NumColumn, Numeric.Length, NumberDataViewType.Single);
        Fix(def, MissColumn, MissingIndicators.Length, NumberDataViewType.Single);
        Fix(def, CatColumn, Categorical.Length, TextDataViewType.Instance);
        return def;
    }

    private static void Fix(SchemaDefinition def, string column, int size, PrimitiveDataViewType type)
    {
        var c = def[column];
        if (size == 0) def.Remove(c);
        else c.ColumnType = new VectorDataViewType(type, size);
    }

    public TabularMlInput Pack(TabularRow row, bool label = false, float weight = 1)
    {
        var input = new TabularMlInput { Label = label, Weight = weight };
        if (Numeric.Length > 0)
        {
            input.Num = new float[Numeric.Length];
            for (var j = 0; j < Numeric.Length; j++) input.Num[j] = row.Numbers[Numeric[j]];
        }
        if (MissingIndicators.Length > 0)
        {
            input.NumM = new float[MissingIndicators.Length];
            for (var j = 0; j < MissingIndicators.Length; j++) input.NumM[j] = row.Numbers[MissingIndicators[j]];
        }
        if (Categorical.Length > 0)
        {
            input.Cat = new ReadOnlyMemory<char>[Categorical.Length];
            for (var j = 0; j < Categorical.Length; j++) input.Cat[j] = (row.Categories[Categorical[j]] ?? MissingCategory).AsMemory();
        }
        return input;
    }

    /// <summary>
    /// Maps the Features slots back to features: the numerics (mean-imputed), then their missing indicators, then one block
    /// of <c>k</c> one-hot slots per categorical feature (ML.NET's indicator encoding of a vector column is slot-major).
    /// </summary>
    public int[] ComputeSlots(int featuresSize)
    {
        var fixedSlots = Numeric.Length + MissingIndicators.Length;
        var oneHot = featuresSize - fixedSlots;
        if (oneHot < 0 || (Categorical.Length == 0 ? oneHot != 0 : oneHot % Categorical.Length != 0))
            throw new InvalidOperationException($"Features has {featuresSize} slots, which does not fit {Numeric.Length} numerics, {MissingIndicators.Length} indicators and {Categorical.Length} categoricals.");
        var k = Categorical.Length == 0 ? 0 : oneHot / Categorical.Length;
        var map = new int[featuresSize];
        var s = 0;
        foreach (var f in Numeric) map[s++] = f;
        foreach (var f in MissingIndicators) map[s++] = f;
        foreach (var f in Categorical)
            for (var j = 0; j < k; j++) map[s++] = f;
        return map;
    }
}
