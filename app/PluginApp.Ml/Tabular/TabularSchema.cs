using System.Globalization;

namespace PluginApp.Ml.Tabular;

/// <summary>How a feature's values are read.</summary>
public enum FeatureKind
{
    /// <summary>A number (<see cref="float"/>); NaN or null is missing.</summary>
    Numeric = 0,
    /// <summary>A category (<see cref="string"/>); null or empty is missing.</summary>
    Categorical = 1,
}

/// <summary>One named input of a tabular model.</summary>
/// <param name="Name">Unique name (ordinal comparison); what <see cref="FeatureContribution.Feature"/> reports.</param>
/// <param name="Kind">Numeric or categorical.</param>
/// <param name="Description">Short human wording of what the feature measures ("order total in the shop's currency"),
/// carried into every explanation so the app can turn contributions into reasons.</param>
public sealed record TabularFeature(string Name, FeatureKind Kind, string Description)
{
    /// <summary>A numeric feature.</summary>
    public static TabularFeature Numeric(string name, string description) => new(name, FeatureKind.Numeric, description);

    /// <summary>A categorical feature.</summary>
    public static TabularFeature Categorical(string name, string description) => new(name, FeatureKind.Categorical, description);
}

/// <summary>
/// The named features of a tabular model, in a fixed order. Rows are built against a schema
/// (<see cref="Row(object?[])"/>), so a wrong width, a value of the wrong type or an unknown feature name is rejected
/// with an <see cref="ArgumentException"/> that names it before anything reaches ML.NET.
/// </summary>
public sealed class TabularSchema : IEquatable<TabularSchema>
{
    private readonly TabularFeature[] _features;
    private readonly Dictionary<string, int> _index;

    /// <summary>Creates a schema; names must be non-empty and unique, kinds defined, descriptions non-null.</summary>
    public TabularSchema(IEnumerable<TabularFeature> features)
    {
        ArgumentNullException.ThrowIfNull(features);
        _features = features.ToArray();
        if (_features.Length == 0) throw new ArgumentException("A schema needs at least one feature.", nameof(features));
        _index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < _features.Length; i++)
        {
            var f = _features[i] ?? throw new ArgumentException($"features[{i}] is null.", nameof(features));
            if (string.IsNullOrWhiteSpace(f.Name)) throw new ArgumentException($"features[{i}] has an empty name.", nameof(features));
            if (!Enum.IsDefined(f.Kind))
                throw new ArgumentException($"Feature '{f.Name}' has unknown kind {(int)f.Kind}; expected Numeric or Categorical.", nameof(features));
            if (f.Description is null) throw new ArgumentException($"Feature '{f.Name}' has no description.", nameof(features));
            if (!_index.TryAdd(f.Name, i)) throw new ArgumentException($"Feature '{f.Name}' appears twice.", nameof(features));
        }
    }

    /// <summary>Creates a schema from features.</summary>
    public TabularSchema(params TabularFeature[] features) : this((IEnumerable<TabularFeature>)features) { }

    /// <summary>The features in column order.</summary>
    public IReadOnlyList<TabularFeature> Features => _features;

    /// <summary>Number of features.</summary>
    public int Count => _features.Length;

    /// <summary>Position of a feature, or -1.</summary>
    public int IndexOf(string name) => _index.TryGetValue(name, out var i) ? i : -1;

    /// <summary>A feature by name; <see cref="ArgumentException"/> naming it when unknown.</summary>
    public TabularFeature this[string name] => _features[Require(name)];

    internal int Require(string name) =>
        _index.TryGetValue(name, out var i) ? i : throw new ArgumentException($"Unknown feature '{name}'; the schema has: {string.Join(", ", _features.Select(f => f.Name))}.", nameof(name));

    /// <summary>
    /// A row from values in schema order. Numeric features take any .NET number or bool (true = 1), null or NaN for
    /// missing, never an infinity; categorical features take a string, null or "" for missing.
    /// </summary>
    public TabularRow Row(params object?[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != _features.Length)
            throw new ArgumentException($"The row has {values.Length} values; the schema has {_features.Length} features ({string.Join(", ", _features.Select(f => f.Name))}).", nameof(values));
        var row = new TabularRow(this);
        for (var i = 0; i < values.Length; i++) row.SetValue(i, values[i]);
        return row;
    }

    /// <summary>A row from values by feature name; features not named are missing, an unknown name is rejected.</summary>
    public TabularRow Row(IReadOnlyDictionary<string, object?> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var row = new TabularRow(this);
        foreach (var (name, value) in values)
        {
            var i = IndexOf(name);
            if (i < 0) throw new ArgumentException($"Unknown feature '{name}'; the schema has: {string.Join(", ", _features.Select(f => f.Name))}.", nameof(values));
            row.SetValue(i, value);
        }
        return row;
    }

    /// <summary>Same features (name, kind, description) in the same order.</summary>
    public bool Equals(TabularSchema? other) =>
        other is not null && (ReferenceEquals(this, other) || _features.AsSpan().SequenceEqual(other._features));

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as TabularSchema);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var f in _features) h.Add(f);
        return h.ToHashCode();
    }
}

/// <summary>One row of a <see cref="TabularSchema"/>: a float per numeric feature (NaN = missing) and a string per
/// categorical feature (null = missing). Build it with <see cref="TabularSchema.Row(object?[])"/>.</summary>
public sealed class TabularRow
{
    internal readonly float[] Numbers;
    internal readonly string?[] Categories;

    internal TabularRow(TabularSchema schema)
    {
        Schema = schema;
        Numbers = new float[schema.Count];
        Categories = new string?[schema.Count];
        Array.Fill(Numbers, float.NaN);
    }

    /// <summary>The schema the row was built against.</summary>
    public TabularSchema Schema { get; }

    /// <summary>The value of a feature: a <see cref="float"/> or a <see cref="string"/>, null when missing.</summary>
    public object? this[string feature] => Value(Schema.Require(feature));

    internal object? Value(int i) => Schema.Features[i].Kind == FeatureKind.Numeric
        ? float.IsNaN(Numbers[i]) ? null : Numbers[i]
        : Categories[i];

    internal void SetValue(int i, object? value)
    {
        var f = Schema.Features[i];
        if (f.Kind == FeatureKind.Categorical)
        {
            Categories[i] = value switch
            {
                null => null,
                string s => s.Length == 0 ? null : s,
                _ => throw new ArgumentException($"Feature '{f.Name}' is categorical and takes a string or null; got {value.GetType().Name}.", nameof(value)),
            };
            return;
        }
        float x = value switch
        {
            null => float.NaN,
            float v => v,
            double v => (float)v,
            int v => v,
            long v => v,
            decimal v => (float)v,
            short v => v,
            byte v => v,
            bool v => v ? 1f : 0f,
            _ => throw new ArgumentException($"Feature '{f.Name}' is numeric and takes a number, a bool or null; got {value.GetType().Name}.", nameof(value)),
        };
        if (float.IsInfinity(x))
            throw new ArgumentException($"Feature '{f.Name}' got {Convert.ToString(value, CultureInfo.InvariantCulture)}, which is infinite as a float; use null or NaN for missing.", nameof(value));
        Numbers[i] = x;
    }
}

/// <summary>A training row: features, label and an optional positive weight.</summary>
/// <param name="Row">The features.</param>
/// <param name="Label">True for the positive class (fraud, churned, purchased).</param>
/// <param name="Weight">Example weight (finite, &gt; 0), multiplied by <see cref="TabularOptions.PositiveWeight"/> for positives.</param>
public sealed record TabularExample(TabularRow Row, bool Label, float Weight = 1f);
