using System.Globalization;
using System.Text;

namespace MlBench;

/// <summary>The one result table the bench prints.</summary>
internal sealed class Table
{
    private readonly List<string[]> _rows = [];
    private static readonly string[] Header = ["dataset / protocol", "metric", "ours", "baseline (same run)", "published / reference", "train s"];

    public static string F(double v, int digits = 3) => double.IsNaN(v) ? "n/a" : v.ToString("F" + digits, CultureInfo.InvariantCulture);

    public void Add(string dataset, string metric, string ours, string baseline, string reference, string seconds) =>
        _rows.Add([dataset, metric, ours, baseline, reference, seconds]);

    public override string ToString()
    {
        var all = new List<string[]> { Header };
        all.AddRange(_rows);
        var w = new int[Header.Length];
        foreach (var r in all) for (var i = 0; i < w.Length; i++) w[i] = Math.Max(w[i], r[i].Length);
        var sb = new StringBuilder();
        void Line(string[] r) => sb.Append("| ").Append(string.Join(" | ", r.Select((c, i) => c.PadRight(w[i])))).Append(" |\n");
        Line(all[0]);
        sb.Append("|").Append(string.Join("|", w.Select(x => new string('-', x + 2)))).Append("|\n");
        foreach (var r in _rows) Line(r);
        return sb.ToString();
    }
}
