using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace MlBench;

/// <summary>Minimal CSV reading: quoted fields with doubled quotes, no embedded newlines (true for every data set used here).</summary>
internal static class Csv
{
    public static TextReader Open(string path)
    {
        Stream s = File.OpenRead(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) s = new GZipStream(s, CompressionMode.Decompress);
        return new StreamReader(s, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
    }

    public static IEnumerable<string[]> Rows(string path, char delimiter = ',')
    {
        using var r = Open(path);
        string? line;
        var fields = new List<string>();
        var sb = new StringBuilder();
        while ((line = r.ReadLine()) != null)
        {
            if (line.Length == 0) continue;
            fields.Clear();
            sb.Clear();
            var quoted = false;
            for (var i = 0; i < line.Length; i++)
            {
                var c = line[i];
                if (quoted)
                {
                    if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; }
                    else if (c == '"') quoted = false;
                    else sb.Append(c);
                }
                else if (c == '"') quoted = true;
                else if (c == delimiter) { fields.Add(sb.ToString()); sb.Clear(); }
                else sb.Append(c);
            }
            fields.Add(sb.ToString());
            yield return fields.ToArray();
        }
    }

    public static double Num(string s) => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);

    public static bool TryNum(string s, out double v) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v);

    public static int Col(string[] header, string name)
    {
        var i = Array.FindIndex(header, h => string.Equals(h.Trim(), name, StringComparison.OrdinalIgnoreCase));
        if (i < 0 && int.TryParse(name, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)) i = n;
        if (i < 0) throw new ArgumentException($"Column '{name}' not found; header: {string.Join(",", header)}");
        return i;
    }
}
