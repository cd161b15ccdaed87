using System.Diagnostics;
using Hangfire;
using Hangfire.Common;
using Hangfire.Server;

namespace PluginApp.Operations;

/// <summary>
/// Times every background job this instance performs and records it with its outcome (<see cref="OperatorMetrics.JobPerformed"/>):
/// succeeded, failed (the attempt threw; the retry policy may run it again) or cancelled (the instance stopped, and another
/// takes the job over). Registered once per process in Hangfire's global filters, as <see cref="Jobs.JobRetryPolicy"/> is.
/// </summary>
public sealed class JobMetricsFilter : JobFilterAttribute, IServerFilter
{
    private const string StartedKey = "pluginapp.metrics.started";

    /// <summary>Adds the filter to Hangfire's global filters unless it is there already (several app hosts may share a process).</summary>
    public static void Apply()
    {
        lock (GlobalJobFilters.Filters)
            if (!GlobalJobFilters.Filters.Any(f => f.Instance is JobMetricsFilter)) GlobalJobFilters.Filters.Add(new JobMetricsFilter());
    }

    public void OnPerforming(PerformingContext context) => context.Items[StartedKey] = Stopwatch.GetTimestamp();

    public void OnPerformed(PerformedContext context)
    {
        if (!context.Items.TryGetValue(StartedKey, out var started) || started is not long t0 || context.BackgroundJob.Job is not { } job) return;
        var outcome = context.Exception switch
        {
            null => "succeeded",
            _ when context.ExceptionHandled => "succeeded",
            // Why: Hangfire passes shutdown and abort (JobAbortedException derives from it) through as OperationCanceledException.
            OperationCanceledException => "cancelled",
            _ => "failed",
        };
        OperatorMetrics.JobPerformed($"{job.Type.Name}.{job.Method.Name}", outcome, Stopwatch.GetElapsedTime(t0));
    }
}
