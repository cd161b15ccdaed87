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
        catch (CryptographicException) when (Reread(used, stored) is { } plain) { return plain; }
    }

    /// <summary>
    /// The secret read with the ring as stored now, which then becomes this instance's; null (the caller's error stands) when
    /// that ring cannot read it either (a revoked key, a damaged value: the fresh ring is dropped), or the ring was read
    /// less than <see cref="RereadAtMost"/> ago.
    /// </summary>
    private string? Reread(IDataProtector failed, string stored)
    {
        lock (_rereading)
        {
            if (!ReferenceEquals(_current, failed)) // another call read it meanwhile
                try { return _current.Unprotect(stored); }
                catch (CryptographicException) { return null; }
            if (_rereadAt != long.MinValue && Stopwatch.GetElapsedTime(_rereadAt) < RereadAtMost) return null;
            _rereadAt = Stopwatch.GetTimestamp();
            var stack = KeyRingSetup.Standalone(ring.Value, db);
            var fresh = stack.GetRequiredService<IDataProtectionProvider>().CreateProtector(OfflineTokenStore.Purpose);
            string plain;
            try { plain = fresh.Unprotect(stored); }
            catch (CryptographicException)
            {
                stack.Dispose();
                return null;
            }
            logger.LogWarning("A stored secret named a key this instance's key ring did not hold (rotated by another process); the ring was read again");
            // Why the previous stack is kept: a call may still be reading with it; one is left per rotation.
            _kept.Add(stack);
            _current = fresh;
            return plain;
        }
    }

    public void Dispose()
    {
        lock (_rereading) foreach (var p in _kept) p.Dispose();
    }
}
