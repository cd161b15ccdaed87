using System.Globalization;

namespace LoadGen;

/// <summary>
/// CPU time the app and PostgreSQL spent during a phase, read from /proc (Linux): unlike throughput, it does not move with
/// what else the machine is doing, so it compares two changes measured minutes apart.
/// </summary>
internal sealed class ProcessCpu
{
    private readonly Dictionary<int, (string Group, long Ticks)> _start;

    private ProcessCpu(Dictionary<int, (string, long)> start) => _start = start;

    public static ProcessCpu Start() => new(Read());

    /// <summary>CPU seconds per group ("app", "postgres", "load" for this load generator) since <see cref="Start"/>.</summary>
    public Dictionary<string, double> Seconds()
    {
        var now = Read();
        var result = new Dictionary<string, double> { ["app"] = 0, ["postgres"] = 0, ["load"] = 0 };
        foreach (var (pid, (group, ticks)) in now)
            result[group] += (ticks - (_start.TryGetValue(pid, out var s) ? s.Ticks : 0)) / 100.0; // USER_HZ is 100 on Linux
        return result;
    }

    private static Dictionary<int, (string, long)> Read()
    {
        var found = new Dictionary<int, (string, long)>();
        if (!Directory.Exists("/proc")) return found;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                var group = cmdline.StartsWith("postgres", StringComparison.Ordinal) || cmdline.Contains("/bin/postgres", StringComparison.Ordinal) ? "postgres"
                    : cmdline.Contains("PluginApp.dll", StringComparison.Ordinal) ? "app" : pid == Environment.ProcessId ? "load" : null;
                if (group is null) continue;
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the command's closing parenthesis.
                found[pid] = (group, long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture));
            }
            catch (IOException) { } // the process ended meanwhile
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }
}
