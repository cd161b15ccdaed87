using Npgsql;
using PluginApp.Data;
using PluginApp.Hosting;
using PluginApp.Recommendations;

namespace PluginApp.Risk;

/// <summary>
/// No upsells for a shopper whose customer account or browser address placed, in the last 30 days, a HIGH-risk order that
/// nobody has decided yet (no reviewer since it became HIGH, no dispute or Stripe outcome clearing it), or an order
/// confirmed as fraud (by a reviewer, a fraud cancellation, a dispute or Stripe), cancelled or not: selling more to a
/// likely or known fraudster only raises the loss. Each shop's set is read at most every <see cref="Refresh"/> (two
/// indexed lookups), so serving pays a dictionary lookup.
/// </summary>
public sealed class RiskySessions(NpgsqlDataSource db, TimeProvider clock) : IServingGuard
{
    public const string Path = "risky_session";
    public static readonly TimeSpan Refresh = TimeSpan.FromSeconds(15);

    private sealed record Snapshot(HashSet<long> Customers, HashSet<string> Addresses);

    private readonly ExpiringCache<long, Snapshot> _byShop = new(Refresh, clock);

    public async ValueTask<string?> RefuseAsync(long shopId, long? customerId, string? clientIp, CancellationToken ct)
    {
        if (customerId is null && clientIp is null) return null;
        var s = await _byShop.GetAsync(shopId, static (self, id) => self.LoadAsync(id), this, ct);
        return (customerId is { } c && s.Customers.Contains(c)) || (clientIp is not null && s.Addresses.Contains(clientIp)) ? Path : null;
    }

    /// <summary>Forgets a shop's set (after a reviewer's decision on this instance); the others refresh within seconds.</summary>
    public void Invalidate(long shopId) => _byShop.Remove(shopId);

    /// <remarks>Not cancelled by a request that stops waiting: the requests of the shop in flight share it.</remarks>
    private async Task<Snapshot> LoadAsync(long shopId)
    {
        var now = clock.GetUtcNow();
        // Why confirmed fraud apart: until 4 Dec a HIGH order left the set with any label, so confirming it as fraud (or
        // cancelling it) gave the fraudster upsells again.
        // Why in-store orders' old scores apart: no reviewer sees them (RiskQueue.Online), so until 6 Dec 2026 a HIGH one scored
        // before POS orders stopped being scored kept its buyer from upsells for 30 days with nothing anyone could do.
        await using var cmd = db.CreateCommand($"""
            SELECT o.customer_id, o.browser_ip FROM risk_scores s JOIN orders o ON o.shop_id = s.shop_id AND o.id = s.order_id
            WHERE s.shop_id = $1 AND s.level = 'HIGH' AND s.scored_at > $2 AND o.cancelled_at IS NULL AND s.reviewed_at IS NULL AND o.{RiskQueue.Online}
              AND NOT EXISTS (SELECT 1 FROM risk_labels l WHERE l.shop_id = s.shop_id AND l.order_id = s.order_id AND NOT l.fraud AND l.source <> 'review')
            UNION
            SELECT o.customer_id, o.browser_ip FROM risk_labels l JOIN orders o ON o.shop_id = l.shop_id AND o.id = l.order_id
            WHERE l.shop_id = $1 AND l.fraud AND l.labelled_at > $2
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(now.AddDays(-30)));
        var snapshot = new Snapshot([], []);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            if (!r.IsDBNull(0)) snapshot.Customers.Add(r.GetInt64(0));
            if (!r.IsDBNull(1)) snapshot.Addresses.Add(r.GetString(1));
        }
        return snapshot;
    }
}
