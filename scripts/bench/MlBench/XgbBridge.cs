using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using PluginApp.Ml.Tabular;

namespace MlBench;

/// <summary>XGBoost's test-set probabilities for one task (scored by the bench with the same metric code as ML.NET's models).</summary>
internal sealed record XgbScores(double[]? Values, double Seconds, int Trees);

/// <summary>
/// Writes each task's exact train/test matrices to a folder, runs scripts/bench/xgb_compare.py once on them
/// (python3-xgboost, tree_method=hist, the bench's thread count, parameters mapped from the LightGbm options) and hands back its scores and
/// training seconds. Without --xgb the callbacks get NaN, so the bench still runs.
/// </summary>
internal sealed class XgbBridge(string? script, string? exportDir)
{
    private readonly List<(string Name, Action<XgbScores> Done)> _tasks = [];
    private readonly string _dir = Fresh(exportDir ?? Path.Combine(Path.GetTempPath(), "mlbench-xgb"));

    private static string Fresh(string dir)
    {
        // Stale score files from an earlier run must never be read as this run's results.
        if (Directory.Exists(dir))
            foreach (var f in Directory.GetFiles(dir).Where(f => f.EndsWith(".csv", StringComparison.Ordinal) || f.EndsWith(".txt", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)))
                File.Delete(f);
        return dir;
    }
    private readonly List<object> _manifest = [];

    public void Add(string name, Matrix trX, bool[] trY, Matrix vX, bool[] vY, Matrix teX, TabularOptions o, int threads, Action<XgbScores> done)
    {
        _tasks.Add((name, done));
        if (script == null) return;
        Directory.CreateDirectory(_dir);
        Write(Path.Combine(_dir, name + "_train.csv"), trX, trY);
        Write(Path.Combine(_dir, name + "_valid.csv"), vX, vY);
        Write(Path.Combine(_dir, name + "_test.csv"), teX, new bool[teX.Rows]);
        _manifest.Add(new Dictionary<string, object>
        {
            ["name"] = name,
            ["params"] = new Dictionary<string, object>
            {
                // Why: the same tree shape and loss knobs as ML.NET's LightGbm gets (LightGbm's min rows per leaf has no
                // XGBoost twin); 255 bins and no subsampling on both sides.
                ["max_depth"] = o.MaxDepth, ["eta"] = o.LearningRate, ["lambda"] = o.L2, ["min_child_weight"] = o.MinChildWeight,
                ["subsample"] = 1.0, ["colsample_bytree"] = 1.0, ["max_bin"] = 255, ["scale_pos_weight"] = o.PositiveWeight,
                ["max_leaves"] = o.NumberOfLeaves, ["gamma"] = 0.0, ["nthread"] = threads,
            },
            ["rounds"] = o.Iterations,
            ["early_stopping_rounds"] = o.EarlyStoppingRounds,
        });
    }

    private static void Write(string path, Matrix x, bool[] y)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16);
        w.WriteLine("label," + string.Join(",", x.Names.Select(n => n.Replace(',', '_'))));
        var sb = new StringBuilder();
        for (var r = 0; r < x.Rows; r++)
        {
            sb.Clear().Append(y[r] ? '1' : '0');
            foreach (var v in x.Row(r)) sb.Append(',').Append(float.IsNaN(v) ? "" : v.ToString("R", CultureInfo.InvariantCulture));
            w.WriteLine(sb);
        }
    }

    public void Run(Table table, TextWriter log)
    {
        _ = table;
        if (script == null || _tasks.Count == 0)
        {
            foreach (var t in _tasks) t.Done(new XgbScores(null, double.NaN, 0));
            return;
        }
        File.WriteAllText(Path.Combine(_dir, "tasks.json"), JsonSerializer.Serialize(_manifest));
        var psi = new ProcessStartInfo("/usr/bin/python3", [script, _dir]) { RedirectStandardOutput = true, RedirectStandardError = true };
        log.WriteLine($"  running XGBoost: /usr/bin/python3 {script} {_dir}");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) log.WriteLine($"  XGBoost failed ({p.ExitCode}): {stderr}");
        else if (stdout.Length > 0) log.Write(stdout);
        foreach (var (name, done) in _tasks)
        {
            var scorePath = Path.Combine(_dir, name + "_scores.txt");
            var secPath = Path.Combine(_dir, name + "_seconds.txt");
            if (p.ExitCode != 0 || !File.Exists(scorePath)) { done(new XgbScores(null, double.NaN, 0)); continue; }
            var scores = File.ReadAllLines(scorePath).Where(l => l.Length > 0).Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();
            var meta = File.ReadAllText(secPath).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            done(new XgbScores(scores, double.Parse(meta[0], CultureInfo.InvariantCulture), int.Parse(meta[1], CultureInfo.InvariantCulture)));
        }
    }
}
