using PluginApp.Hosting;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Platform;

/// <summary>The cache behind the storefront's per-request lookups (installed shops, experiments, risky shoppers).</summary>
public sealed class ExpiringCacheTests
{
    private sealed class CountingLoad
    {
        private int _calls;
        public TaskCompletionSource Gate { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Calls => Volatile.Read(ref _calls);

        public async Task<int> LoadAsync(string key)
        {
            var n = Interlocked.Increment(ref _calls);
            await Gate.Task;
            return n;
        }
    }

    private static Task<int> Load(CountingLoad load, string key) => load.LoadAsync(key);

    [Fact]
    public async Task RequestsInFlightWhenAKeyIsMissing_ShareOneLoad_AndAKeptValueLoadsNothing()
    {
        var clock = new ManualClock();
        var cache = new ExpiringCache<string, int>(TimeSpan.FromSeconds(15), clock);
        var load = new CountingLoad();

        // Sixty-four requests arrive while the first load runs (a busy storefront's concurrency): one query, not sixty-four.
        var first = Enumerable.Range(0, 64).Select(_ => cache.GetAsync("shop", Load, load, CancellationToken.None).AsTask()).ToArray();
        load.Gate.SetResult();
        Assert.All(await Task.WhenAll(first), v => Assert.Equal(1, v));
        Assert.Equal(1, load.Calls);

        // Kept for its age: nothing loads.
        clock.Advance(TimeSpan.FromSeconds(14));
        Assert.Equal(1, await cache.GetAsync("shop", Load, load, CancellationToken.None));
        Assert.Equal(1, load.Calls);

        // Another key loads on its own.
        Assert.Equal(2, await cache.GetAsync("other", Load, load, CancellationToken.None));
    }

    [Fact]
    public async Task AnExpiredValue_AnswersEveryRequestWhileOneReloadRuns_ButNotOnceTwiceItsAgeLimitOld()
    {
        var clock = new ManualClock();
        var cache = new ExpiringCache<string, int>(TimeSpan.FromSeconds(15), clock);
        var load = new CountingLoad();
        load.Gate.SetResult();
        Assert.Equal(1, await cache.GetAsync("shop", Load, load, CancellationToken.None));

        // Expired under load: every request in flight is answered at once with the value kept, while one reload runs.
        clock.Advance(TimeSpan.FromSeconds(16));
        load.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var during = Enumerable.Range(0, 64).Select(_ => cache.GetAsync("shop", Load, load, CancellationToken.None).AsTask()).ToArray();
        Assert.All(during, t => Assert.True(t.IsCompleted, "a request waited on the reload"));
        Assert.All(await Task.WhenAll(during), v => Assert.Equal(1, v));
        Assert.Equal(2, load.Calls);
        load.Gate.SetResult();
        await WaitUntilAsync(async () => await cache.GetAsync("shop", Load, load, CancellationToken.None) == 2);
        Assert.Equal(2, load.Calls);

        // Nobody asked for twice its age limit: the value is too old to answer with, and the requests wait for the load.
        clock.Advance(TimeSpan.FromSeconds(31));
        load.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var late = Enumerable.Range(0, 8).Select(_ => cache.GetAsync("shop", Load, load, CancellationToken.None).AsTask()).ToArray();
        Assert.All(late, t => Assert.False(t.IsCompleted));
        load.Gate.SetResult();
        Assert.All(await Task.WhenAll(late), v => Assert.Equal(3, v));
        Assert.Equal(3, load.Calls);
    }

    [Fact]
    public async Task AFailedReload_LeavesTheValueItWouldHaveReplaced_AndTheNextRequestReloads()
    {
        var clock = new ManualClock();
        var cache = new ExpiringCache<string, int>(TimeSpan.FromSeconds(15), clock);
        Assert.Equal(1, await cache.GetAsync("shop", static (v, _) => Task.FromResult(v), 1, CancellationToken.None));
        clock.Advance(TimeSpan.FromSeconds(16));
        var failures = 0;
        Task<int> Failing(int _, string __) { Interlocked.Increment(ref failures); return Task.FromException<int>(new TimeoutException("the database did not answer")); }
        Assert.Equal(1, await cache.GetAsync("shop", Failing, 0, CancellationToken.None));
        Assert.Equal(1, await cache.GetAsync("shop", Failing, 0, CancellationToken.None));
        Assert.Equal(2, failures);
        Assert.Equal(1, await cache.GetAsync("shop", static (v, _) => Task.FromResult(v), 5, CancellationToken.None));
        Assert.Equal(5, await cache.GetAsync("shop", static (v, _) => Task.FromResult(v), 6, CancellationToken.None));
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 200 && !await condition(); i++) await Task.Delay(10);
        Assert.True(await condition());
    }

    [Fact]
    public async Task AFailedLoadIsNotKept_ARemovedKeyLoadsAgain_AndARequestThatStopsWaitingLeavesTheLoadToTheOthers()
    {
        var cache = new ExpiringCache<string, int>(TimeSpan.FromSeconds(15), new ManualClock());
        var calls = 0;
        Task<int> Failing(int _, string __) { calls++; throw new TimeoutException("the database did not answer"); }
        await Assert.ThrowsAsync<TimeoutException>(() => cache.GetAsync("shop", Failing, 0, CancellationToken.None).AsTask());
        Assert.Equal(7, await cache.GetAsync("shop", static (v, _) => Task.FromResult(v), 7, CancellationToken.None));
        Assert.Equal(1, calls);

        cache.Remove("shop");
        Assert.Equal(8, await cache.GetAsync("shop", static (v, _) => Task.FromResult(v), 8, CancellationToken.None));

        var load = new CountingLoad();
        cache.Clear();
        using var leaving = new CancellationTokenSource();
        var left = cache.GetAsync("shop", Load, load, leaving.Token).AsTask();
        var staying = cache.GetAsync("shop", Load, load, CancellationToken.None).AsTask();
        await leaving.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => left);
        load.Gate.SetResult();
        Assert.Equal(1, await staying);
        Assert.Equal(1, load.Calls);
    }
}
