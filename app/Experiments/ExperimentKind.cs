using System.Security.Cryptography;
using System.Text;

namespace PluginApp.Experiments;

/// <summary>One arm of an experiment and the share of units it gets.</summary>
/// <param name="Description">What a unit in this arm gets, in the merchant's words.</param>
public sealed record ArmShare(string Name, double Share, string? Description = null);

/// <summary>
/// An experiment a feature runs, declared once at start (<see cref="ExperimentExtensions.AddExperiment"/>); each shop
/// then sets its own shares, metric and guardrails and starts or stops it from the Experiments page.
/// </summary>
/// <param name="Key">Stored with every exposure and outcome, e.g. "upsells".</param>
/// <param name="Control">The arm every unit gets while the experiment is stopped, and the one the others are compared with.</param>
/// <param name="Arms">The default arms and shares (summing to 1), in the order the hash buckets them.</param>
/// <param name="RunsByDefault">Whether a shop that never touched it has it running (the upsell holdout does).</param>
public sealed record ExperimentKind(string Key, string Name, string Purpose, string Control, IReadOnlyList<ArmShare> Arms, string DefaultMetric,
    bool RunsByDefault, string StoppedArm)
{
    /// <summary>Primary metrics, per exposed unit: the share that ordered, revenue or margin net of refunds.</summary>
    public static readonly string[] Metrics = ["conversion", "revenue", "margin"];
}

/// <summary>The experiments features declared, by key.</summary>
public sealed class ExperimentKinds(IEnumerable<ExperimentKind> kinds)
{
    public IReadOnlyList<ExperimentKind> All { get; } = kinds.ToList();

    public ExperimentKind? Find(string key) => All.FirstOrDefault(k => k.Key == key);
}

/// <summary>
/// Deterministic arms: a hash of (shop, unit, experiment) puts a unit in the same arm on every request and every instance;
/// the arms take consecutive slices of [0, 1) in their declared order. Changing the shares moves only the units near a boundary.
/// </summary>
public static class Assignment
{
    public static string Arm(string shop, string? unitKey, string experiment, IReadOnlyList<ArmShare> arms, string fallback)
    {
        if (string.IsNullOrEmpty(unitKey) || arms.Count == 0) return fallback;
        var bucket = Bucket(shop, unitKey, experiment);
        var edge = 0.0;
        foreach (var arm in arms)
        {
            edge += arm.Share;
            if (bucket < edge) return arm.Name;
        }
        return arms[^1].Name;
    }

    /// <summary>The unit's place in [0, 1) for this experiment.</summary>
    public static double Bucket(string shop, string unitKey, string experiment)
    {
        Span<byte> hash = stackalloc byte[32];
        Sha256Joined(hash, shop, unitKey, experiment);
        return BitConverter.ToUInt32(hash) / (double)uint.MaxValue;
    }

    /// <summary>A visitor id as we store it: salted with the shop so it means nothing elsewhere.</summary>
    public static string? VisitorHash(string shop, string? visitorId)
    {
        if (string.IsNullOrWhiteSpace(visitorId)) return null;
        Span<byte> hash = stackalloc byte[32];
        Sha256Joined(hash, "pluginapp-visitor", shop, visitorId);
        return Convert.ToHexStringLower(hash[..16]);
    }

    /// <summary>SHA-256 of the parts' UTF-8 joined by '|'. Why not through a joined string: it is asked on every storefront
    /// request, and the string and its bytes were two allocations each time.</summary>
    private static void Sha256Joined(Span<byte> hash, string a, string b, string c)
    {
        var length = Encoding.UTF8.GetByteCount(a) + Encoding.UTF8.GetByteCount(b) + Encoding.UTF8.GetByteCount(c) + 2;
        Span<byte> text = length <= 512 ? stackalloc byte[512] : new byte[length];
        var n = Encoding.UTF8.GetBytes(a, text);
        text[n++] = (byte)'|';
        n += Encoding.UTF8.GetBytes(b, text[n..]);
        text[n++] = (byte)'|';
        n += Encoding.UTF8.GetBytes(c, text[n..]);
        SHA256.HashData(text[..n], hash);
    }

    /// <summary>The unit an exposure is counted under: the visitor when the block knows one, else the logged-in customer.</summary>
    public static string? Unit(string? visitorHash, long? customerId) =>
        visitorHash is not null ? "v:" + visitorHash : customerId is { } c ? "c:" + c.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
}

public static class ExperimentExtensions
{
    /// <summary>Declares a feature's experiment: it shows on the Experiments page and its arms are assigned by <see cref="ExperimentStore"/>.</summary>
    public static IServiceCollection AddExperiment(this IServiceCollection services, ExperimentKind kind)
    {
        if (Math.Abs(kind.Arms.Sum(a => a.Share) - 1) > 1e-9) throw new ArgumentException($"experiment '{kind.Key}': the arms' shares sum to {kind.Arms.Sum(a => a.Share)}, not 1");
        if (kind.Arms.All(a => a.Name != kind.Control)) throw new ArgumentException($"experiment '{kind.Key}': the control arm '{kind.Control}' is not one of its arms");
        if (!ExperimentKind.Metrics.Contains(kind.DefaultMetric)) throw new ArgumentException($"experiment '{kind.Key}': metric '{kind.DefaultMetric}' is not one of {string.Join(", ", ExperimentKind.Metrics)}");
        return services.AddSingleton(kind);
    }
}
