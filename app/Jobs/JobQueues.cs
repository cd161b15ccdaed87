namespace PluginApp.Jobs;

/// <summary>
/// The scheduler's queues. Every job runs on <see cref="Default"/> unless its method says <c>[Queue(JobQueues.Long)]</c>:
/// a job that runs for seconds to minutes (a training, a backfill, a daily pass over every store: churn rescoring, model
/// monitoring, retention), which has workers of its own
/// (<see cref="SchedulingOptions.LongJobWorkers"/>), so the short jobs that keep orders and Shopify up to date never wait behind it.
/// </summary>
public static class JobQueues
{
    public const string Default = "default";
    public const string Long = "long";
}
