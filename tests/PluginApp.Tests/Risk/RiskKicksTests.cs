using PluginApp.Risk;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Risk;

/// <summary>Waking a shop's scoring: one waiting job per shop, and never none for good.</summary>
public sealed class RiskKicksTests
{
    /// <summary>
    /// An enqueue that fails (the database away for a moment) is tried again at the next order or sweep; until 6 Dec 2026
    /// the shop stayed marked as waiting, and its orders went unscored on that instance until a restart.
    /// </summary>
    [Fact]
    public void AKickWhoseJobCouldNotBeQueued_IsTriedAgainAtTheNext()
    {
        var jobs = new RecordingJobs { FailNext = 1 };
        var kicks = new RiskKicks(jobs, new ManualClock());

        Assert.ThrowsAny<Exception>(() => kicks.Kick(7));
        kicks.Kick(7);

        Assert.Equal(["7"], jobs.Shops);
    }

    /// <summary>
    /// Orders arriving while the shop's job waits queue no other; a job that never starts on this instance (another instance's
    /// worker ran it) no longer keeps the shop from being woken here once <see cref="RiskKicks.Stale"/> has passed.
    /// </summary>
    [Fact]
    public void AWaitingJob_TakesTheKicksUntilItStarts_OrGoesStale()
    {
        var jobs = new RecordingJobs();
        var clock = new ManualClock();
        var kicks = new RiskKicks(jobs, clock);

        kicks.Kick(7);
        kicks.Kick(7);
        kicks.KickLater(7);
        Assert.Single(jobs.Shops);
        kicks.Started(7);
        kicks.Kick(7);
        Assert.Equal(2, jobs.Shops.Count);

        clock.Advance(RiskKicks.Stale + TimeSpan.FromSeconds(1));
        kicks.Kick(7);
        Assert.Equal(3, jobs.Shops.Count);
    }
}
