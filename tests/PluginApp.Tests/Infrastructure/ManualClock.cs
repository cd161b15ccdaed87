namespace PluginApp.Tests.Infrastructure;

/// <summary>A clock the test moves. Starts at the real time so tokens signed now are valid.</summary>
public sealed class ManualClock : TimeProvider
{
    private DateTimeOffset _now = DateTimeOffset.UtcNow;
    public override DateTimeOffset GetUtcNow() => _now;
    public void Advance(TimeSpan by) => _now += by;
    public void Set(DateTimeOffset at) => _now = at;
}
