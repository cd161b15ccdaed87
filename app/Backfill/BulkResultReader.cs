using System.Text.Json;

namespace PluginApp.Backfill;

/// <summary>
/// Reads a bulk operation's JSONL: parents keep their order, children are attached by __parentId
/// wherever they appear (Shopify does not promise they follow their parent).
/// </summary>
internal sealed class BulkResultReader<TParent, TChild>(Func<JsonElement, TParent> parent, Func<JsonElement, string, TChild> child)
{
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly List<(TParent Parent, List<TChild> Children)> _items = [];
    private readonly Dictionary<string, List<TChild>> _orphans = new(StringComparer.Ordinal);

    public long Lines { get; private set; }

    public async Task ReadAsync(Stream jsonl, CancellationToken ct)
    {
        using var reader = new StreamReader(jsonl);
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.Length == 0) continue;
            Lines++;
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            if (e.TryGetProperty("__parentId", out var pid))
            {
                var parentId = pid.GetString()!;
                var c = child(e, parentId);
                if (_index.TryGetValue(parentId, out var i)) _items[i].Children.Add(c);
                else (_orphans.TryGetValue(parentId, out var list) ? list : _orphans[parentId] = []).Add(c);
            }
            else
            {
                var id = e.GetProperty("id").GetString()!;
                var children = _orphans.Remove(id, out var early) ? early : [];
                _index[id] = _items.Count;
                _items.Add((parent(e), children));
            }
        }
    }

    public IReadOnlyList<(TParent Parent, List<TChild> Children)> Items => _items;
}
