using Npgsql;
using PluginApp.StoreData;

namespace PluginApp.Data;

/// <summary>A channel a feature listens on: what to do with each notification, and when notifications may have been missed.</summary>
/// <param name="OnNotify">Called with the notification's payload.</param>
/// <param name="OnReconnect">Called whenever the listener (re)connects: anything cached before may be stale.</param>
public sealed record ChangeSubscription(string Channel, Action<string> OnNotify, Action OnReconnect)
{
    /// <summary>A channel whose payload is a shop's id (model_changed, catalog_changed, the risk queue's): <paramref name="onShop"/>
    /// is given it parsed, once for every subscriber's use; a payload that is none is ignored.</summary>
    public static ChangeSubscription OfShops(string channel, Action<long> onShop, Action onReconnect) =>
        new(channel, payload =>
        {
            if (long.TryParse(payload, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var shopId)) onShop(shopId);
        }, onReconnect);
}

/// <summary>
/// One LISTEN connection per instance for every channel features subscribe to (model_changed, shop_changed). A change
/// committed by any instance (NOTIFY in the changing transaction) reaches every instance within milliseconds; after a
/// lost connection each subscriber is told to drop what it cached.
/// </summary>
public sealed class ChangeNotifications(NpgsqlDataSource db, IEnumerable<ChangeSubscription> subscriptions, ILogger<ChangeNotifications> logger)
    : BackgroundService
{
    private readonly List<ChangeSubscription> _subscriptions = subscriptions.ToList();

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        if (_subscriptions.Count == 0) return;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var conn = await db.OpenConnectionAsync(ct);
                conn.Notification += (_, e) =>
                {
                    foreach (var s in _subscriptions.Where(s => s.Channel == e.Channel)) s.OnNotify(e.Payload);
                };
                foreach (var channel in _subscriptions.Select(s => s.Channel).Distinct())
                    await using (var listen = new NpgsqlCommand($"LISTEN {channel}", conn)) await listen.ExecuteNonQueryAsync(ct);
                foreach (var s in _subscriptions) s.OnReconnect();
                while (!ct.IsCancellationRequested) await conn.WaitAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { break; }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or IOException)
            {
                logger.LogWarning("Change listener lost its connection ({Message}); reconnecting", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }
}
