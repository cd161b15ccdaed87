using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.StoreData;
using PluginApp.Tests.Infrastructure;
using PluginApp.Webhooks;

namespace PluginApp.Tests.Webhooks;

/// <summary>The app with one more feature plugged into ingestion: a step that notes every order it is given.</summary>
public sealed class IngestionStepFixture : AppFixture
{
    // Why a check constraint: an order the step cannot store must leave no trace of the order either.
    public const long Refused = 666;

    protected override void ConfigureMainInstance(IWebHostBuilder builder) => builder.ConfigureServices(s =>
        s.AddIngestionStep<OrderRows>("test probe", (store, rows, at) =>
            store.Add("INSERT INTO ingestion_probe (shop_id, order_id, topic, delivery_id) VALUES ($1, $2, $3, $4)",
                store.ShopId, rows.Order.Id, at.Topic, at.DeliveryId)));

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await using var cmd = Db.CreateCommand($"""
            CREATE TABLE ingestion_probe (shop_id bigint NOT NULL, order_id bigint NOT NULL CHECK (order_id <> {Refused}),
                                          topic text NOT NULL, delivery_id text NOT NULL)
            """);
        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>A feature's ingestion step runs in the delivery's transaction, once per delivery, only for the rows it asked for.</summary>
public sealed class IngestionStepTests(IngestionStepFixture app) : IClassFixture<IngestionStepFixture>, IAsyncLifetime
{
    private const string Shop = "steps-shop.myshopify.com";

    public async Task InitializeAsync() => await app.InstallShopAsync(Shop);
    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task OrderDelivery_RunsTheStepOnce_EvenWhenShopifyDeliversItTwice()
    {
        var delivery = Guid.NewGuid().ToString();
        var json = ShopifyPayloads.Order(3101).ToJsonString();

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", Shop, json, delivery)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/create", Shop, json, delivery)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("orders/paid", Shop, json)).StatusCode);

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM ingestion_probe WHERE order_id = 3101 AND topic = 'orders/create' AND delivery_id = $1", delivery));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM ingestion_probe WHERE order_id = 3101 AND topic = 'orders/paid'"));
        Assert.Equal(2, await app.CountAsync("SELECT count(*) FROM ingestion_probe p JOIN shops s ON s.id = p.shop_id WHERE s.domain = $1", Shop));
    }

    [Fact]
    public async Task OtherTopics_DoNotRunAnOrderStep()
    {
        await app.SendWebhookAsync("products/update", Shop, ShopifyPayloads.Product(3201).ToJsonString());
        await app.SendWebhookAsync("customers/update", Shop, ShopifyPayloads.Customer(3202).ToJsonString());

        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM products WHERE id = 3201"));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM ingestion_probe WHERE order_id IN (3201, 3202)"));
    }

    [Fact]
    public async Task StepThatCannotStore_LeavesNoHalfOrder_AndTheDeliveryIsKeptAside()
    {
        var delivery = Guid.NewGuid().ToString();

        var response = await app.SendWebhookAsync("orders/create", Shop, ShopifyPayloads.Order(IngestionStepFixture.Refused).ToJsonString(), delivery);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // Shopify's retries would fail the same way
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM orders WHERE id = $1", IngestionStepFixture.Refused));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM order_lines WHERE order_id = $1", IngestionStepFixture.Refused));
        Assert.Equal("failed", await app.ScalarAsync("SELECT outcome FROM webhook_deliveries WHERE delivery_id = $1", delivery));
    }
}
