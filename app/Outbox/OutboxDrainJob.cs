using Quartz;

namespace PluginApp.Outbox;

/// <summary>Runs the drainer on a schedule; one run at a time across the cluster.</summary>
[DisallowConcurrentExecution]
public sealed class OutboxDrainJob(OutboxDrainer drainer) : IJob
{
    public static readonly JobKey Key = new("outbox-drain", "system");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken ct) => await drainer.DrainOnceAsync(ct);
}
