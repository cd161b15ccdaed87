using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;
using PluginApp.Training;
using PluginApp.Recommendations;
using PluginApp.Shopify;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Recommendations;

/// <summary>
/// A small store with planted structure: three groups of four products; customers buy within one group, so
/// a product's recommendations should come from its own group. Tests speak of catalog numbers 101-112 (variants n*10);
/// each seed stores them under Shopify ids of its own (n + Offset), because Shopify's ids are unique across shops and the
/// app refuses a resource already held for another shop. Queries, answers and orders translate both ways.
/// </summary>
public sealed class StoreSeed(AppFixture app, string shop)
{
    private static long _seeds;
    public string Shop { get; } = shop;
    public long ShopId { get; private set; }
    public long Offset { get; } = Interlocked.Increment(ref _seeds) * 1_000_000;
    public static readonly string[] Types = ["mug", "tea", "book"];
    public static long Group(long product) => (product - 101) / 4;

    /// <summary>The Shopify id of catalog product n (101-112).</summary>
    public long P(long n) => Offset + n;

    /// <summary>The Shopify id of catalog variant v (n*10).</summary>
    public long V(long v) => Offset * 10 + v;

    public async Task SeedAsync(int customersPerGroup = 20, Func<long, int>? inventory = null, Func<long, decimal>? price = null)
    {
        ShopId = await app.InstallShopAsync(Shop);
        for (long p = 101; p <= 112; p++)
            await app.SendWebhookAsync("products/create", Shop, ProductBody(p, inventory?.Invoke(p) ?? 10, price?.Invoke(p)).ToJsonString());
        var orderId = Offset + 500_000L;
        var random = new Random(7);
        for (var g = 0; g < 3; g++)
            for (var c = 0; c < customersPerGroup; c++)
            {
                var customer = Offset + 9000 + g * 100 + c;
                for (var o = 0; o < 2; o++)
                {
                    var products = Enumerable.Range(0, 4).Select(i => 101L + g * 4 + i).OrderBy(_ => random.Next()).Take(2 + random.Next(2)).ToList();
                    await app.SendWebhookAsync("orders/create", Shop, RawOrder(orderId++, customer, products.Select(P).ToList(), new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero).AddDays(o * 20 + c % 10)).ToJsonString());
                }
            }
    }

    /// <summary>Catalog product n as Shopify sends it: one variant (n*10), its group's product type.</summary>
    private JsonObject ProductBody(long p, int inventory, decimal? price, string updatedAt = "2026-07-01T08:00:00-04:00")
    {
        var body = ShopifyPayloads.Product(P(p), variants: 1, updatedAt: updatedAt, inventory: inventory);
        body["product_type"] = Types[Group(p)];
        body["title"] = $"Product {p}";
        var v = body["variants"]![0]!.AsObject();
        v["id"] = V(p * 10);
        v["price"] = (price ?? 10m + (p - 101)).ToString("0.00", CultureInfo.InvariantCulture);
        return body;
    }

    /// <summary>Shopify's products/update for catalog product n with a new stock level (a later update than the seed's).</summary>
    public Task UpdateStockAsync(long n, int inventory) =>
        app.SendWebhookAsync("products/update", Shop, ProductBody(n, inventory, null, updatedAt: "2026-07-02T08:00:00-04:00").ToJsonString());

    /// <summary>Shopify's products/update for catalog product n taken off the Online Store (published_at null), a later update than the seed's.</summary>
    /// <summary>
    /// The product's stock no longer tracked by Shopify (made to order): its inventory item says so (inventory_items/update),
    /// and the product's next webhook carries a quantity of 0 and, as since API 2024-07, nothing about tracking.
    /// </summary>
    public async Task UntrackStockAsync(long n)
    {
        var item = P(n) * 100; // the first variant's inventory item (ShopifyPayloads.Product)
        var untracked = await app.SendWebhookAsync("inventory_items/update", Shop, new JsonObject
        {
            ["id"] = item, ["admin_graphql_api_id"] = $"gid://shopify/InventoryItem/{item}", ["sku"] = null, ["tracked"] = false,
            ["cost"] = "4.50", ["requires_shipping"] = true, ["created_at"] = "2026-07-01T08:00:00-04:00", ["updated_at"] = "2026-07-02T08:00:00-04:00",
        }.ToJsonString());
        Assert.Equal(System.Net.HttpStatusCode.OK, untracked.StatusCode);
        var body = ProductBody(n, 0, null, updatedAt: "2026-07-03T08:00:00-04:00");
        body["variants"]![0]!.AsObject().Remove("inventory_management");
        Assert.Equal(System.Net.HttpStatusCode.OK, (await app.SendWebhookAsync("products/update", Shop, body.ToJsonString())).StatusCode);
    }

    public Task<HttpResponseMessage> UnpublishAsync(long n)
    {
        var body = ProductBody(n, 10, null, updatedAt: "2026-07-02T08:00:00-04:00");
        body["published_at"] = null;
        return app.SendWebhookAsync("products/update", Shop, body.ToJsonString());
    }

    /// <summary>An order of catalog products, with an order id of this seed's own (n + Offset).</summary>
    public JsonObject Order(long n, long? customer, IReadOnlyList<long> products, DateTimeOffset at, string? visitor = null) =>
        RawOrder(Offset + n, customer, products.Select(P).ToList(), at, visitor);

    private static JsonObject RawOrder(long id, long? customer, IReadOnlyList<long> products, DateTimeOffset at, string? visitor = null)
    {
        var o = ShopifyPayloads.Order(id, customerId: customer, lines: products.Count);
        o["created_at"] = at.ToString("O");
        o["processed_at"] = at.ToString("O"); // as Shopify has it for an order placed in the store
        o["updated_at"] = at.ToString("O");
        for (var i = 0; i < products.Count; i++)
        {
            var line = o["line_items"]![i]!.AsObject();
            line["product_id"] = products[i];
            line["variant_id"] = products[i] * 10;
            line["quantity"] = 1;
        }
        if (visitor is not null) o["note_attributes"] = new JsonArray(new JsonObject { ["name"] = "_pluginapp_visitor", ["value"] = visitor });
        return o;
    }

    public async Task<(int Version, bool Activated)> TrainAsync() =>
        await app.Factory.Services.GetRequiredService<TrainingService>().TrainAsync(Shop, RecommenderTrainer.Kind, "test", CancellationToken.None);

    /// <summary>Serving reloads the catalog within seconds; tests that change it do not wait.</summary>
    public void RefreshCatalog(IServiceProvider? services = null) =>
        (services ?? app.Factory.Services).GetRequiredService<CatalogCache>().Invalidate(ShopId);

    /// <summary>A request as Shopify's app proxy forwards it: the shop, customer and timestamp added and signed.</summary>
    public static string Signed(string path, string shop, string query, DateTimeOffset now, string secret = AppFixture.ClientSecret, string customer = "") =>
        path + "?" + ShopifySigner.ProxyQuery(secret, shop,
            Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query).Select(p => new KeyValuePair<string, string>(p.Key, p.Value.ToString())), now, customer);

    public async Task<JsonElement> RecommendAsync(string query, HttpClient? client = null, string customer = "")
    {
        var response = await (client ?? app.Client).GetAsync(Signed("/proxy/recommendations", Shop, ToShopify(query), app.Clock.GetUtcNow(), customer: customer));
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>A visitor id that the deterministic experiment assignment puts in the given arm for this shop.</summary>
    public string VisitorIn(string arm, string prefix = "v") =>
        Enumerable.Range(0, 1000).Select(i => $"{prefix}-{i}").First(v =>
            PluginApp.Experiments.Assignment.Arm(Shop, PluginApp.Experiments.Assignment.VisitorHash(Shop, v), UpsellExperiment.Key, UpsellExperiment.Kind.Arms, UpsellExperiment.ModelArm) == arm);

    /// <summary>The catalog numbers of the products an answer holds, in its order.</summary>
    public long[] Products(JsonElement answer) => answer.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("product_id").GetInt64() - Offset).ToArray();

    /// <summary>A storefront query written with catalog numbers (product_id=105, variant_ids=1050,1070), in Shopify ids.</summary>
    public string ToShopify(string query) => string.Join('&', query.Split('&').Select(part =>
    {
        var eq = part.IndexOf('=');
        var (key, value) = eq < 0 ? (part, "") : (part[..eq], part[(eq + 1)..]);
        return key switch
        {
            "product_id" => $"{key}={P(long.Parse(value, CultureInfo.InvariantCulture))}",
            "variant_ids" => $"{key}={string.Join(',', value.Split(',').Select(v => V(long.Parse(v, CultureInfo.InvariantCulture))))}",
            _ => part,
        };
    }));
}
