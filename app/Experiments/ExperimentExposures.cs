using Npgsql;
using PluginApp.Data;

namespace PluginApp.Experiments;

/// <summary>One unit seeing one arm: what the exposure log records (its first time only).</summary>
public sealed record Exposure(long ShopId, string Experiment, string Unit, string Arm, long? CustomerId, DateTimeOffset At);

/// <summary>
/// Writes exposures: the first time a unit actually saw an arm. Each row gets its CUPED covariate when the unit is a known
/// customer: their order revenue (not cancelled) in the 30 days before that first exposure, so the analysis can remove
/// what they would have spent anyway. A unit seen again writes nothing.
/// </summary>
public static class ExperimentExposures
{
    public static readonly string InsertSql = $$"""
        INSERT INTO experiment_exposures (shop_id, experiment, unit, arm, customer_id, covariate, first_at)
        SELECT x.shop_id, x.experiment, x.unit, x.arm, x.customer_id,
               CASE WHEN x.customer_id IS NULL THEN 0 ELSE
                 (SELECT coalesce(sum(o.total_price), 0) FROM orders o
                  WHERE o.shop_id = x.shop_id AND o.customer_id = x.customer_id AND o.cancelled_at IS NULL AND NOT o.test
                    AND o.created_at >= x.first_at - interval '30 days' AND o.created_at < x.first_at
                    AND {{StoreData.OrderTime.Placed("o")}} >= x.first_at - interval '30 days') END,
               x.first_at
        FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::timestamptz[])
             AS x(shop_id, experiment, unit, arm, customer_id, first_at)
        ON CONFLICT (shop_id, experiment, unit) DO NOTHING
        """;

    /// <summary>The statement for a batch of exposures (earliest first, so a unit's first arm wins within the batch).</summary>
    public static NpgsqlBatchCommand Command(IReadOnlyCollection<Exposure> batch)
    {
        var ordered = batch.OrderBy(e => e.At).ToList();
        return new NpgsqlBatchCommand(InsertSql)
        {
            Parameters =
            {
                Sql.Param(ordered.Select(e => e.ShopId).ToArray()),
                Sql.Param(ordered.Select(e => e.Experiment).ToArray()),
                Sql.Param(ordered.Select(e => e.Unit).ToArray()),
                Sql.Param(ordered.Select(e => e.Arm).ToArray()),
                new NpgsqlParameter { Value = ordered.Select(e => e.CustomerId).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Bigint },
                Sql.Param(ordered.Select(e => e.At.ToUniversalTime()).ToArray()),
            },
        };
    }

    public static async Task RecordAsync(NpgsqlDataSource db, Exposure exposure, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var batch = new NpgsqlBatch(conn) { BatchCommands = { Command([exposure]) } };
        await batch.ExecuteNonQueryAsync(ct);
    }
}
