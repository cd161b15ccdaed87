using System.Text.Json.Nodes;
using Npgsql;

namespace PluginApp.Demo;

/// <summary>
/// The demo storefront's one cart, kept in memory as Shopify's Ajax cart would keep a shopper's: its lines (started with
/// two of the store's best-selling products the first time the cart page opens), the attributes the blocks write, and
/// the code applied through /discount/{code}. Demo only; one cart for whoever looks at the preview.
/// </summary>
public sealed class DemoCart
{
    public const string Token = "demo-cart";
    private readonly object _lock = new();
    private readonly List<(long ProductId, long VariantId, int Quantity)> _lines = [];
    private readonly JsonObject _attributes = new();
    private string? _discount;
    private bool _started;

    public async Task StartAsync(NpgsqlDataSource db, CancellationToken ct)
    {
        lock (_lock) if (_started) return;
        await using var cmd = db.CreateCommand("""
            SELECT l.product_id, l.variant_id FROM order_lines l JOIN shops s ON s.id = l.shop_id
            JOIN variants v ON v.shop_id = l.shop_id AND v.id = l.variant_id
            WHERE s.domain = $1 AND l.variant_id IS NOT NULL AND l.product_id IS NOT NULL
            GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 2
            """);
        cmd.Parameters.AddWithValue(DemoExtensions.Shop);
        var lines = new List<(long, long, int)>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) lines.Add((r.GetInt64(0), r.GetInt64(1), 1));
        lock (_lock)
        {
            if (_started) return;
            _lines.AddRange(lines);
            _started = lines.Count > 0;
        }
    }

    public JsonObject Json()
    {
        lock (_lock)
            return new JsonObject
            {
                ["token"] = Token,
                ["attributes"] = _attributes.DeepClone(),
                ["discount_code"] = _discount,
                ["item_count"] = _lines.Sum(l => l.Quantity),
                ["items"] = new JsonArray(_lines.Select(l => (JsonNode)new JsonObject
                {
                    ["id"] = l.VariantId, ["product_id"] = l.ProductId, ["variant_id"] = l.VariantId, ["quantity"] = l.Quantity,
                }).ToArray()),
                ["currency"] = "GBP",
            };
    }

    public JsonObject Add(JsonObject body)
    {
        var items = body["items"] as JsonArray ?? new JsonArray(new JsonObject { ["id"] = body["id"]?.DeepClone(), ["quantity"] = body["quantity"]?.DeepClone() });
        var added = new JsonArray();
        lock (_lock)
            foreach (var item in items.OfType<JsonObject>())
            {
                if (item["id"]?.GetValue<long>() is not { } variant) continue;
                var quantity = item["quantity"]?.GetValue<int>() ?? 1;
                var i = _lines.FindIndex(l => l.VariantId == variant);
                if (i >= 0) _lines[i] = _lines[i] with { Quantity = _lines[i].Quantity + quantity };
                else _lines.Add((0, variant, quantity));
                added.Add(new JsonObject { ["id"] = variant, ["variant_id"] = variant, ["quantity"] = quantity });
            }
        return new JsonObject { ["items"] = added };
    }

    public JsonObject Update(JsonObject body)
    {
        lock (_lock)
            if (body["attributes"] is JsonObject attributes)
                foreach (var (key, value) in attributes) _attributes[key] = value?.DeepClone();
        return Json();
    }

    public void ApplyDiscount(string code)
    {
        lock (_lock) _discount = code;
    }
}
