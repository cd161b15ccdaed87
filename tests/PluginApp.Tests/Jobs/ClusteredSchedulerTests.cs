using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PluginApp.Tests.Infrastructure;
using Quartz;

namespace PluginApp.Tests.Jobs;

/// <summary>Records each run; a trigger that ran twice shows up as two rows.</summary>
public sealed class RecordingJob : IJob
{
    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct)
    {
        await Task.Delay(50, ct); // long enough for the other instance to try the same trigger if locking were broken
        await using var db = NpgsqlDataSource.Create(context.MergedJobDataMap.GetString("conn")!);
        await using var cmd = db.CreateCommand("INSERT INTO job_runs (trigger_name, instance_id) VALUES ($1, $2)");
        cmd.Parameters.AddWithValue(context.Trigger.Key.Name);
        cmd.Parameters.AddWithValue(context.Scheduler.SchedulerInstanceId);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}

public sealed class ClusteredSchedulerTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task TwoInstancesOnOneDatabase_RunEachTriggerExactlyOnce()
    {
        await using (var cmd = app.Db.CreateCommand("CREATE TABLE job_runs (trigger_name text NOT NULL, instance_id text NOT NULL)"))
            await cmd.ExecuteNonQueryAsync();
        await using var second = app.CreateFactory(app.Database.ConnectionString);
        _ = second.Services; // starts the second instance and its scheduler
        var scheduler = await app.Factory.Services.GetRequiredService<ISchedulerFactory>().GetScheduler();
        const int triggers = 40;

        for (var i = 0; i < triggers; i++)
        {
            var job = JobBuilder.Create<RecordingJob>().WithIdentity($"rec-{i}", "test").UsingJobData("conn", app.Database.ConnectionString).Build();
            await scheduler.ScheduleJob(job, TriggerBuilder.Create().WithIdentity($"t-{i}", "test").StartNow().Build());
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM job_runs") < triggers) await Task.Delay(200);
        await Task.Delay(1000); // a duplicate run would land now

        Assert.Equal(triggers, await app.CountAsync("SELECT count(*) FROM job_runs"));
        Assert.Equal(triggers, await app.CountAsync("SELECT count(DISTINCT trigger_name) FROM job_runs"));
    }
}
