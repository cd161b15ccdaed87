using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Install;
using PluginApp.Shopify;
using PluginApp.Tests.Infrastructure;
using ShopifyStandIn;
using WireMock.ResponseBuilders;

namespace PluginApp.Tests.Shopify;

public sealed class AdminGraphQLClientTests(AppFixture app) : IClassFixture<AppFixture>
{
    private const string Query = "query { shop { name } }";
    private const string AddTags = "mutation AddTags($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }";

    private async Task<(AdminGraphQLClient Sut, string Shop)> Arrange(string shop, Func<GraphQLCall, int, StandInAnswer>? answer = null)
    {
        await app.InstallShopAsync(shop);
        app.Factory.Services.GetRequiredService<AdminGraphQLClient.Pacing>().Reset(shop);
        var calls = 0;
        if (answer is not null)
            app.Shopify.GraphQL = call => call.Shop == shop ? answer(call, Interlocked.Increment(ref calls)) : null;
        return (app.Factory.Services.GetRequiredService<AdminGraphQLClient>(), shop);
    }

    private List<RecordedRequest> Calls(string shop) => app.Shopify.Requests.Where(r => r.Shop == shop && r.Path.EndsWith("graphql.json")).ToList();

    private int WireCalls(string shop) => app.Shopify.Mock.LogEntries.Count(e => e.RequestMessage.Path.Contains($"/shops/{shop}/admin/api/"));

    private static StandInAnswer Shop(double available = 1990) =>
        DefaultAdminApi.Data(new JsonObject { ["shop"] = new JsonObject { ["name"] = "Demo" } }, available);

    [Fact]
    public async Task Execute_SendsPinnedVersionAndToken_ReturnsData()
    {
        var (sut, shop) = await Arrange("gql-ok.myshopify.com", (_, _) => Shop());

        var data = await sut.ExecuteAsync(shop, Query, null, CancellationToken.None);

        Assert.Equal("Demo", data.GetProperty("shop").GetProperty("name").GetString());
        Assert.Equal($"/admin/api/{ShopifyApiVersion.Pinned}/graphql.json", Calls(shop).Single().Path);
    }

    [Fact]
    public async Task Execute_AfterBucketRanDry_WaitsForItToRefillBeforeTheNextCall()
    {
        var (sut, shop) = await Arrange("gql-pace.myshopify.com", (_, n) => Shop(available: n == 1 ? 0 : 1990));

        await sut.ExecuteAsync(shop, Query, null, CancellationToken.None);
        await sut.ExecuteAsync(shop, Query, null, CancellationToken.None, expectedCost: 60);

        var calls = Calls(shop);
        // 60 points at 100 points/s restore: the second call waits about 0.6 s.
        Assert.True(calls[1].At - calls[0].At >= TimeSpan.FromMilliseconds(500), $"waited only {(calls[1].At - calls[0].At).TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Execute_Throttled_WaitsAndRetries()
    {
        var (sut, shop) = await Arrange("gql-throttled.myshopify.com", (_, n) => n == 1
            ? StandInAnswer.Json(new JsonObject
            {
                ["errors"] = new JsonArray(new JsonObject { ["message"] = "Throttled", ["extensions"] = new JsonObject { ["code"] = "THROTTLED" } }),
                ["extensions"] = new JsonObject { ["cost"] = new JsonObject { ["requestedQueryCost"] = 20,
                    ["throttleStatus"] = new JsonObject { ["maximumAvailable"] = 2000.0, ["currentlyAvailable"] = 5, ["restoreRate"] = 100.0 } } },
            })
            : Shop());

        var data = await sut.ExecuteAsync(shop, Query, null, CancellationToken.None);

        Assert.Equal("Demo", data.GetProperty("shop").GetProperty("name").GetString());
        Assert.Equal(2, Calls(shop).Count);
    }

    [Fact]
    public async Task Execute_429WithRetryAfter_WaitsThatLongAndRetries()
    {
        var (sut, shop) = await Arrange("gql-429.myshopify.com", (_, _) => Shop());
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithStatusCode(429).WithHeader("Retry-After", "1"));

        var watch = Stopwatch.StartNew();
        var data = await sut.ExecuteAsync(shop, Query, null, CancellationToken.None);

        Assert.Equal("Demo", data.GetProperty("shop").GetProperty("name").GetString());
        Assert.Equal(2, WireCalls(shop));
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(950), $"retried after {watch.ElapsedMilliseconds} ms, before Retry-After");
    }

    [Fact]
    public async Task Execute_ServerErrorsAndADroppedConnection_AreRetriedWithBackoff()
    {
        var (sut, shop) = await Arrange("gql-5xx.myshopify.com", (_, _) => Shop());
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithStatusCode(503), times: 2);
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithFault(WireMock.ResponseBuilders.FaultType.EMPTY_RESPONSE));

        var data = await sut.ExecuteAsync(shop, Query, null, CancellationToken.None);

        Assert.Equal("Demo", data.GetProperty("shop").GetProperty("name").GetString());
        Assert.Equal(4, WireCalls(shop));
    }

    [Fact]
    public async Task Mutate_ServerErrorOrDroppedAnswer_IsNotRepeatedBecauseItMayHaveRun()
    {
        var (sut, shop) = await Arrange("gql-mut-5xx.myshopify.com");
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithStatusCode(502));

        await Assert.ThrowsAnyAsync<HttpRequestException>(() =>
            sut.MutateAsync(shop, AddTags, new { id = "gid://shopify/Order/1", tags = new[] { "x" } }, "tagsAdd", CancellationToken.None));
        Assert.Equal(1, WireCalls(shop));

        app.Shopify.Admin.DropAfterApplying(shop, "tagsAdd");
        await Assert.ThrowsAnyAsync<HttpRequestException>(() =>
            sut.MutateAsync(shop, AddTags, new { id = "gid://shopify/Order/1", tags = new[] { "y" } }, "tagsAdd", CancellationToken.None));
        Assert.Equal(2, WireCalls(shop));
    }

    [Fact]
    public async Task Mutate_429_IsRetriedBecauseShopifyDidNotRunIt()
    {
        var (sut, shop) = await Arrange("gql-mut-429.myshopify.com");
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithStatusCode(429).WithHeader("Retry-After", "0"));

        await sut.MutateAsync(shop, AddTags, new { id = "gid://shopify/Order/1", tags = new[] { "x" } }, "tagsAdd", CancellationToken.None);

        Assert.Equal(2, WireCalls(shop));
        Assert.Single(app.Shopify.Admin.Mutations, m => m.Shop == shop);
    }

    /// <summary>A query whose answer did not come within the client's timeout is asked again (a query can be), as after a 5xx.</summary>
    [Fact]
    public async Task Execute_AnswerPastTheTimeout_IsAskedAgain()
    {
        var (_, shop) = await Arrange("gql-timeout-query.myshopify.com", (_, _) => Shop());
        await using var impatient = app.CreateFactory(app.Database.ConnectionString, b => b.UseSetting("Shopify:AdminApiTimeout", "00:00:01"));
        var sut = impatient.Services.GetRequiredService<AdminGraphQLClient>();
        app.Shopify.Next(StandInServer.GraphQLRequest(shop), Response.Create().WithDelay(TimeSpan.FromSeconds(3)).WithStatusCode(200));

        var data = await sut.ExecuteAsync(shop, Query, null, CancellationToken.None);

        Assert.Equal("Demo", data.GetProperty("shop").GetProperty("name").GetString());
        // Two or more: the stand-in moves past its slow answer when that answer ends, so a second ask can meet it too.
        Assert.InRange(WireCalls(shop), 2, 5);
    }

    [Fact]
    public async Task Execute_SlowAnswer_GivesUpAtTheClientTimeout()
    {
        await app.InstallShopAsync("gql-slow.myshopify.com");
        await using var impatient = app.CreateFactory(app.Database.ConnectionString, b => b.UseSetting("Shopify:AdminApiTimeout", "00:00:01"));
        var sut = impatient.Services.GetRequiredService<AdminGraphQLClient>();
        app.Shopify.Next(StandInServer.GraphQLRequest("gql-slow.myshopify.com"), Response.Create().WithDelay(TimeSpan.FromSeconds(5)).WithStatusCode(200), times: 5);

        var watch = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<Exception>(() => sut.MutateAsync("gql-slow.myshopify.com", AddTags,
            new { id = "gid://shopify/Order/1", tags = new[] { "x" } }, "tagsAdd", CancellationToken.None));

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(4), $"waited {watch.ElapsedMilliseconds} ms for a slow answer");
    }

    [Fact]
    public async Task Mutate_UserErrors_SurfaceAsTypedFailure()
    {
        var (sut, shop) = await Arrange("gql-usererr.myshopify.com", (_, _) => DefaultAdminApi.Data(new JsonObject
        {
            ["tagsAdd"] = new JsonObject
            {
                ["node"] = null,
                ["userErrors"] = new JsonArray(new JsonObject { ["field"] = new JsonArray("id"), ["message"] = "Order does not exist" }),
            },
        }));

        var e = await Assert.ThrowsAsync<ShopifyUserErrorsException>(() =>
            sut.MutateAsync(shop, AddTags, new { id = "gid://shopify/Order/1", tags = new[] { "x" } }, "tagsAdd", CancellationToken.None));

        Assert.Equal("Order does not exist", e.Errors.Single().Message);
        Assert.Equal(["id"], e.Errors.Single().Field);
    }

    [Fact]
    public async Task Execute_Unauthorized_MarksTheShopRevokedAndStopsUsingIt()
    {
        var (sut, shop) = await Arrange("gql-revoked.myshopify.com", (_, _) => StandInAnswer.StatusCode(401));

        await Assert.ThrowsAsync<ShopTokenRevokedException>(() => sut.ExecuteAsync(shop, Query, null, CancellationToken.None));

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1 AND token_revoked_at IS NOT NULL", shop));
        await Assert.ThrowsAsync<ShopNotConnectedException>(() => sut.ExecuteAsync(shop, Query, null, CancellationToken.None));
        Assert.Single(Calls(shop));
    }

    /// <summary>
    /// A call sent with the token the shop held, refused after the merchant installed again (a new token): the new token is
    /// not marked revoked, and the next call goes out with it. Until 5 Dec 2026 the stale refusal marked the new grant, and
    /// the shop's outbox, holds and backfill stopped until the merchant opened the app.
    /// </summary>
    [Fact]
    public async Task Execute_UnauthorizedForATokenReplacedMeanwhile_LeavesTheNewTokenInUse()
    {
        var store = app.Factory.Services.GetRequiredService<OfflineTokenStore>();
        const string name = "gql-stale-401.myshopify.com";
        var (sut, shop) = await Arrange(name, (call, n) =>
        {
            if (n > 1) return Shop();
            store.SaveGrantAsync(name, new TokenGrant("shpat_reinstalled", "read_orders", 3600, "shprt_reinstalled", 7776000), CancellationToken.None)
                .GetAwaiter().GetResult();
            return StandInAnswer.StatusCode(401);
        });

        await Assert.ThrowsAsync<ShopTokenRevokedException>(() => sut.ExecuteAsync(shop, Query, null, CancellationToken.None));

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM shops WHERE domain = $1 AND token_revoked_at IS NOT NULL", shop));
        Assert.Equal("Demo", (await sut.ExecuteAsync(shop, Query, null, CancellationToken.None)).GetProperty("shop").GetProperty("name").GetString());
        var last = app.Shopify.Mock.LogEntries.Last(e => e.RequestMessage.Path.Contains($"/shops/{shop}/admin/api/"));
        Assert.Equal("shpat_reinstalled", last.RequestMessage.Headers!.Single(h => h.Key.Equals("X-Shopify-Access-Token", StringComparison.OrdinalIgnoreCase)).Value.Single());
    }
}
