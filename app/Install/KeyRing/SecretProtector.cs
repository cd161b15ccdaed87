using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PluginApp.Install.KeyRing;

/// <summary>
/// The one protector of the secrets the app stores (shops' Shopify tokens, stores' Stripe keys): Data Protection's, under
/// <see cref="OfflineTokenStore.Purpose"/>. A secret written with a key this instance's ring does not hold is read with the
/// ring as stored now, and from then on this instance protects with that ring too. Why: an instance reads its ring at start
/// and then once a day, and looks for an unknown key again only in its first minutes; so after `keys rotate` (another
/// process: a new key, every secret re-encrypted with it) every running instance failed to read every shop's token and
/// Stripe secret until it restarted (until 6 Dec 2026).
/// </summary>
public sealed class SecretProtector(IDataProtectionProvider provider, IOptions<KeyRingOptions> ring, NpgsqlDataSource db, ILogger<SecretProtector> logger)
    : IDisposable
{
    /// <summary>The least time between two reads of the stored ring (a value no key can read must not read it on every call).</summary>
    private static readonly TimeSpan RereadAtMost = TimeSpan.FromMinutes(1);

    private readonly Lock _rereading = new();
    private IDataProtector _current = provider.CreateProtector(OfflineTokenStore.Purpose);
    private readonly List<ServiceProvider> _kept = [];
    private long _rereadAt = long.MinValue;

    public string Protect(string plain) => Volatile.Read(ref _current).Protect(plain);

    public string Unprotect(string stored)
    {
        var used = Volatile.Read(ref _current);
        try { return used.Unprotect(stored); }
        catch (CryptographicException) when (Reread(used) is { } fresh) { return fresh.Unprotect(stored); }
    }

    /// <summary>The stored ring's protector, read again unless another call just did (then its protector, or null: rethrow).</summary>
    private IDataProtector? Reread(IDataProtector failed)
    {
        lock (_rereading)
        {
            if (!ReferenceEquals(_current, failed)) return _current; // another call read it meanwhile
            if (_rereadAt != long.MinValue && Stopwatch.GetElapsedTime(_rereadAt) < RereadAtMost) return null;
            _rereadAt = Stopwatch.GetTimestamp();
            var stored = KeyRingSetup.Standalone(ring.Value, db);
            var fresh = stored.GetRequiredService<IDataProtectionProvider>().CreateProtector(OfflineTokenStore.Purpose);
            logger.LogWarning("A stored secret names a key this instance's key ring did not hold (rotated by another process); the ring was read again");
            // Why the previous stack is kept: a call may still be reading with it; one is left per rotation.
            _kept.Add(stored);
            _current = fresh;
            return fresh;
        }
    }

    public void Dispose()
    {
        lock (_rereading) foreach (var p in _kept) p.Dispose();
    }
}
