using System.Globalization;

namespace ReplayCli;

/// <summary>"--name value" pairs; flags without a value are not used by this command.</summary>
internal sealed class CliArgs
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public CliArgs(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"expected --name value, got '{args[i]}'");
            _values[args[i][2..]] = args[++i];
        }
    }

    public bool Has(string name) => _values.ContainsKey(name);
    public string? Get(string name) => _values.GetValueOrDefault(name);
    public string Required(string name) => Get(name) ?? throw new ArgumentException($"--{name} is required");
    public int? Int(string name) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : null;
    public double? Double(string name) => Get(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : null;

    public DateTimeOffset? Date(string name) => Get(name) is { } v
        ? new DateTimeOffset(DateTime.SpecifyKind(DateTime.ParseExact(v, ["yyyy-MM-dd", "yyyy-MM-dd'T'HH:mm:ss"],
            CultureInfo.InvariantCulture, DateTimeStyles.None), DateTimeKind.Utc))
        : null;
}
