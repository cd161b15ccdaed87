namespace MlBench;

internal sealed class Args
{
    private readonly Dictionary<string, string> _named = new(StringComparer.OrdinalIgnoreCase);
    public List<string> Positional { get; } = [];

    public const string Usage = """
        MlBench [mode] [--options]
          (no mode) / all                      every benchmark on ../shared/data (resolved from the repo root)
          interactions --file F [--delim tab|,|;] [--header true|false] [--user COL] [--item COL] [--weight COL] [--ts COL] [--protocol recbole|msr|both]
          retail --file F [--cutoff 2011-09-01]
          fraud --file F [--file2 F2 ...] [--train-start 2018-07-25] [--train-days 7] [--delay-days 7] [--test-days 7]
          curve --file F [--train-start 2018-07-25] [--sizes 1000,2000,5000,...]   LightGbm vs LR by training size (Auto's thresholds)
          labelled --file F --label COL [--folds 5] [--drop c1,c2]
        common: --data DIR  --tune  --xgb path/to/xgb_compare.py  --export DIR  --threads N (ML.NET and XGBoost, default 2)
        COL is a header name or a 0-based index.
        """;

    public static Args Parse(string[] args)
    {
        var a = new Args();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                var key = args[i][2..];
                if (key is not ("tune" or "help") && i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) a._named[key] = args[++i];
                else a._named[key] = "true";
            }
            else a.Positional.Add(args[i]);
        }
        return a;
    }

    public string? Get(string key) => _named.TryGetValue(key, out var v) ? v : null;
    public bool Has(string key) => _named.ContainsKey(key);
    public string Require(string key) => Get(key) ?? throw new ArgumentException($"--{key} is required.\n{Usage}");

    public static char Delimiter(string s) => s switch { "tab" or "\\t" => '\t', "comma" => ',', "semicolon" => ';', _ => s[0] };

    /// <summary>../shared/data relative to the repo root, found by walking up to the folder holding PluginApp.sln.</summary>
    public static string DefaultDataRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "PluginApp.sln"))) dir = dir.Parent;
        dir ??= new DirectoryInfo(Directory.GetCurrentDirectory());
        return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data"));
    }
}
