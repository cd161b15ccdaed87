using System.Collections.Frozen;
using System.Text.Json;
using PluginApp.Compliance;
using PluginApp.Store;
using PluginApp.Webhooks.Payloads;

namespace PluginApp.Webhooks;

/// <summary>What one topic does to our tables. Parse runs before any database work; Apply inside the delivery's transaction.</summary>
internal sealed record TopicHandler(
    Func<JsonElement, object> Parse,
    Func<TopicContext, object, Task> Apply,
    bool RunsForUninstalledShop = false);

internal sealed record TopicContext(StoreWriter Store, ComplianceService Compliance, DateTimeOffset Now, CancellationToken Ct);

internal static class WebhookTopics
{
    public const string AppUninstalled = "app/uninstalled";
    public const string ShopRedact = "shop/redact";

    private static readonly TopicHandler Order = new(p => OrderPayloads.Order(p), (c, r) => c.Store.WriteOrderAsync((OrderRows)r, c.Ct));
    private static readonly TopicHandler Product = new(p => CatalogPayloads.Product(p), (c, r) => c.Store.WriteProductAsync((ProductRows)r, c.Ct));
    private static readonly TopicHandler Customer = new(p => CustomerPayloads.Customer(p), (c, r) => c.Store.WriteCustomerAsync((Data.Customer)r, c.Ct));
    private static readonly TopicHandler Cart = new(p => CatalogPayloads.Cart(p), (c, r) => c.Store.WriteCartAsync((CartRows)r, c.Ct));
    private static readonly TopicHandler Checkout = new(p => CatalogPayloads.Checkout(p), (c, r) => c.Store.WriteCheckoutAsync((CheckoutRows)r, c.Ct));

    /// <summary>Every topic shopify.app.toml subscribes to. app/uninstalled and shop/redact act on the shop row itself (see WebhookIngestor).</summary>
    public static readonly FrozenDictionary<string, TopicHandler> Handlers = new Dictionary<string, TopicHandler>
    {
        ["orders/create"] = Order,
        ["orders/updated"] = Order,
        ["orders/paid"] = Order,
        ["orders/cancelled"] = Order,
        ["refunds/create"] = new(p => OrderPayloads.Refund(p), (c, r) => c.Store.WriteRefundAsync((RefundRows)r, c.Ct)),
        ["carts/create"] = Cart,
        ["carts/update"] = Cart,
        ["checkouts/create"] = Checkout,
        ["checkouts/update"] = Checkout,
        ["products/create"] = Product,
        ["products/update"] = Product,
        ["products/delete"] = new(p => p.RequiredId("id"), (c, r) => c.Store.DeleteProductAsync((long)r, c.Now, c.Ct)),
        ["customers/create"] = Customer,
        ["customers/update"] = Customer,
        ["customers/data_request"] = new(p => p.Clone(), (c, r) => c.Compliance.RecordDataRequestAsync((JsonElement)r, c.Now, c.Ct), RunsForUninstalledShop: true),
        ["customers/redact"] = new(p => p.Clone(), (c, r) => c.Compliance.RedactCustomerAsync((JsonElement)r, c.Now, c.Ct), RunsForUninstalledShop: true),
    }.ToFrozenDictionary();

    /// <summary>Validates compliance payloads before any write, like every other topic's Parse.</summary>
    public static void CheckCompliancePayload(string topic, JsonElement root)
    {
        if (topic is "customers/data_request" or "customers/redact")
        {
            _ = root.OptionalObject("customer")?.RequiredId("id") ?? throw new MalformedPayloadException("'customer.id' is missing");
            foreach (var list in new[] { "orders_requested", "orders_to_redact" })
                foreach (var o in root.OptionalArray(list))
                    if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out _))
                        throw new MalformedPayloadException($"'{list}' holds a value that is not an order id");
        }
    }
}
