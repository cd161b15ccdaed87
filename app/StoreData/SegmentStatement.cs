using Npgsql;

namespace PluginApp.StoreData;

/// <summary>
/// A statement an ingestion step writes once for a whole segment of webhook deliveries (<see cref="SegmentRows"/>), over
/// the rows its deliveries gave it (<see cref="StoreWriter.AddToSegment"/>), instead of once per delivery. Its SQL reads
/// the rows from <c>{rows}</c>: one typed array per column, unnested under <paramref name="alias"/>, with <c>n</c> the
/// row's position when the statement has children. Children (an order's lines) come from <c>{children}</c>, unnested under
/// <paramref name="childAlias"/>, each with the <c>n</c> of its row.
/// </summary>
internal sealed class SegmentStatement
{
    private readonly (string Name, string Type)[] _columns;
    private readonly (string Name, string Type)[] _children;

    /// <param name="columns">Each column as "name type", as in a table's definition (types <see cref="UpsertStatement.ArrayParameter"/> takes).</param>
    public SegmentStatement(string alias, string[] columns, string sql, string? childAlias = null, string[]? childColumns = null)
    {
        _columns = columns.Select(Split).ToArray();
        _children = (childColumns ?? []).Select(Split).ToArray();
        Sql = Expand(alias, _columns, sql, childAlias, _children);
    }

    internal bool HasChildren => _children.Length > 0;

    internal string Sql { get; }

    /// <summary>The statement over these rows; each child's first value is its row's n (from 1).</summary>
    internal NpgsqlBatchCommand Command(IReadOnlyList<object?[]> rows, IReadOnlyList<object?[]> children)
    {
        var cmd = new NpgsqlBatchCommand(Sql);
        for (var i = 0; i < _columns.Length; i++) cmd.Parameters.Add(UpsertStatement.ArrayParameter(_columns[i].Type, rows, i));
        if (HasChildren)
        {
            cmd.Parameters.Add(UpsertStatement.ArrayParameter("int8", children, 0));
            for (var i = 0; i < _children.Length; i++) cmd.Parameters.Add(UpsertStatement.ArrayParameter(_children[i].Type, children, i + 1));
        }
        return cmd;
    }

    private static (string Name, string Type) Split(string column) =>
        column.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var name, var type]
            ? (name, type)
            : throw new ArgumentException($"a column is \"name type\", not \"{column}\"", nameof(column));

    private static string Expand(string alias, (string Name, string Type)[] columns, string sql, string? childAlias, (string Name, string Type)[] children)
    {
        if (children.Length > 0 != childAlias is not null) throw new ArgumentException("children need both an alias and their columns", nameof(childAlias));
        var expanded = sql.Replace("{rows}", UpsertStatement.Unnest(columns, alias, ordinality: children.Length > 0), StringComparison.Ordinal);
        return children.Length == 0 ? expanded
            : expanded.Replace("{children}", UpsertStatement.Unnest([("n", "int8"), .. children], childAlias!, first: columns.Length + 1), StringComparison.Ordinal);
    }
}
