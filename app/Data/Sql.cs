using Npgsql;
using NpgsqlTypes;

namespace PluginApp.Data;

/// <summary>Parameters for hand-written SQL ($1..$n), typed the way PostgreSQL needs them.</summary>
public static class Sql
{
    public static NpgsqlParameter Param(object? v) => v switch
    {
        null => new NpgsqlParameter { Value = DBNull.Value },
        NpgsqlParameter typed => typed, // a Text or an Array, typed whatever its value (null, or all nulls)
        DateTimeOffset t => new NpgsqlParameter { Value = t.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz },
        TypedNull n => new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = n.Type },
        _ => new NpgsqlParameter { Value = v },
    };

    /// <summary>
    /// An array parameter, e.g. one column of many rows for <c>unnest</c>. Why the element type stated: an array whose values are
    /// all null gives Npgsql nothing to infer it from, and a cast of a timestamp[] would read the times in the session's time
    /// zone.
    /// </summary>
    public static NpgsqlParameter Array<T>(T[] values, NpgsqlDbType element) =>
        new NpgsqlParameter<T[]> { TypedValue = values, NpgsqlDbType = NpgsqlDbType.Array | element };

    /// <summary>A nullable text parameter.</summary>
    public static NpgsqlParameter Text(string? s) => new() { Value = (object?)s ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };
}

/// <summary>A null whose SQL type must be known (e.g. compared with IS NOT DISTINCT FROM).</summary>
public sealed record TypedNull(NpgsqlDbType Type)
{
    public static object Time(DateTimeOffset? t) => t is { } v ? v : new TypedNull(NpgsqlDbType.TimestampTz);
}
