using System.Text;

namespace StoreReplay;

/// <summary>
/// Reads RFC 4180 CSV one line at a time. Both data sets have no newline inside a field (PROVENANCE.md),
/// so a record is a line; quoted fields with "" escapes occur in Online Retail's Description.
/// </summary>
internal sealed class CsvLines(TextReader reader)
{
    private readonly StringBuilder _field = new();

    public string[]? Record { get; private set; }

    public bool Read()
    {
        var line = reader.ReadLine();
        if (line is null) return false;
        Record = Split(line);
        return true;
    }

    private string[] Split(string line)
    {
        var fields = new List<string>(24);
        var quoted = false;
        _field.Clear();
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c != '"') _field.Append(c);
                else if (i + 1 < line.Length && line[i + 1] == '"') { _field.Append('"'); i++; }
                else quoted = false;
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(_field.ToString()); _field.Clear(); }
            else _field.Append(c);
        }
        fields.Add(_field.ToString());
        return fields.ToArray();
    }
}
