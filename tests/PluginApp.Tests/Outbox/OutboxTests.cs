using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PluginApp.Outbox;
using PluginApp.Store;
using PluginApp.Tests.Infrastructure;
using ShopifyStandIn;

namespace PluginApp.Tests.Outbox;

/// <summary>An app whose instances run no scheduler: the outbox tests decide when calls go out.</summary>
public sealed class NoSchedulerAppFixture : AppFixture
{
    protected override void ConfigureMainInstance(Microsoft.AspNetCore.Hosting.IWebHostBuilder builder) =>
        builder.UseSetting("Scheduling:Enabled", "false");
}

public sealed class OutboxTests(NoSchedulerAppFixture app) : IClassFixture<NoSchedulerAppFixture>
{
    private const string TagsAdd = "mutation AddTags($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }";

    /// <summary>An app instance that does not drain on its own, so the test decides when calls go out.</summary>
    private WebApplicationFactory<Program> Instance() =>
        app.CreateFactory(app.Database.ConnectionString, b => b.UseSetting("Scheduling:Enabled", "false"));

    private async Task EnqueueAsync(long shopId, string resource, string tag)
    {
        await using var conn = await app.Db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using var batch = new NpgsqlBatch(conn, tx);
        OutboxWriter.Enqueue(new StoreWriter(batch, shopId), shopId, resource, "tagsAdd", TagsAdd,
            new { id = resource, tags = new[] { tag } }, app.Clock.GetUtcNow());
        await batch.ExecuteNonQueryAsync();
        await tx.CommitAsync();
    }

    private List<string> SentTags(string shop) => app.Shopify.Requests
        .Where(r => r.Shop == shop && r.Path.EndsWith("graphql.json"))
        .Select(r => r.Body["variables"]!["tags"]![0]!.GetValue<string>()).ToList();

    private static IResult Accepted() => DefaultAdminApi.Data(new JsonObject { ["tagsAdd"] = new JsonObject { ["node"] = null, ["userErrors"] = new JsonArray() } });

    private static IResult Broken() => Results.Json(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["message"] = "Internal error" }) });

    [Fact]
    public async Task Drain_FailingCall_IsRetriedLaterAndNotRepeatedAfterARestart()
    {
        const string shop = "outbox-retry.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var calls = 0;
        app.Shopify.GraphQL = c => c.Shop != shop ? app.Shopify.Admin.Answer(c) : Interlocked.Increment(ref calls) == 1 ? Broken() : Accepted();
        await EnqueueAsync(shopId, "gid://shopify/Order/1", "risk-high");

        await using (var first = Instance())
        {
            var sut = first.Services.GetRequiredService<OutboxDrainer>();
            Assert.Equal(0, await sut.DrainOnceAsync(CancellationToken.None));
            Assert.Equal(0, await sut.DrainOnceAsync(CancellationToken.None)); // backing off: not due yet
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1 AND attempts = 1 AND last_error LIKE '%Internal error%' AND completed_at IS NULL", shopId));

            app.Clock.Advance(TimeSpan.FromMinutes(1));
            Assert.Equal(1, await sut.DrainOnceAsync(CancellationToken.None));
        }
        await using (var restarted = Instance())
            Assert.Equal(0, await restarted.Services.GetRequiredService<OutboxDrainer>().DrainOnceAsync(CancellationToken.None));

        Assert.Equal(["risk-high", "risk-high"], SentTags(shop));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM outbox_messages WHERE shop_id = $1 AND completed_at IS NOT NULL AND attempts = 2", shopId));
    }

    [Fact]
    public async Task Drain_CallsForOneResource_GoOutInOrderEvenAcrossFailures()
    {
        const string shop = "outbox-order.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var calls = 0;
        app.Shopify.GraphQL = c => c.Shop != shop ? app.Shopify.Admin.Answer(c) : Interlocked.Increment(ref calls) == 1 ? Broken() : Accepted();
        await EnqueueAsync(shopId, "gid://shopify/Order/2", "first");
        await EnqueueAsync(shopId, "gid://shopify/Order/2", "second");
        await EnqueueAsync(shopId, "gid://shopify/Order/3", "other-resource");

        await using var instance = Instance();
        var sut = instance.Services.GetRequiredService<OutboxDrainer>();
        await sut.DrainOnceAsync(CancellationToken.None);
        Assert.Equal(["first", "other-resource"], SentTags(shop)); // "second" waits behind the failed "first"
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        await sut.DrainOnceAsync(CancellationToken.None);

        Assert.Equal(["first", "other-resource", "first", "second"], SentTags(shop));
    }

    [Fact]
    public async Task Drain_UserErrors_FailForGoodAndShowInTheAdmin()
    {
        const string shop = "outbox-dead.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        app.Shopify.GraphQL = c => c.Shop != shop ? app.Shopify.Admin.Answer(c) : DefaultAdminApi.Data(new JsonObject
        {
            ["tagsAdd"] = new JsonObject { ["node"] = null, ["userErrors"] = new JsonArray(new JsonObject { ["field"] = new JsonArray("id"), ["message"] = "Order does not exist" }) },
        });
        await EnqueueAsync(shopId, "gid://shopify/Order/404", "doomed");

        await using var instance = Instance();
        await instance.Services.GetRequiredService<OutboxDrainer>().DrainOnceAsync(CancellationToken.None);
        app.Clock.Advance(TimeSpan.FromHours(2));
        await instance.Services.GetRequiredService<OutboxDrainer>().DrainOnceAsync(CancellationToken.None);

        Assert.Single(SentTags(shop));
        var failed = await (await app.Client.SendAsync(app.AdminGet("/api/admin/outbox?state=failed", shop))).Content.ReadAsStringAsync();
        Assert.Contains("Order does not exist", failed);
    }
}
