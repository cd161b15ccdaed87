using System.Text.Json;
using Npgsql;
using PluginApp.Data;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.StoreData;

namespace PluginApp.Training;

/// <summary>
/// Trains one kind of model for one shop: records the run (trigger, start, end, rows, parameters, metrics, error), asks the
/// kind's trainer for a model, registers it through the kind's promotion gate, and tells this instance when it activated.
/// </summary>
public sealed class TrainingService(ShopLookup shops, ModelKinds kinds, ModelRegistry registry, RunLog runs, IServiceProvider services,
    ILogger<TrainingService> logger)
{
    public async Task<(int Version, bool Activated)> TrainAsync(string shop, string kindName, string trigger, CancellationToken ct)
    {
        var kind = kinds[kindName];
        var shopId = await shops.InstalledIdAsync(shop, ct) ?? throw new ShopNotConnectedException(shop, "the app is not installed");
        var runId = await runs.StartAsync(RunLog.Training, shopId, new() { ["kind"] = kind.Name, ["trigger"] = trigger }, ct);
        try
        {
            // Why a release is left to finish: a version that passes the gate replaces the one in release, whose shadow and
            // canary start again, so a store that makes fewer decisions a day than a release needs never finished one and
            // kept its first model. The merchant's Train now still replaces it.
            // Nor when the active version cannot be read by this build (a layout or features it no longer reads): it answers
            // nothing, so the release beside it never ends; the new version serves at once (ModelRegistry.RegisterAsync).
            if (kind.StagedRelease && TrainingScheduler.ComesByTheClock(trigger) && await registry.LoadReleaseAsync(shopId, kind.Name, ct) is { } release
                && await registry.ActiveServesAsync(shopId, kind, ct))
            {
                var why = $"version {release.Version} is in {release.Stage}: a {trigger} training waits until its release ends (training on demand replaces it)";
                await runs.FinishAsync(RunLog.Training, runId, "skipped", why, []);
                logger.LogInformation("Not training {Shop} {Kind}: {Reason}", shop, kind.Name, why);
                return (0, false);
            }
            var trainer = (IModelTrainer)services.GetRequiredService(kind.Trainer);
            var model = await trainer.TrainAsync(shopId, ct);
            // The run is completed in the model's own transaction: a model never serves while its run still says "running",
            // and a process that dies right after storing the model does not leave the run "running".
            var registered = await registry.RegisterAsync(shopId, kind, model, ct, (conn, tx, version) =>
                runs.FinishAsync(conn, tx, RunLog.Training, runId, "completed", null, new()
                {
                    ["rows"] = model.Rows, ["parameters"] = Json(model.Parameters), ["metrics"] = Json(model.Metrics), ["model_version"] = version,
                }));
            var (version, activated, reason) = registered;
            logger.LogInformation("Trained {Shop} {Kind} v{Version} ({Reason})", shop, kind.Name, version, reason);
            try
            {
                if (activated) kind.Activated(services, shopId); // this instance at once; the others on model_changed
                if (registered.Staged) kind.OnReleaseChanged?.Invoke(services, shopId);
            }
            catch (Exception e)
            {
                // Why not rethrown: the model and its run are stored. Failing here would mark a stored model's run failed and
                // train it again, for a step that only hurries what model_changed (caches) or the kind's daily pass does.
                logger.LogError(e, "{Shop} {Kind} v{Version} is stored, but telling this instance failed", shop, kind.Name, version);
            }
            return (version, activated);
        }
        catch (NotEnoughDataException e)
        {
            // Not a failure to retry: the store is too small or too young for this kind yet, and the run says by how much.
            await runs.FinishAsync(RunLog.Training, runId, "skipped", e.Message, []);
            logger.LogInformation("Not training {Shop} {Kind}: {Reason}", shop, kind.Name, e.Message);
            return (0, false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await runs.FinishAsync(RunLog.Training, runId, "failed", "stopped before it finished: the app shut down or the job was cancelled", []);
            throw;
        }
        catch (Exception e)
        {
            await runs.FinishAsync(RunLog.Training, runId, "failed", e.Message, []);
            throw;
        }
        finally
        {
            // A run whose process died mid-way never wrote its outcome; left "running" it would hold back this kind's
            // retraining on new orders and show as running in the admin for good.
            try
            {
                await runs.EndEarlierRunningAsync(RunLog.Training, runId, ["shop_id", "kind"],
                    "ended without an outcome: the process running it stopped (found when a later run of this kind ended)");
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                logger.LogWarning(e, "Could not end the earlier runs of {Shop} {Kind} left running", shop, kind.Name);
            }
        }
    }

    private static JsonDocument Json(object value) => JsonSerializer.SerializeToDocument(value);
}

/// <summary>A trainer's honest "not yet": what the store has and what the kind needs (e.g. "12 fraud labels, 30 needed").</summary>
public sealed class NotEnoughDataException(string message) : Exception(message);
