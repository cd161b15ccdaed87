using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Microsoft.VisualBasic.FileIO;
using PluginApp.Tests.Infrastructure;
using StoreReplay;

namespace PluginApp.Tests.Replay;

/// <summary>The data replay (scripts/replay): real data in, the app's tables out, deterministic for a seed.</summary>
public sealed class ReplayTests(AppFixture fixture) : IClassFixture<AppFixture>
{
    private const int SliceInvoices = 300;

    [Fact]
    public async Task Replay_of_a_fixed_slice_produces_the_expected_counts_of_orders_lines_and_customers()
    {
        var expected = ExpectedCountsFromCsv(SliceInvoices);
        var store = LoadRetailSlice(seed: 7);
        const string shop = "replay-slice.myshopify.com";
        var shopId = await fixture.InstallShopAsync(shop);

        var report = await Sender(shop).SendAsync(WebhookEmitter.Emit(store));

        Assert.True(report.Failed == 0, string.Join("\n", report.FirstErrors));
        Assert.Equal(expected.Orders, report.SentOf("orders/create"));
        Assert.Equal(expected.Orders, await fixture.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(expected.Lines, await fixture.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1", shopId));
        Assert.Equal(expected.Customers, await fixture.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1", shopId));
        // The customers who subscribed as their account was made (a share the replay draws), told by the consent topic: every
        // later order of theirs, which carries no consent, keeps it.
        var subscribed = store.Customers.Count(store.Subscribed);
        Assert.InRange(subscribed, expected.Customers * 0.3, expected.Customers * 0.5);
        Assert.Equal(subscribed, await fixture.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1 AND accepts_marketing", shopId));
        Assert.Equal(expected.Skus, await fixture.CountAsync("SELECT count(*) FROM products WHERE shop_id = $1", shopId));
        Assert.Equal(expected.Revenue, (decimal)(await fixture.ScalarAsync("SELECT sum(total_price) FROM orders WHERE shop_id = $1", shopId))!);
        // Refunds, carts and checkouts follow the store the replay built; abandoned checkouts never complete.
        Assert.Equal(store.Refunds.Count, await fixture.CountAsync("SELECT count(*) FROM refunds WHERE shop_id = $1", shopId));
        Assert.Equal(store.Sessions.Count, await fixture.CountAsync("SELECT count(*) FROM carts WHERE shop_id = $1", shopId));
        Assert.Equal(store.Sessions.Count(s => s.ReachedCheckout && s.Abandoned),
            await fixture.CountAsync("SELECT count(*) FROM checkouts WHERE shop_id = $1 AND completed_at IS NULL", shopId));
        Assert.Equal(store.Sessions.Count(s => !s.Abandoned),
            await fixture.CountAsync("SELECT count(*) FROM orders o JOIN checkouts c ON c.shop_id = o.shop_id AND c.token = o.checkout_token WHERE o.shop_id = $1 AND c.completed_at IS NOT NULL", shopId));
        Assert.NotEmpty(store.Refunds);
    }

    [Fact]
    public void The_same_seed_emits_identical_deliveries_and_another_seed_other_sessions()
    {
        var first = WebhookEmitter.Emit(LoadRetailSlice(seed: 7)).ToList();
        var again = WebhookEmitter.Emit(LoadRetailSlice(seed: 7)).ToList();
        var other = LoadRetailSlice(seed: 8);

        Assert.Equal(first.Count, again.Count);
        for (var i = 0; i < first.Count; i++)
        {
            Assert.Equal((first[i].Topic, first[i].DeliveryId), (again[i].Topic, again[i].DeliveryId));
            Assert.True(first[i].Body.AsSpan().SequenceEqual(again[i].Body), $"delivery {i} ({first[i].Topic}) differs");
        }
        var carts7 = first.Where(d => d.Topic == "carts/create").Select(d => Json(d).GetProperty("token").GetString()!).ToHashSet();
        var carts8 = other.Sessions.Select(s => s.CartToken).ToHashSet();
        Assert.NotEmpty(carts7);
        Assert.False(carts7.Overlaps(carts8));
        var orders7 = first.Where(d => d.Topic == "orders/create" && Json(d).GetProperty("cart_token").ValueKind == JsonValueKind.String)
            .Select(d => Json(d).GetProperty("id").GetInt64().ToString(CultureInfo.InvariantCulture));
        var orders8 = other.Sessions.Where(s => !s.Abandoned).Select(s => s.Order!.Id.ToString(CultureInfo.InvariantCulture));
        Assert.NotEqual(orders7.Order().ToList(), orders8.Order().ToList());
    }

    [Fact]
    public async Task Fraud_replay_keeps_the_labels_out_of_the_payloads_and_one_label_per_order()
    {
        ReplayStore store;
        var first = Directory.GetFiles(Path.Combine(DataDir(), "fraud-handbook-sim"), "*.csv.gz").Order(StringComparer.Ordinal).First();
        using (var file = File.OpenRead(first))
            store = FraudHandbookStore.Load([file], new FraudOptions { Seed = 7, MaxTransactions = 3000 });
        var deliveries = WebhookEmitter.Emit(store).ToList();

        Assert.Equal(3000, store.Orders.Count);
        Assert.Equal(store.Orders.Select(o => o.Id), store.Labels.Select(l => l.OrderId));
        foreach (var d in deliveries)
        {
            var body = Encoding.UTF8.GetString(d.Body);
            Assert.DoesNotContain("TX_", body, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("fraud", body, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("WINDOW", body, StringComparison.OrdinalIgnoreCase);
        }
        // The terminal is the storefront client: one address per terminal, and the app stores it on the order.
        const string shop = "replay-fraud.myshopify.com";
        var shopId = await fixture.InstallShopAsync(shop);
        var report = await Sender(shop).SendAsync(deliveries.Where(d => !d.Topic.StartsWith("customers", StringComparison.Ordinal)).Take(400));
        Assert.Equal(0, report.Failed);
        Assert.True(await fixture.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1 AND browser_ip LIKE '198.1%'", shopId) > 100);
    }

    [Fact]
    public void Bulk_jsonl_children_follow_a_parent_line_they_name()
    {
        var store = LoadRetailSlice(seed: 7);
        foreach (var (write, parentType, childType) in new (Action<ReplayStore, Stream>, string, string?)[]
                 {
                     (BulkJsonlEmitter.WriteProducts, "Product", "ProductVariant"),
                     (BulkJsonlEmitter.WriteCustomers, "Customer", null),
                     (BulkJsonlEmitter.WriteOrders, "Order", "LineItem"),
                 })
        {
            using var ms = new MemoryStream();
            write(store, ms);
            var seen = new HashSet<string>();
            int parents = 0, children = 0;
            foreach (var line in Encoding.UTF8.GetString(ms.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var doc = JsonDocument.Parse(line);
                var id = doc.RootElement.GetProperty("id").GetString()!;
                if (doc.RootElement.TryGetProperty("__parentId", out var parent))
                {
                    Assert.StartsWith($"gid://shopify/{childType}/", id);
                    Assert.StartsWith($"gid://shopify/{parentType}/", parent.GetString());
                    Assert.Contains(parent.GetString()!, seen);
                    children++;
                }
                else
                {
                    Assert.StartsWith($"gid://shopify/{parentType}/", id);
                    parents++;
                }
                Assert.True(seen.Add(id), $"{id} appears twice");
            }
            Assert.True(parents > 0);
            if (childType is not null) Assert.True(children >= parents);
        }
    }

    private WebhookSender Sender(string shop) =>
        new(fixture.Client, new WebhookSenderOptions { ClientSecret = AppFixture.ClientSecret, ShopDomain = shop, Concurrency = 8 });

    private static ReplayStore LoadRetailSlice(int seed)
    {
        using var file = File.OpenRead(RetailFile());
        return OnlineRetailStore.Load(file, new OnlineRetailOptions { Seed = seed, MaxInvoices = SliceInvoices });
    }

    private sealed record Expected(int Orders, int Lines, int Customers, int Skus, decimal Revenue);

    /// <summary>
    /// The counts the mapping promises, computed here without the replay code: of the first N invoice numbers,
    /// an order per all-digit invoice with a line of quantity > 0 and price > 0 (rounded to pence), one line per
    /// such row, one customer per CustomerID on those rows, one product per StockCode sold.
    /// </summary>
    private static Expected ExpectedCountsFromCsv(int invoices)
    {
        using var gz = new GZipStream(File.OpenRead(RetailFile()), CompressionMode.Decompress);
        using var csv = new TextFieldParser(gz) { TextFieldType = FieldType.Delimited, HasFieldsEnclosedInQuotes = true };
        csv.SetDelimiters(",");
        csv.ReadFields();
        var seen = new HashSet<string>();
        var orders = new HashSet<string>();
        var customers = new HashSet<string>();
        var skus = new HashSet<string>();
        var lines = 0;
        var revenue = 0m;
        while (csv.ReadFields() is { } f)
        {
            if (seen.Add(f[0]) && seen.Count > invoices) break;
            var price = Math.Round(decimal.Parse(f[5], NumberStyles.Float, CultureInfo.InvariantCulture), 2, MidpointRounding.AwayFromZero);
            var quantity = int.Parse(f[3], CultureInfo.InvariantCulture);
            if (!f[0].All(char.IsAsciiDigit) || quantity <= 0 || price <= 0) continue;
            orders.Add(f[0]);
            lines++;
            revenue += price * quantity;
            skus.Add(f[1].Trim());
            if (f[6].Length > 0) customers.Add(f[6]);
        }
        return new Expected(orders.Count, lines, customers.Count, skus.Count, revenue);
    }

    private static JsonElement Json(Delivery d) => JsonDocument.Parse(d.Body).RootElement;

    private static string RetailFile() => Path.Combine(DataDir(), "online-retail", "online_retail.csv.gz");

    /// <summary>../shared/data from the repository root (the folder holding PluginApp.sln).</summary>
    private static string DataDir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PluginApp.sln"))) dir = dir.Parent;
        return Path.GetFullPath(Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("PluginApp.sln not found above the tests"),
            "..", "shared", "data"));
    }
}
