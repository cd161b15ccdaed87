using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Data;

namespace PluginApp.Webhooks;

public sealed record DeliveryView(string DeliveryId, string Topic, string Outcome, DateTimeOffset ReceivedAt, string? Error);

public sealed record DeliveryCount(string Topic, string Outcome, long Count);

/// <summary>Recent webhook deliveries, and how many of each topic ended how.</summary>
public static class WebhooksAdminApi
{
    public static RouteGroupBuilder MapWebhooksAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/webhooks", async (NpgsqlDataSource db, ShopScope scope, CancellationToken ct) => TypedResults.Ok(await RecentAsync(db, scope.ShopId, 100, ct)));
        return api;
    }

    public static async Task<List<DeliveryView>> RecentAsync(NpgsqlDataSource db, long shopId, int limit, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT delivery_id, topic, outcome, received_at, error FROM webhook_deliveries WHERE shop_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(limit);
        var list = new List<DeliveryView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new DeliveryView(r.GetString(0), r.GetString(1), r.GetString(2), r.GetFieldValue<DateTimeOffset>(3), r.IsDBNull(4) ? null : r.GetString(4)));
        return list;
    }

    public static async Task<List<DeliveryCount>> CountsAsync(NpgsqlDataSource db, long shopId, DateTimeOffset since, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT topic, outcome, count(*) FROM webhook_deliveries WHERE shop_id = $1 AND received_at >= $2 GROUP BY 1, 2 ORDER BY 1, 2
            """);
        cmd.Parameters.AddWithValue(shopId);
        cmd.Parameters.AddWithValue(since);
        var list = new List<DeliveryCount>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new DeliveryCount(r.GetString(0), r.GetString(1), r.GetInt64(2)));
        return list;
    }
}
