using System.Collections.Concurrent;

namespace PluginApp.Hosting;

/// <summary>
/// Values loaded on demand and kept for <c>maxAge</c> (from when their load began, on <see cref="TimeProvider"/>); callers
/// that ask for a missing or expired key while it loads share that one load. Why: the storefront asks these caches on
/// every request, and when an entry expired under load, every request in flight ran its own query (up to the
/// concurrency's worth of the same query at once, every few seconds per shop and instance). A load that fails is not kept:
/// its callers see the error, and the next one loads again.
/// </summary>
public sealed class ExpiringCache<TKey, TValue>(TimeSpan maxAge, TimeProvider clock) where TKey : notnull
{
    private sealed record Entry(Task<TValue> Value, DateTimeOffset LoadedFrom);

    private readonly ConcurrentDictionary<TKey, Entry> _entries = new();

    /// <summary>The key's value: kept, being loaded, or loaded now by <paramref name="load"/>(<paramref name="state"/>, key).</summary>
    /// <param name="load">Loads the value; not cancelled when one caller stops waiting, as others may share it. Why with a
    /// state: a static lambda is allocated once, where one that captures its owner is allocated on every request.</param>
    public async ValueTask<TValue> GetAsync<TState>(TKey key, Func<TState, TKey, Task<TValue>> load, TState state, CancellationToken ct)
    {
        while (true)
        {
            var now = clock.GetUtcNow();
            _entries.TryGetValue(key, out var seen);
            if (seen is not null && !seen.Value.IsCompleted) return await seen.Value.WaitAsync(ct);
            if (seen is not null && seen.Value.IsCompletedSuccessfully && now - seen.LoadedFrom < maxAge) return seen.Value.Result;
            var loading = new TaskCompletionSource<TValue>(TaskCreationOptions.RunContinuationsAsynchronously);
            var mine = new Entry(loading.Task, now);
            // Why compare with what was seen: of the callers that found the key missing or expired, one starts the load; the
            // others loop and wait for it.
            if (seen is null ? !_entries.TryAdd(key, mine) : !_entries.TryUpdate(key, mine, seen)) continue;
            _ = LoadAsync(key, load, state, loading, mine);
            return await loading.Task.WaitAsync(ct);
        }
    }

    /// <summary>Forgets the key: the next caller loads it again (a load in flight is not kept).</summary>
    public void Remove(TKey key) => _entries.TryRemove(key, out _);

    /// <summary>Forgets every key.</summary>
    public void Clear() => _entries.Clear();

    private async Task LoadAsync<TState>(TKey key, Func<TState, TKey, Task<TValue>> load, TState state, TaskCompletionSource<TValue> loading, Entry mine)
    {
        try { loading.SetResult(await load(state, key)); }
        catch (Exception e)
        {
            _entries.TryRemove(KeyValuePair.Create(key, mine));
            loading.SetException(e);
        }
    }
}
