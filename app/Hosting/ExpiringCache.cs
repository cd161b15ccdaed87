using System.Collections.Concurrent;

namespace PluginApp.Hosting;

/// <summary>
/// Values loaded on demand and kept for <c>maxAge</c> (from when their load began, on <see cref="TimeProvider"/>); callers
/// that ask for a missing key while it loads share that one load. Why: the storefront asks these caches on every request,
/// and when an entry expired under load, every request in flight ran its own query (up to the concurrency's worth of the
/// same query at once, every few seconds per shop and instance). An expired value younger than twice <c>maxAge</c> is
/// reloaded in the background by the first caller to find it expired, and answers every caller until the reload is in.
/// Why: when every request in flight waited on that one reload, a query slowed by a busy database held up all of a
/// shop's storefront requests at once, every time an entry expired. A load that fails is not kept: its callers see the
/// error, a failed reload leaves the value it would have replaced, and the next caller loads again.
/// </summary>
public sealed class ExpiringCache<TKey, TValue>(TimeSpan maxAge, TimeProvider clock) where TKey : notnull
{
    /// <param name="Replaces">While a reload is in flight, the value it replaces (answered meanwhile); null for a first load.</param>
    private sealed record Entry(Task<TValue> Value, DateTimeOffset LoadedFrom, Entry? Replaces = null);

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
            if (seen is not null && !seen.Value.IsCompleted)
                return seen.Replaces is { } kept && now - kept.LoadedFrom < maxAge * 2 ? kept.Value.Result : await seen.Value.WaitAsync(ct);
            if (seen is not null && seen.Value.IsCompletedSuccessfully && now - seen.LoadedFrom < maxAge * 2)
            {
                if (now - seen.LoadedFrom < maxAge) return seen.Value.Result;
                var reloading = new TaskCompletionSource<TValue>(TaskCreationOptions.RunContinuationsAsynchronously);
                var next = new Entry(reloading.Task, now, seen);
                // Why answer whether or not this caller won the race: the value is still within its grace either way.
                if (_entries.TryUpdate(key, next, seen)) _ = LoadAsync(key, load, state, reloading, next);
                return seen.Value.Result;
            }
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
        try
        {
            loading.SetResult(await load(state, key));
            // Why: the reloaded entry no longer needs the value it replaced (each would otherwise keep the one before alive).
            if (mine.Replaces is not null) _entries.TryUpdate(key, mine with { Replaces = null }, mine);
        }
        catch (Exception e)
        {
            if (mine.Replaces is { } kept) _entries.TryUpdate(key, kept, mine);
            else _entries.TryRemove(KeyValuePair.Create(key, mine));
            loading.TrySetException(e);
            // Why observed here: a background reload may have no caller waiting on it.
            _ = loading.Task.Exception;
        }
    }
}
