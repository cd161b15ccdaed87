using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.Shopify;

namespace PluginApp.Stripe;

/// <summary>A store's Stripe account as the webhook route needs it: which connection and shop, and the secret to verify with.</summary>
public sealed record StripeEndpoint(long ConnectionId, long ShopId, string WebhookSecret);

/// <summary>What the admin shows about a store's connection; never a secret.</summary>
public sealed record StripeStatus(bool Connected, string? EndpointUrl, bool? Livemode, DateTimeOffset? ConnectedAt, DateTimeOffset? UpdatedAt,
    DateTimeOffset? LastEventAt, long Labelled, long NoLabel, long Unmatched, long Pending)
{
    public long Matched => Labelled + NoLabel;
    public static readonly StripeStatus None = new(false, null, null, null, null, null, 0, 0, 0, 0);
}

/// <summary>
/// Each store's own Stripe account: a restricted key (reads the charge an event is about) and the signing secret of the
/// webhook endpoint the merchant made in Stripe's dashboard, both encrypted with the protector that encrypts the shop's
/// Shopify tokens (<see cref="OfflineTokenStore.Purpose"/>), so key-ring rotation covers them alike. Every method takes the
/// shop: one store cannot read, change or remove another's connection.
/// </summary>
public sealed partial class StripeConnections(NpgsqlDataSource db, Install.KeyRing.SecretProtector secrets, IOptions<ShopifyOptions> shopify,
    TimeProvider clock)
{

    public const string WebhookPath = "/stripe/webhooks";

    [GeneratedRegex("^(rk|sk)_(live|test)_[A-Za-z0-9_]{8,240}$")]
    private static partial Regex KeyShape();

    [GeneratedRegex("^whsec_[A-Za-z0-9_+/=]{8,240}$")]
    private static partial Regex SecretShape();

    [GeneratedRegex("^[A-Za-z0-9_-]{43}$")]
    private static partial Regex EndpointShape();

    /// <summary>What is wrong with a key and secret, by field (camelCase, as the admin's form names them); empty when both are usable.</summary>
    public static Dictionary<string, string[]> Validate(string? restrictedKey, string? webhookSecret)
    {
        var errors = new Dictionary<string, string[]>();
        var key = restrictedKey?.Trim() ?? "";
        if (key.StartsWith("pk_", StringComparison.Ordinal))
            errors["restrictedKey"] = ["That is a publishable key (pk_), which cannot read charges. Use a restricted key (rk_) with read access to charges."];
        else if (!KeyShape().IsMatch(key))
            errors["restrictedKey"] = ["Paste a restricted key (rk_live_… or rk_test_…) with read access to charges; a secret key (sk_…) works too."];
        if (!SecretShape().IsMatch(webhookSecret?.Trim() ?? ""))
            errors["webhookSecret"] = ["Paste the endpoint's signing secret from Stripe's dashboard; it starts with whsec_."];
        return errors;
    }

    /// <summary>Connects the shop's account, or replaces its key and secret; the endpoint address stays the same on a replacement.</summary>
    public async Task<StripeStatus> ConnectAsync(long shopId, string restrictedKey, string webhookSecret, CancellationToken ct)
    {
        var key = restrictedKey.Trim();
        var now = clock.GetUtcNow();
        await using (var cmd = db.CreateCommand("""
            INSERT INTO stripe_connections (shop_id, endpoint_id, restricted_key_enc, webhook_secret_enc, livemode, connected_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $6)
            ON CONFLICT (shop_id) DO UPDATE SET restricted_key_enc = excluded.restricted_key_enc, webhook_secret_enc = excluded.webhook_secret_enc,
              livemode = excluded.livemode, updated_at = excluded.updated_at
            """))
        {
            cmd.Parameters.Add(Sql.Param(shopId));
            // Why 32 random bytes: the path is not a secret the signature depends on, but nobody should find a store's endpoint by trying.
            cmd.Parameters.Add(Sql.Param(WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(32))));
            cmd.Parameters.Add(Sql.Param(secrets.Protect(key)));
            cmd.Parameters.Add(Sql.Param(secrets.Protect(webhookSecret.Trim())));
            cmd.Parameters.Add(Sql.Param(key.Contains("_live_", StringComparison.Ordinal)));
            cmd.Parameters.Add(Sql.Param(now));
            await cmd.ExecuteNonQueryAsync(ct);
        }
        return await StatusAsync(shopId, ct);
    }

    /// <summary>Removes the shop's connection with its stored events; labels already written stay (they are the store's history).</summary>
    public async Task<bool> DisconnectAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("DELETE FROM stripe_connections WHERE shop_id = $1");
        cmd.Parameters.Add(Sql.Param(shopId));
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    public async Task<StripeStatus> StatusAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT c.endpoint_id, c.livemode, c.connected_at, c.updated_at, max(e.received_at),
                   count(*) FILTER (WHERE e.state = 'labelled'), count(*) FILTER (WHERE e.state = 'no_label'),
                   count(*) FILTER (WHERE e.state = 'unmatched'), count(*) FILTER (WHERE e.state = 'pending')
            FROM stripe_connections c LEFT JOIN stripe_events e ON e.connection_id = c.id AND e.shop_id = c.shop_id
            WHERE c.shop_id = $1
            GROUP BY c.id
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return StripeStatus.None;
        return new StripeStatus(true, EndpointUrl(r.GetString(0)), r.GetBoolean(1), r.GetFieldValue<DateTimeOffset>(2), r.GetFieldValue<DateTimeOffset>(3),
            r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8));
    }

    /// <summary>The latest events of the shop's connection, unmatched ones with why, for the admin.</summary>
    /// <param name="state">Only events in this state (e.g. "unmatched"), or any.</param>
    public async Task<List<StripeEventView>> RecentEventsAsync(long shopId, int limit, CancellationToken ct, string? state = null)
    {
        await using var cmd = db.CreateCommand("""
            SELECT id, type, created_at, state, order_id, matched_by, outcome FROM stripe_events WHERE shop_id = $1 AND ($3::text IS NULL OR state = $3)
            ORDER BY received_at DESC, id LIMIT $2
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(limit));
        cmd.Parameters.Add(Sql.Text(state));
        var list = new List<StripeEventView>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new StripeEventView(r.GetString(0), r.GetString(1), r.GetFieldValue<DateTimeOffset>(2), r.GetString(3),
                r.IsDBNull(4) ? null : r.GetInt64(4), r.IsDBNull(5) ? null : r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6)));
        return list;
    }

    /// <summary>The connection an endpoint path belongs to, with its secret; null for a path no store holds.</summary>
    public async Task<StripeEndpoint?> FindEndpointAsync(string endpointId, CancellationToken ct)
    {
        if (!EndpointShape().IsMatch(endpointId)) return null;
        await using var cmd = db.CreateCommand("SELECT id, shop_id, webhook_secret_enc FROM stripe_connections WHERE endpoint_id = $1");
        cmd.Parameters.Add(Sql.Param(endpointId));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new StripeEndpoint(r.GetInt64(0), r.GetInt64(1), secrets.Unprotect(r.GetString(2))) : null;
    }

    /// <summary>The restricted key of a connection; null once the store has disconnected.</summary>
    public async Task<string?> KeyAsync(long connectionId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT restricted_key_enc FROM stripe_connections WHERE id = $1");
        cmd.Parameters.Add(Sql.Param(connectionId));
        return await cmd.ExecuteScalarAsync(ct) is string enc ? secrets.Unprotect(enc) : null;
    }

    // Why from the root: AppUrl may carry a path (an operator may give the admin's); the callback URL is built the same way.
    private string EndpointUrl(string endpointId) => new Uri(new Uri(shopify.Value.AppUrl), $"{WebhookPath}/{endpointId}").ToString();
}

public sealed record StripeEventView(string Id, string Type, DateTimeOffset CreatedAt, string State, long? OrderId, string? MatchedBy, string? Outcome);
