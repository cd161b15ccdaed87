using Hangfire;
using Npgsql;
using PluginApp.Backfill;
using PluginApp.Shopify;
using PluginApp.Training;
using PluginApp.StoreData;

namespace PluginApp.Install;

/// <summary>
/// What every install path does with a fresh grant: keep the token; on a new install set the shop up (read its settings, queue
/// the history backfill and the nightly training). A shop whose setup did not finish (the process died after saving it) is set
/// up by <see cref="SweepAsync"/>.
/// </summary>
public sealed class ShopInstaller(OfflineTokenStore tokens, BackfillScheduler backfill, TrainingScheduler training, AdminGraphQLClient shopify,
    NpgsqlDataSource db, IBackgroundJobClient jobs, TimeProvider clock, ILogger<ShopInstaller> logger)
{
    /// <summary>
    /// How long a new install's setup may take before the sweep does it instead: longer than the settings read's longest time,
    /// five tries of <see cref="ShopifyOptions.AdminApiTimeout"/> (at most 2 min each; a query that times out is asked again)
    /// and their backoff. Doing it twice does no harm (a second backfill request resumes or skips, the nightly jobs are
    /// replaced); the margin only saves the work.
    /// </summary>
    public static readonly TimeSpan SetupGrace = TimeSpan.FromMinutes(15);

    /// <summary>
    /// How long a new install's settings read may hold the merchant's request (the first embedded page, or the OAuth
    /// callback) before it is left to the sweep, which reads them after <see cref="SetupGrace"/>; the backfill and nightly
    /// jobs are queued either way. Why: the read retries for up to about 2.5 minutes while Shopify is slow or failing, and
    /// until 7 Dec 2026 the merchant's first page waited that long, or until App Bridge gave up.
    /// </summary>
    public static readonly TimeSpan InlineSettingsLimit = TimeSpan.FromSeconds(10);

    /// <param name="setUpAgain">Set the shop up even if it read as installed (installed again before its uninstall was acted on).</param>
    public async Task<long> InstallAsync(string shop, TokenGrant grant, CancellationToken ct, bool setUpAgain = false)
    {
        var (shopId, newInstall) = await tokens.SaveGrantAsync(shop, grant, ct);
        if (newInstall || setUpAgain) await SetUpAsync(shop, InlineSettingsLimit);
        return shopId;
    }

    /// <summary>
    /// Sets up every installed shop whose setup was left unfinished for longer than <see cref="SetupGrace"/>, then reads the
    /// settings of up to <see cref="SettingsReadsPerSweep"/> set-up shops whose settings were never read since they came to be
    /// kept current (installed before 7 Dec 2026: no tax setting, and any change since their install unknown).
    /// </summary>
    [Hangfire.AutomaticRetry(Attempts = 0)] // the next sweep comes in a few minutes anyway
    public async Task SweepAsync(CancellationToken ct)
    {
        var shops = new List<string>();
        await using (var cmd = db.CreateCommand($"SELECT domain FROM shops WHERE setup_pending_since < $1 AND {ShopStatus.Reachable()} ORDER BY setup_pending_since"))
        {
            cmd.Parameters.AddWithValue(clock.GetUtcNow() - SetupGrace);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) shops.Add(r.GetString(0));
        }
        foreach (var shop in shops)
        {
            ct.ThrowIfCancellationRequested();
            logger.LogWarning("{Shop} was installed but its setup did not finish; setting it up now", shop);
            try { await SetUpAsync(shop, null); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // One shop's failure is not the others': its token cannot be had (ShopNotConnectedException, TokenEndpointException)
                // or read. Its mark is set anew, so it is tried again after the grace, behind the shops waiting longer. Until 7 Dec
                // 2026 it ended the sweep, first in line at every sweep: no other install was set up, nor any settings read.
                logger.LogWarning(e, "Could not set {Shop} up; tried again after {Grace} minutes", shop, SetupGrace.TotalMinutes);
                await using var mark = db.CreateCommand("UPDATE shops SET setup_pending_since = $2 WHERE domain = $1 AND setup_pending_since IS NOT NULL");
                mark.Parameters.AddWithValue(shop);
                mark.Parameters.Add(Data.Sql.Param(clock.GetUtcNow()));
                await mark.ExecuteNonQueryAsync(ct);
            }
        }

        // Claimed as asked before asking: a shop whose read fails (its token lost, the store frozen) is asked again an hour
        // later, after the shops never asked, and a sweep that overlaps this one takes other shops.
        var unread = new List<string>();
        var now = clock.GetUtcNow();
        await using (var cmd = db.CreateCommand($"""
            UPDATE shops SET settings_asked_at = $2 WHERE id IN (
                SELECT id FROM shops WHERE settings_at IS NULL AND setup_pending_since IS NULL AND {ShopStatus.Reachable()}
                  AND (settings_asked_at IS NULL OR settings_asked_at < $2 - interval '1 hour')
                ORDER BY settings_asked_at NULLS FIRST, id LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING domain
            """))
        {
            cmd.Parameters.AddWithValue(SettingsReadsPerSweep);
            cmd.Parameters.Add(Data.Sql.Param(now));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) unread.Add(r.GetString(0));
        }
        foreach (var shop in unread)
        {
            ct.ThrowIfCancellationRequested();
            try { await ReadSettingsAsync(shop); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // One shop's failure (its token cannot be had: ShopNotConnectedException, TokenEndpointException) is not the others'.
                logger.LogWarning(e, "Could not read {Shop}'s settings; asked again in an hour", shop);
            }
        }
    }

    /// <summary>How many shops' settings a sweep reads at most (one query each), so a deployment's first sweep is not long.</summary>
    public const int SettingsReadsPerSweep = 100;

    /// <summary>
    /// Reads the shop's settings, queues its backfill and nightly training, and only then clears the shop's setup mark, so a
    /// process that dies before the jobs are queued leaves the mark for <see cref="SweepAsync"/>. Settings Shopify did not
    /// answer for leave the mark set anew, so the sweep reads them again after <see cref="SetupGrace"/> (and queues the jobs
    /// again, which does no harm). Why: nothing else reads them, and until 5 Dec 2026 a read that failed once (Shopify down
    /// for a minute at the install) left the store on UTC days and nightly runs, and without the shop id that webhook
    /// payloads are checked against, for good.
    /// </summary>
    /// <param name="limit">How long the settings read may take before it is left to the sweep (null: the client's own limits).</param>
    private async Task SetUpAsync(string shop, TimeSpan? limit)
    {
        logger.LogInformation("Installed {Shop}; queueing its backfill", shop);
        var (read, timeZone) = await ReadSettingsAsync(shop, limit);
        backfill.Schedule(shop);
        training.OnInstalled(shop, timeZone);
        // Installed again with a feature switched off: its blocks are hidden again (Shopify dropped the app's metafields).
        jobs.Enqueue<Admin.Switches.BlockVisibilityJob>(j => j.InstalledAsync(shop, CancellationToken.None));
        await using var cmd = db.CreateCommand("UPDATE shops SET setup_pending_since = CASE WHEN $2 THEN NULL ELSE $3 END WHERE domain = $1");
        cmd.Parameters.AddWithValue(shop);
        cmd.Parameters.AddWithValue(read);
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        await cmd.ExecuteNonQueryAsync(CancellationToken.None);
    }

    /// <summary>
    /// The shop's numeric id (payloads that name a shop id are checked against it), time zone (nightly jobs run in it),
    /// currency, and whether its prices include tax (the cart offers count margin without it, <see cref="CartOffers.TaxShares"/>). Returns whether Shopify answered, and the time zone, or null if it did not say. Why not the request's cancellation: the shop is saved
    /// as installed, so no later install comes back here; were the merchant's request to end during this read, its history
    /// and nightly training would never be queued. The Admin API client's own time limit bounds it.
    /// </summary>
    private async Task<(bool Read, string? Zone)> ReadSettingsAsync(string shop, TimeSpan? limit = null)
    {
        // Wall time, as the client's own limits are: the merchant's wait is.
        using var bounded = limit is { } l ? new CancellationTokenSource(l) : null;
        var ct = bounded?.Token ?? CancellationToken.None;
        try
        {
            // Taken before asking: a shop/update applied while Shopify answered is newer than this answer, and stays.
            var readAt = clock.GetUtcNow();
            var data = await shopify.ExecuteAsync(shop, GraphQLDocuments.Load("Install/Queries/shop-settings.graphql"), null, ct, expectedCost: 1);
            // A field Shopify did not give leaves what we hold (the read still counts as made: the sweep does not ask again).
            var shopObject = data.TryGetProperty("shop", out var s) && s.ValueKind == System.Text.Json.JsonValueKind.Object;
            string? Text(string name) => shopObject && s.TryGetProperty(name, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() : null;
            var zone = Text("ianaTimezone");
            var currency = Text("currencyCode");
            long? shopifyId = Text("id") is { } gid ? Gid.Id(gid) : null;
            bool? taxesIncluded = shopObject && s.TryGetProperty("taxesIncluded", out var t) && t.ValueKind is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False
                ? t.GetBoolean() : null;
            // As of readAt: a shop/update delivery older than this read is not applied after it (ShopSettings), and one newer,
            // applied meanwhile, is not undone by it.
            await using var cmd = db.CreateCommand("""
                UPDATE shops SET shopify_shop_id = coalesce($4, shopify_shop_id),
                  iana_timezone = CASE WHEN settings_at IS NULL OR settings_at < $6 THEN coalesce($2, iana_timezone) ELSE iana_timezone END,
                  currency = CASE WHEN settings_at IS NULL OR settings_at < $6 THEN coalesce($3, currency) ELSE currency END,
                  taxes_included = CASE WHEN settings_at IS NULL OR settings_at < $6 THEN coalesce($5, taxes_included) ELSE taxes_included END,
                  settings_at = greatest(settings_at, $6)
                WHERE domain = $1
                """);
            cmd.Parameters.AddWithValue(shop);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)zone ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)currency ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)shopifyId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)taxesIncluded ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Boolean });
            cmd.Parameters.Add(Data.Sql.Param(readAt));
            await cmd.ExecuteNonQueryAsync(ct);
            return (true, zone);
        }
        catch (Exception e) when (e is ShopifyGraphQLException or HttpRequestException or ShopTokenRevokedException or TaskCanceledException
                                      || (e is OperationCanceledException && ct.IsCancellationRequested))
        {
            logger.LogWarning("Could not read {Shop}'s settings: {Message}; the install sweep asks again (a new install's after {Grace} minutes, with its nightly jobs on UTC until then; another shop's in an hour)",
                shop, e.Message, SetupGrace.TotalMinutes);
            return (false, null);
        }
    }
}
