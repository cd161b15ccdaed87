using System.Net;
using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PluginApp.Jobs;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Risk;
using PluginApp.Training;

namespace PluginApp.Tests.Jobs;

public sealed class LongJobsTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>
    /// A store crossing its retraining threshold queues four trainings at once (one per model kind), each seconds to minutes
    /// on a large store. They must not take every worker: the store's next order is scored while they still run. Here every
    /// training is held at its first write (its run's row) for as long as the test likes, as a long training holds its worker.
    /// </summary>
    [Fact]
    public async Task AStoresFourTrainingsAtOnce_LeaveWorkers_AndItsNewOrderIsScoredWhileTheyRun()
    {
        const string shop = "long-jobs.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await using var holder = await app.Db.OpenConnectionAsync();
        await using var hold = await holder.BeginTransactionAsync();
        await using (var block = new NpgsqlCommand("LOCK TABLE training_runs IN EXCLUSIVE MODE", holder, hold)) await block.ExecuteNonQueryAsync();

        app.Factory.Services.GetRequiredService<TrainingScheduler>().OnDemand(shop);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await app.CountAsync("SELECT count(*) FROM pg_locks WHERE relation = 'training_runs'::regclass AND NOT granted") == 0)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("no training started within 20 s");
            await Task.Delay(100);
        }
        await Task.Delay(1500); // the other trainings' turn to take a worker, if there is one for them

        var response = await app.SendWebhookAsync("orders/create", shop,
            RiskOrders.Order(7_300_001, app.Clock.GetUtcNow(), 42, "198.51.100.7", "shopper@example.com", 7_300_900).ToJsonString());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        deadline = DateTime.UtcNow.AddSeconds(15);
        while (await app.CountAsync("SELECT count(*) FROM risk_scores WHERE shop_id = $1", shopId) == 0)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("the order was not scored within 15 s while the store's trainings ran");
            await Task.Delay(100);
        }
        Assert.True(await app.CountAsync("SELECT count(*) FROM pg_locks WHERE relation = 'training_runs'::regclass AND NOT granted") > 0,
            "the trainings were still running when the order was scored");
        await hold.RollbackAsync();
    }

    /// <summary>
    /// The daily passes over every store (churn rescoring, model monitoring, retention) take minutes once there are many
    /// stores: they run on the long jobs' workers, so the risk scoring and Shopify calls queued meanwhile never wait behind
    /// them.
    /// </summary>
    [Theory]
    [InlineData("churn-rescore")]
    [InlineData("model-monitoring")]
    [InlineData("retention")]
    public void ADailyPassOverEveryStore_IsQueuedForTheLongJobsWorkers(string recurring)
    {
        var id = app.Factory.Services.GetRequiredService<IRecurringJobManagerV2>().TriggerJob(recurring);
        Assert.NotNull(id);
        var history = app.Factory.Services.GetRequiredService<JobStorage>().GetMonitoringApi().JobDetails(id).History;
        var enqueued = history.Where(h => h.StateName == EnqueuedState.StateName).ToList();
        Assert.NotEmpty(enqueued);
        Assert.All(enqueued, h => Assert.Equal(JobQueues.Long, h.Data["Queue"]));
    }

    /// <summary>
    /// One store's churn rescoring, queued when a churn version is activated or staged (the nightly training's hour), goes to the
    /// long jobs' workers as the daily pass does: it reads and scores every customer of the store. Until 8 Dec 2026 it took a
    /// default worker.
    /// </summary>
    [Fact]
    public async Task AStoresChurnRescoring_IsQueuedForTheLongJobsWorkers()
    {
        var shopId = await app.InstallShopAsync("long-jobs-churn.myshopify.com");
        var storage = app.Factory.Services.GetRequiredService<JobStorage>();

        app.Factory.Services.GetRequiredService<PluginApp.Churn.ChurnScheduler>().ScoreSoon(shopId);

        var id = (string)(await app.ScalarAsync("""
            SELECT j.id::text FROM hangfire.job j WHERE j.invocationdata->>'Method' = 'ScoreShopAsync' AND j.invocationdata->>'Type' LIKE '%ChurnScoringJob%'
            AND j.arguments->>0 = $1 ORDER BY j.id DESC LIMIT 1
            """, shopId.ToString(System.Globalization.CultureInfo.InvariantCulture)))!;
        var enqueued = storage.GetMonitoringApi().JobDetails(id).History.Where(h => h.StateName == EnqueuedState.StateName).ToList();
        Assert.NotEmpty(enqueued);
        Assert.All(enqueued, h => Assert.Equal(JobQueues.Long, h.Data["Queue"]));
    }
}
