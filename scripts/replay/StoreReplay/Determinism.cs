using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace StoreReplay;

/// <summary>
/// Every random choice comes from a System.Random seeded by (run seed, entity id), so a product or an
/// order gets the same draws whatever slice it is loaded in; string.GetHashCode is per-process, so never used.
/// </summary>
public static class Determinism
{
    public static Random RngFor(int seed, long entityId, int purpose = 0) => new(MixToInt(seed, entityId, purpose));

    public static int MixToInt(int seed, long a, long b = 0)
    {
        var x = SplitMix((ulong)(uint)seed ^ SplitMix((ulong)a ^ SplitMix((ulong)b)));
        return (int)(x & 0x7FFF_FFFF);
    }

    private static ulong SplitMix(ulong z)
    {
        z += 0x9E37_79B9_7F4A_7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return z ^ (z >> 31);
    }

    public static string Hex(Random rng, int bytes)
    {
        var buffer = new byte[bytes];
        rng.NextBytes(buffer);
        return Convert.ToHexStringLower(buffer);
    }

    /// <summary>A delivery id that is the same for the same seed and event, and differs between seeds.</summary>
    public static string DeliveryId(int seed, string topic, string resourceKey)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(
            string.Create(CultureInfo.InvariantCulture, $"{seed}|{topic}|{resourceKey}")));
        return new Guid(hash.AsSpan(0, 16)).ToString("D");
    }
}
