namespace MlBench;

/// <summary>Dense row-major numbers with column names: what the bench exports to XGBoost (NaN = missing).</summary>
internal sealed class Matrix(float[] values, int rows, string[] names)
{
    public float[] Values { get; } = values;
    public int Rows { get; } = rows;
    public string[] Names { get; } = names;
    public int Columns => Names.Length;

    public ReadOnlySpan<float> Row(int r) => Values.AsSpan(r * Columns, Columns);

    public Matrix Subset(IReadOnlyList<int> rows)
    {
        var v = new float[rows.Count * Columns];
        for (var i = 0; i < rows.Count; i++) Row(rows[i]).CopyTo(v.AsSpan(i * Columns, Columns));
        return new Matrix(v, rows.Count, Names);
    }
}
