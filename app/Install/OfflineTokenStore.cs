using Npgsql;
using PluginApp.StoreData;
using PluginApp.Data;

namespace PluginApp.Install;

public sealed class ShopNotConnectedException(string shop, string reason) : Exception($"{shop}: {reason}");

/// <summary>
/// Offline tokens per shop, encrypted at rest. Expiring tokens are refreshed a few minutes before they
/// run out, under a row lock so one instance refreshes and the others read the rotated pair.
/// </summary>
public sealed class OfflineTokenStore(NpgsqlDataSource dataSource, KeyRing.SecretProtector secrets,
    ShopifyTokenClient tokens, TimeProvider clock)
{
    public static readonly TimeSpan RefreshAhead = TimeSpan.FromMinutes(5);
    public const string Purpose = "PluginApp.Install.OfflineTokens.v1";

    /// <summary>
    /// Stores a fresh grant and marks the shop installed. NewInstall is true when it was not installed before; the shop is then
    /// also marked as waiting for its setup (<see cref="ShopInstaller"/>) until its jobs are queued.
    /// </summary>
    public async Task<(long ShopId, bool NewInstall)> SaveGrantAsync(string shop, TokenGrant grant, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        await using var cmd = dataSource.CreateCommand($"""
            WITH before AS (SELECT {ShopStatus.Installed()} AS live FROM shops WHERE domain = $1)
            INSERT INTO shops (domain, access_token_enc, access_token_expires_at, refresh_token_enc, refresh_token_expires_at,
                               scopes, scopes_updated_at, installed_at, uninstalled_at, token_revoked_at, setup_pending_since, granted_at, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7, NULL, NULL, $7, $7, $7, $7)
            ON CONFLICT (domain) DO UPDATE SET
              access_token_enc = excluded.access_token_enc, access_token_expires_at = excluded.access_token_expires_at,
              refresh_token_enc = excluded.refresh_token_enc, refresh_token_expires_at = excluded.refresh_token_expires_at,
              scopes = excluded.scopes, scopes_updated_at = excluded.updated_at, uninstalled_at = NULL, token_revoked_at = NULL, updated_at = excluded.updated_at,
              granted_at = excluded.granted_at,
              installed_at = CASE WHEN {ShopStatus.Installed("shops")} THEN shops.installed_at ELSE excluded.installed_at END,
              setup_pending_since = CASE WHEN {ShopStatus.Installed("shops")} THEN shops.setup_pending_since ELSE excluded.setup_pending_since END
            RETURNING id, NOT COALESCE((SELECT live FROM before), false)
            """);
        AddGrant(cmd, shop, grant, now);
        (long, bool) result;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            await r.ReadAsync(ct);
            result = (r.GetInt64(0), r.GetBoolean(1));
        }
        // Every instance serves a (re)installed shop at once.
        await using var notify = dataSource.CreateCommand("SELECT pg_notify('shop_changed', $1)");
        notify.Parameters.AddWithValue(shop);
        await notify.ExecuteNonQueryAsync(ct);
        return result;
    }

    /// <summary>A usable access token for the shop, refreshed first when it is about to expire.</summary>
    public async Task<string> GetAccessTokenAsync(string shop, CancellationToken ct)
    {
        var row = await ReadAsync(shop, forUpdate: null, ct);
        if (!NeedsRefresh(row)) return secrets.Unprotect(row.AccessTokenEnc!);

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        row = await ReadAsync(shop, (conn, tx), ct);
        if (!NeedsRefresh(row)) return secrets.Unprotect(row.AccessTokenEnc!);
        if (row.RefreshTokenEnc is null || row.RefreshExpiresAt <= clock.GetUtcNow())
            throw new ShopNotConnectedException(shop, "the offline token expired and there is no valid refresh token; the merchant must open the app again");

        // Why this is safe if we die before commit: Shopify keeps the old refresh token usable until the new one is first used.
        TokenGrant grant;
        try { grant = await tokens.RefreshAsync(shop, secrets.Unprotect(row.RefreshTokenEnc), ct); }
        catch (TokenEndpointException e) when (e.Status == System.Net.HttpStatusCode.BadRequest && e.Message.Contains("invalid_grant", StringComparison.Ordinal))
        {
            // Shopify refused this shop's refresh token (revoked, or past its life): no retry will get a token, so the shop
            // is marked as the revoked token marks it (its jobs wait; the admin asks the merchant to open the app, whose token
            // exchange clears it). Until 5 Dec 2026 every call refreshed again and failed, for good. Why only invalid_grant:
            // a wrong client secret (invalid_client) is ours, and would mark every shop.
            await MarkAsync(conn, tx, shop, ct);
            await tx.CommitAsync(ct);
            throw new ShopNotConnectedException(shop, "Shopify refused the refresh token (invalid_grant); the merchant must open the app again");
        }
        await using (var cmd = new NpgsqlCommand("""
            UPDATE shops SET access_token_enc = $2, access_token_expires_at = $3,
              refresh_token_enc = COALESCE($4, refresh_token_enc), refresh_token_expires_at = COALESCE($5, refresh_token_expires_at),
              scopes = COALESCE(NULLIF($6, ''), scopes), scopes_updated_at = CASE WHEN $6 = '' THEN scopes_updated_at ELSE $7 END, updated_at = $7
            WHERE domain = $1
            """, conn, tx))
        {
            AddGrant(cmd, shop, grant, clock.GetUtcNow());
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        return grant.AccessToken;
    }

    /// <summary>
    /// Marks the shop's token revoked after Shopify refused <paramref name="usedToken"/> (401), unless the shop holds another
    /// token by now: a call sent before a reinstall, a re-exchange or a refresh came back refused, and until 5 Dec 2026 it
    /// marked the new token revoked, and the shop's outbox, holds and backfill stopped until the merchant opened the app.
    /// </summary>
    /// <returns>Whether the shop was marked.</returns>
    public async Task<bool> MarkRevokedAsync(string shop, string usedToken, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var read = new NpgsqlCommand(
            "SELECT access_token_enc FROM shops WHERE domain = $1 AND token_revoked_at IS NULL FOR NO KEY UPDATE", conn, tx))
        {
            read.Parameters.Add(Sql.Param(shop));
            if (await read.ExecuteScalarAsync(ct) is not string stored || secrets.Unprotect(stored) != usedToken) return false;
        }
        await MarkAsync(conn, tx, shop, ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>The shop's token revoked from now: its jobs wait until the merchant opens the app (token exchange clears it).</summary>
    private async Task MarkAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string shop, CancellationToken ct)
    {
        await using var mark = new NpgsqlCommand("UPDATE shops SET token_revoked_at = $2, updated_at = $2 WHERE domain = $1", conn, tx);
        mark.Parameters.Add(Sql.Param(shop));
        mark.Parameters.Add(Sql.Param(clock.GetUtcNow()));
        await mark.ExecuteNonQueryAsync(ct);
    }

    private bool NeedsRefresh(TokenRow row) =>
        row.AccessExpiresAt is { } exp && exp - RefreshAhead <= clock.GetUtcNow();

    private sealed record TokenRow(string? AccessTokenEnc, DateTimeOffset? AccessExpiresAt, string? RefreshTokenEnc, DateTimeOffset? RefreshExpiresAt);

    private async Task<TokenRow> ReadAsync(string shop, (NpgsqlConnection, NpgsqlTransaction)? forUpdate, CancellationToken ct)
    {
        const string sql = """
            SELECT access_token_enc, access_token_expires_at, refresh_token_enc, refresh_token_expires_at, uninstalled_at, token_revoked_at
            FROM shops WHERE domain = $1
            """;
        // Why NO KEY UPDATE: it keeps two refreshes of a shop apart as FOR UPDATE did, but not the shop's writers, whose
        // FOR KEY SHARE (their foreign keys' and their own once-a-transaction lock) waited for Shopify's token endpoint.
        await using var cmd = forUpdate is var (c, t) ? new NpgsqlCommand(sql + " FOR NO KEY UPDATE", c, t) : dataSource.CreateCommand(sql);
        cmd.Parameters.Add(Sql.Param(shop));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) throw new ShopNotConnectedException(shop, "the app is not installed");
        if (!r.IsDBNull(4)) throw new ShopNotConnectedException(shop, "the app was uninstalled");
        if (!r.IsDBNull(5)) throw new ShopNotConnectedException(shop, "Shopify revoked the access token");
        if (r.IsDBNull(0)) throw new ShopNotConnectedException(shop, "no offline token is stored");
        return new TokenRow(r.GetString(0), r.IsDBNull(1) ? null : r.GetFieldValue<DateTimeOffset>(1),
            r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetFieldValue<DateTimeOffset>(3));
    }

    private void AddGrant(NpgsqlCommand cmd, string shop, TokenGrant g, DateTimeOffset now)
    {
        cmd.Parameters.Add(Sql.Param(shop));
        cmd.Parameters.Add(Sql.Param(secrets.Protect(g.AccessToken)));
        cmd.Parameters.Add(Sql.Param(TypedNull.Time(g.ExpiresIn is { } s ? now.AddSeconds(s) : null)));
        cmd.Parameters.Add(new NpgsqlParameter { Value = g.RefreshToken is null ? DBNull.Value : secrets.Protect(g.RefreshToken), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(Sql.Param(TypedNull.Time(g.RefreshTokenExpiresIn is { } r ? now.AddSeconds(r) : null)));
        cmd.Parameters.Add(Sql.Param(g.Scope ?? ""));
        cmd.Parameters.Add(Sql.Param(now));
    }
}
