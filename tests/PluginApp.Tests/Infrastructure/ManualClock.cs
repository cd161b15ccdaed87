namespace PluginApp.Tests.Infrastructure;

/// <summary>
/// Real time plus an offset the test moves. It keeps running, because Hangfire, timers and leases read it too;
/// tests jump it forward to reach token expiry or retry times.
/// </summary>
public sealed class ManualClock : TimeProvider
{
    private TimeSpan _offset;
    public override DateTimeOffset GetUtcNow() => DateTimeOffset.UtcNow + _offset;
    public void Advance(TimeSpan by) => _offset += by;
}
