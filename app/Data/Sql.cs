using Npgsql;
using NpgsqlTypes;

namespace PluginApp.Data;

/// <summary>Parameters for hand-written SQL ($1..$n), typed the way PostgreSQL needs them.</summary>
public static class Sql
{
    public static NpgsqlParameter Param(object? v) => v switch
    {
        null => new NpgsqlParameter { Value = DBNull.Value },
        DateTimeOffset t => new NpgsqlParameter { Value = t.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz },
        TypedNull n => new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = n.Type },
        _ => new NpgsqlParameter { Value = v },
    };

    /// <summary>A nullable text parameter.</summary>
    public static NpgsqlParameter Text(string? s) => new() { Value = (object?)s ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };
}

/// <summary>A null whose SQL type must be known (e.g. compared with IS NOT DISTINCT FROM).</summary>
public sealed record TypedNull(NpgsqlDbType Type)
{
    public static object Time(DateTimeOffset? t) => t is { } v ? v : new TypedNull(NpgsqlDbType.TimestampTz);
}
