using Hangfire;

namespace PluginApp.Jobs;

/// <summary>
/// The one retry policy of background jobs: a failed job runs again 1, 4 and 16 minutes later, then stays failed on the
/// operators' dashboard. Jobs that run on a schedule anyway opt out with [AutomaticRetry(Attempts = 0)]; nothing else
/// sets its own delays. A job killed mid-way is not a failure: another instance picks it up when its lease lapses.
/// </summary>
public static class JobRetryPolicy
{
    public static readonly int[] DelaysInSeconds = [60, 240, 960];

    /// <summary>Sets Hangfire's global retry filter to this policy. Hangfire keeps one global filter per process, so this is set, never added.</summary>
    public static void Apply()
    {
        lock (GlobalJobFilters.Filters)
        {
            var retry = GlobalJobFilters.Filters.Select(f => f.Instance).OfType<AutomaticRetryAttribute>().SingleOrDefault();
            if (retry is null) GlobalJobFilters.Filters.Add(retry = new AutomaticRetryAttribute());
            retry.Attempts = DelaysInSeconds.Length;
            retry.DelaysInSeconds = DelaysInSeconds;
            retry.OnAttemptsExceeded = AttemptsExceededAction.Fail;
            retry.LogEvents = true;
        }
    }
}
