using PluginApp.Backfill;

namespace PluginApp.Install;

/// <summary>What every install path does with a fresh grant: keep the token, and on a new install queue the history backfill.</summary>
public sealed class ShopInstaller(OfflineTokenStore tokens, BackfillScheduler backfill, ILogger<ShopInstaller> logger)
{
    public async Task<long> InstallAsync(string shop, TokenGrant grant, CancellationToken ct)
    {
        var (shopId, newInstall) = await tokens.SaveGrantAsync(shop, grant, ct);
        if (newInstall)
        {
            logger.LogInformation("Installed {Shop}; queueing its backfill", shop);
            await backfill.ScheduleAsync(shop, ct);
        }
        return shopId;
    }
}
