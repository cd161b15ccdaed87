using System.Collections.Concurrent;

namespace PluginApp.Recommendations;

/// <summary>
/// The serving caches' one eviction rule (<see cref="ModelCache"/>, <see cref="CatalogCache"/>): when what they hold, with the
/// entry just loaded, is reckoned above their budget, the least recently used entries go first until it fits. The entry just
/// loaded always stays: it is being asked for, and one entry above the budget is still served.
/// </summary>
internal static class CacheBudget
{
    /// <summary>Removes entries, least recently used first, until the total fits; returns how many were removed.</summary>
    /// <param name="held">An entry's reckoned bytes and last use (Stopwatch ticks), or null while it is not loaded (not counted).</param>
    public static int Trim<TEntry>(ConcurrentDictionary<long, TEntry> entries, long keep, long keepBytes, long budget,
        Func<TEntry, (long Bytes, long LastUsed)?> held) where TEntry : class
    {
        var loaded = new List<(long Key, TEntry Entry, long Bytes, long LastUsed)>();
        var total = keepBytes;
        foreach (var (key, entry) in entries)
        {
            if (key == keep || held(entry) is not { } h) continue;
            total += h.Bytes;
            loaded.Add((key, entry, h.Bytes, h.LastUsed));
        }
        if (total <= budget) return 0;
        var removed = 0;
        foreach (var (key, entry, bytes, _) in loaded.OrderBy(x => x.LastUsed))
        {
            if (total <= budget) break;
            // Why the pair: an entry replaced meanwhile (a reload) is not the one measured here, and stays.
            if (!entries.TryRemove(new KeyValuePair<long, TEntry>(key, entry))) continue;
            total -= bytes;
            removed++;
        }
        return removed;
    }
}
