using Npgsql;
using NpgsqlTypes;
using PluginApp.Data;

namespace PluginApp.StoreData;

/// <summary>
/// A statement over many rows at once, each column's values given as one typed array: the many-rows form of an upsert
/// (<see cref="UpsertStatement.ForRows"/>), a webhook segment's order lines, and each ingestion step's statement for a whole
/// segment of deliveries (<see cref="StoreWriter.AddToSegment"/>). Its SQL reads the rows from <c>{rows}</c>, unnested under
/// the alias, with <c>n</c> the row's position when the statement has children. Children (an order's lines) come from
/// <c>{children}</c>, unnested under their own alias, each with the <c>n</c> of its row.
/// </summary>
internal sealed class RowsStatement
{
    private readonly (string Name, string Type)[] _columns;
    private readonly (string Name, string Type)[] _children;

    /// <param name="columns">Each column as "name type", as in a table's definition (int8, int4, bool, numeric, timestamptz or text).</param>
    public RowsStatement(string alias, IEnumerable<string> columns, string sql, string? childAlias = null, IEnumerable<string>? childColumns = null)
    {
        _columns = columns.Select(Split).ToArray();
        _children = (childColumns ?? []).Select(Split).ToArray();
        if (_children.Length > 0 != childAlias is not null) throw new ArgumentException("children need both an alias and their columns", nameof(childAlias));
        var expanded = sql.Replace("{rows}", Unnest(_columns, alias, 1, ordinality: HasChildren), StringComparison.Ordinal);
        Sql = HasChildren
            ? expanded.Replace("{children}", Unnest([("n", "int8"), .. _children], childAlias!, _columns.Length + 1, ordinality: false), StringComparison.Ordinal)
            : expanded;
    }

    internal bool HasChildren => _children.Length > 0;

    internal string Sql { get; }

    /// <summary>The statement over these rows; each child's first value is its row's n (from 1).</summary>
    internal NpgsqlBatchCommand Command(IReadOnlyList<object?[]> rows, IReadOnlyList<object?[]>? children = null)
    {
        var cmd = new NpgsqlBatchCommand(Sql);
        for (var i = 0; i < _columns.Length; i++) cmd.Parameters.Add(ArrayParameter(_columns[i].Type, rows, i));
        if (HasChildren)
        {
            children ??= [];
            cmd.Parameters.Add(ArrayParameter("int8", children, 0));
            for (var i = 0; i < _children.Length; i++) cmd.Parameters.Add(ArrayParameter(_children[i].Type, children, i + 1));
        }
        return cmd;
    }

    private static (string Name, string Type) Split(string column) =>
        column.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var name, var type]
            ? (name, type)
            : throw new ArgumentException($"a column is \"name type\", not \"{column}\"", nameof(column));

    /// <summary>
    /// <c>unnest($first::type[], ...) AS alias(columns)</c> over one typed array parameter per column, numbered from
    /// <paramref name="first"/>; with <paramref name="ordinality"/>, each row's position (from 1) as a last column <c>n</c>.
    /// </summary>
    private static string Unnest(IReadOnlyList<(string Name, string Type)> columns, string alias, int first, bool ordinality) =>
        $"unnest({string.Join(", ", columns.Select((c, i) => $"${first + i}::{c.Type}[]"))})"
        + $"{(ordinality ? " WITH ORDINALITY" : "")} AS {alias}({string.Join(", ", columns.Select(c => c.Name))}{(ordinality ? ", n" : "")})";

    /// <summary>One column of many rows as a typed array (nulls kept), for <c>unnest</c>.</summary>
    private static NpgsqlParameter ArrayParameter(string sqlType, IReadOnlyList<object?[]> rows, int column)
    {
        T?[] Of<T>(Func<object, T> read) where T : struct
        {
            var a = new T?[rows.Count];
            for (var r = 0; r < a.Length; r++) a[r] = rows[r][column] is { } v and not TypedNull ? read(v) : null;
            return a;
        }
        return sqlType switch
        {
            "int8" => Data.Sql.Array(Of(Convert.ToInt64), NpgsqlDbType.Bigint),
            "int4" => Data.Sql.Array(Of(Convert.ToInt32), NpgsqlDbType.Integer),
            "bool" => Data.Sql.Array(Of(Convert.ToBoolean), NpgsqlDbType.Boolean),
            "numeric" => Data.Sql.Array(Of(Convert.ToDecimal), NpgsqlDbType.Numeric),
            "timestamptz" => Data.Sql.Array(Of(v => v is DateTimeOffset t ? t.UtcDateTime : DateTime.SpecifyKind((DateTime)v, DateTimeKind.Utc)),
                NpgsqlDbType.TimestampTz),
            "text" => Data.Sql.Array(rows.Select(r => r[column] switch
            {
                null or TypedNull => null,
                string text => text,
                var other => throw new ArgumentException($"a {other.GetType().Name} for text column {column}", nameof(rows)),
            }).ToArray(), NpgsqlDbType.Text),
            _ => throw new ArgumentException($"no array of {sqlType}", nameof(sqlType)),
        };
    }
}
