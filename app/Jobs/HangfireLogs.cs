using Hangfire.AspNetCore;
using Hangfire.Logging;
using LogLevel = Hangfire.Logging.LogLevel;

namespace PluginApp.Jobs;

/// <summary>
/// Hangfire's log provider is process-wide while loggers belong to one app instance. When several instances share a
/// process (tests, or an instance being replaced) and one is disposed, its logger factory must not break the others'
/// jobs: a disposed logger becomes silent.
/// </summary>
internal sealed class HangfireLogs(ILoggerFactory loggers) : ILogProvider
{
    private readonly AspNetCoreLogProvider _inner = new(loggers);

    public ILog GetLogger(string name)
    {
        try { return new Guarded(_inner.GetLogger(name)); }
        catch (ObjectDisposedException) { return new Guarded(null); }
    }

    private sealed class Guarded(ILog? inner) : ILog
    {
        public bool Log(LogLevel logLevel, Func<string> messageFunc, Exception exception)
        {
            if (inner is null) return false;
            try { return inner.Log(logLevel, messageFunc, exception); }
            catch (ObjectDisposedException) { return false; }
        }
    }
}
