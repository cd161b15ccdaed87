using System.Globalization;

namespace IntentEval;

/// <summary>A bad command line: printed with the usage, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Reading the parsed <c>--name value</c> pairs.</summary>
internal static class ArgsExtensions
{
    public static string? Opt(this IReadOnlyDictionary<string, string> a, string name) => a.TryGetValue(name, out var v) ? v : null;

    public static string Req(this IReadOnlyDictionary<string, string> a, string name) =>
        a.Opt(name) ?? throw new UsageException($"--{name} is required");

    public static int Int(this IReadOnlyDictionary<string, string> a, string name, int fallback) =>
        a.Opt(name) is { } v ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) ? x : throw new UsageException($"--{name} takes a whole number; got '{v}'") : fallback;

    public static double Double(this IReadOnlyDictionary<string, string> a, string name, double fallback) =>
        a.Opt(name) is { } v ? double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) ? x : throw new UsageException($"--{name} takes a number; got '{v}'") : fallback;

    public static HashSet<string> Set(this IReadOnlyDictionary<string, string> a, string name) =>
        new((a.Opt(name) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), StringComparer.OrdinalIgnoreCase);

    /// <summary>TRUE/FALSE, 1/0, yes/no (any case); null for anything else.</summary>
    public static bool? ParseBool(string s) => s.Trim().ToLowerInvariant() switch
    {
        "true" or "1" or "1.0" or "yes" or "y" or "t" => true,
        "false" or "0" or "0.0" or "no" or "n" or "f" => false,
        _ => null,
    };
}
