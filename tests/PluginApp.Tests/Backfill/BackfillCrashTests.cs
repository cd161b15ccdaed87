using System.Text.Json.Nodes;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Backfill;
using PluginApp.Tests.Infrastructure;
using PluginApp.Tests.Outbox;

namespace PluginApp.Tests.Backfill;

/// <summary>A backfill running in a separate app process that is killed mid-way, then finished by another instance.</summary>
public sealed class BackfillCrashTests(NoSchedulerAppFixture app) : IClassFixture<NoSchedulerAppFixture>, IAsyncLifetime
{
    private const string Shop = "backfill-crash.myshopify.com";
    private const int Orders = 60;
    private readonly string _dir = Directory.CreateTempSubdirectory("bulk-crash-").FullName;

    public Task InitializeAsync()
    {
        File.WriteAllLines(Path.Combine(_dir, "products.jsonl"), Enumerable.Range(0, 5).SelectMany(p => new[]
        {
            new JsonObject { ["id"] = $"gid://shopify/Product/{800 + p}", ["title"] = $"Product {p}", ["status"] = "ACTIVE", ["tags"] = new JsonArray(),
                ["updatedAt"] = "2026-07-01T00:00:00Z" }.ToJsonString(),
            new JsonObject { ["id"] = $"gid://shopify/ProductVariant/{8800 + p}", ["price"] = "10.00", ["updatedAt"] = "2026-07-01T00:00:00Z",
                ["__parentId"] = $"gid://shopify/Product/{800 + p}" }.ToJsonString(),
        }));
        File.WriteAllLines(Path.Combine(_dir, "customers.jsonl"), Enumerable.Range(0, 10).Select(c =>
            new JsonObject { ["id"] = $"gid://shopify/Customer/{7100 + c}", ["email"] = $"c{c}@example.com", ["tags"] = new JsonArray(),
                ["updatedAt"] = "2026-07-01T00:00:00Z" }.ToJsonString()));
        // Lines before their orders and after them, as Shopify allows.
        File.WriteAllLines(Path.Combine(_dir, "orders.jsonl"), Enumerable.Range(0, Orders).SelectMany(o => new[]
        {
            Line(o, 0),
            new JsonObject { ["id"] = $"gid://shopify/Order/{20000 + o}", ["name"] = $"#{o}", ["createdAt"] = "2026-07-02T10:00:00Z",
                ["updatedAt"] = "2026-07-02T10:00:00Z", ["currencyCode"] = "USD", ["test"] = false, ["tags"] = new JsonArray(),
                ["customer"] = new JsonObject { ["id"] = $"gid://shopify/Customer/{7100 + o % 10}" } }.ToJsonString(),
            Line(o, 1),
        }));
        foreach (var root in new[] { "products", "customers", "orders" }) app.Shopify.Admin.ServeBulk(root, Path.Combine(_dir, root + ".jsonl"));
        return Task.CompletedTask;
    }

    private static string Line(int order, int i) => new JsonObject
    {
        ["id"] = $"gid://shopify/LineItem/{(20000 + order) * 10 + i}", ["title"] = "Mug", ["quantity"] = 1,
        ["product"] = new JsonObject { ["id"] = $"gid://shopify/Product/{800 + i}" }, ["__parentId"] = $"gid://shopify/Order/{20000 + order}",
    }.ToJsonString();

    public Task DisposeAsync()
    {
        app.Shopify.Admin.ReleaseBulk("orders");
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task BackfillProcessKilledMidRun_AnotherInstanceResumesTheSameRunToCompletion_WithNoDuplicates()
    {
        var shopId = await app.InstallShopAsync(Shop);
        app.Shopify.Admin.HoldBulk("orders"); // Shopify is still building the orders file when the process dies
        var settings = new Dictionary<string, string>
        {
            ["ConnectionStrings:Postgres"] = app.Database.ConnectionString,
            ["Shopify:ClientId"] = AppFixture.ClientId,
            ["Shopify:ClientSecret"] = AppFixture.ClientSecret,
            ["Shopify:AppUrl"] = "https://app.test.example",
            ["Shopify:ShopUrlTemplate"] = app.Shopify.ShopUrlTemplate,
            ["Backfill:PollInterval"] = "00:00:00.100",
            ["DataProtection:CertificatePath"] = TestKeyRing.CertificatePath,
            ["Backfill:ChunkSize"] = "7",
            ["Scheduling:InvisibilityTimeout"] = "00:00:03",
            ["Scheduling:QueuePollInterval"] = "00:00:00.200",
        };
        await using (var doomed = AppProcess.Start(settings))
        {
            app.Factory.Services.GetRequiredService<BackfillScheduler>().Schedule(Shop);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && !doomed.HasExited && await app.CountAsync(
                       "SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND phases_done = '{products,customers}' AND bulk_operations ? 'orders'", shopId) == 0)
                await Task.Delay(100);
            Assert.True(!doomed.HasExited, "the app process exited by itself:\n" + doomed.Output);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'running' AND phases_done = '{products,customers}'", shopId));
            doomed.Kill();
        }
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'running'", shopId)); // left behind by the kill

        app.Shopify.Admin.ReleaseBulk("orders");
        await using var survivor = app.CreateFactory(app.Database.ConnectionString, b => b.UseSetting("Scheduling:InvisibilityTimeout", "00:00:03"));
        _ = survivor.Services; // its job server takes the abandoned job over once the dead process stops renewing it
        var done = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < done && await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed'", shopId) == 0)
            await Task.Delay(200);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1", shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM backfill_runs WHERE shop_id = $1 AND state = 'completed' AND attempts = 2", shopId));
        Assert.Equal(Orders, await app.CountAsync("SELECT count(*) FROM orders WHERE shop_id = $1", shopId));
        Assert.Equal(Orders * 2, await app.CountAsync("SELECT count(*) FROM order_lines WHERE shop_id = $1", shopId));
        Assert.Equal(5, await app.CountAsync("SELECT count(*) FROM products WHERE shop_id = $1", shopId));
        Assert.Equal(10, await app.CountAsync("SELECT count(*) FROM customers WHERE shop_id = $1", shopId));
        // Every object counted once: nothing imported twice, and the orders query was not started again.
        Assert.Equal(5 * 2 + 10 + Orders * 3, await app.CountAsync("SELECT rows_done FROM backfill_runs WHERE shop_id = $1", shopId));
        Assert.Equal(1, app.Shopify.Admin.BulkOperationsStarted("orders"));
        Assert.Equal(1, app.Shopify.Admin.BulkOperationsStarted("products"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM backfill_lines"));
    }
}
