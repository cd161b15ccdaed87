using System.Security.Cryptography;
using System.Text;

namespace PluginApp.Recommendations;

/// <summary>
/// Deterministic arms: a hash of (shop, visitor, experiment) puts a visitor in the same arm on every request
/// and every instance. The holdout arm gets the baseline (bestsellers) so lift can be measured.
/// </summary>
public static class Experiments
{
    public const string Upsells = "upsells";
    public const string ModelArm = "model";
    public const string HoldoutArm = "holdout";

    public static string Assign(string shop, string? visitorKey, string experiment, double holdoutShare)
    {
        if (string.IsNullOrEmpty(visitorKey) || holdoutShare <= 0) return ModelArm;
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{shop}|{visitorKey}|{experiment}"), hash);
        var bucket = BitConverter.ToUInt32(hash) / (double)uint.MaxValue;
        return bucket < holdoutShare ? HoldoutArm : ModelArm;
    }

    /// <summary>A visitor id as we store it: salted with the shop so it means nothing elsewhere.</summary>
    public static string? VisitorHash(string shop, string? visitorId) => string.IsNullOrWhiteSpace(visitorId) ? null
        : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"pluginapp-visitor|{shop}|{visitorId}")))[..32];
}
