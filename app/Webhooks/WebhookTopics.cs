using System.Collections.Frozen;
using System.Text.Json;
using PluginApp.Compliance;
using PluginApp.StoreData;

namespace PluginApp.Webhooks;

/// <summary>
/// What one topic does to our tables. Parse runs before any database work and throws on a malformed
/// payload; Write adds the topic's statements to the delivery's batch. Features add steps to a core topic as
/// <see cref="IngestionStep"/>s, and topics of their own with <see cref="WebhookTopicExtensions.AddWebhookTopic{TRows}"/>.
/// </summary>
internal sealed record TopicHandler(Func<JsonElement, object> Parse, Action<TopicContext, object> Write, bool ActsOnUninstalledShop = false,
    Func<object, OwnedIds>? Owned = null);

/// <summary>
/// The Shopify ids a delivery's own resource carries (a cart's or a checkout's is its token). Shopify's ids and tokens are
/// unique across shops, so one already stored under another shop means the signed body was replayed naming the wrong shop.
/// </summary>
internal sealed record OwnedIds(long[] Orders, long[] Customers, long[] Products, string[] CheckoutTokens, string[] CartTokens)
{
    public static readonly OwnedIds None = new([], [], [], [], []);
}

internal sealed record TopicContext(StoreWriter Store, ComplianceService Compliance, string Shop, DateTimeOffset Now);

internal static class WebhookTopics
{
    public const string AppUninstalled = "app/uninstalled";
    public const string ShopRedact = "shop/redact";
    /// <summary>Where a customer's email consent comes from (customer payloads lost it in API version 2025-01).</summary>
    public const string ConsentTopic = "customers_email_marketing_consent/update";

    private static readonly TopicHandler Order = new(p => OrderPayloads.Order(p), (c, r) => c.Store.AddOrder((OrderRows)r, Experiments.Assignment.VisitorHash(c.Shop, ((OrderRows)r).VisitorId), c.Now),
        Owned: r => OwnedIds.None with { Orders = [((OrderRows)r).Order.Id] });
    private static readonly TopicHandler Product = new(p => CatalogPayloads.Product(p), (c, r) => c.Store.AddProduct((ProductRows)r),
        Owned: r => OwnedIds.None with { Products = [((ProductRows)r).Product.Id] });
    private static readonly TopicHandler Customer = new(p => CustomerPayloads.Customer(p), (c, r) => c.Store.AddCustomer((StoreData.Customer)r),
        Owned: r => OwnedIds.None with { Customers = [((StoreData.Customer)r).Id] });
    private static readonly TopicHandler Cart = new(p => CatalogPayloads.Cart(p), (c, r) => c.Store.AddCart((CartRows)r),
        Owned: r => OwnedIds.None with { CartTokens = [((CartRows)r).Cart.Token] });
    private static readonly TopicHandler Checkout = new(p => CatalogPayloads.Checkout(p), (c, r) => c.Store.AddCheckout((CheckoutRows)r),
        Owned: r => OwnedIds.None with { CheckoutTokens = [((CheckoutRows)r).Checkout.Token] });

    private static readonly TopicHandler InventoryItem = new(p => InventoryItemRow.Parse(p), (c, r) => c.Store.AddInventoryItem((InventoryItemRow)r));

    /// <summary>
    /// The core store topics; app/uninstalled and shop/redact act on the shop row (see WebhookIngestor). A feature's own topics
    /// join these in <see cref="WebhookTopicTable"/>.
    /// </summary>
    public static readonly FrozenDictionary<string, TopicHandler> Core = new Dictionary<string, TopicHandler>
    {
        ["orders/create"] = Order,
        ["orders/updated"] = Order,
        ["orders/paid"] = Order,
        ["orders/cancelled"] = Order,
        // The order and what hangs on it leave the store (features drop their own rows in steps on OrderDeletion); a later
        // delivery of it writes nothing (WebhookIngestor's record: order_deleted).
        ["orders/delete"] = new(p => OrderPayloads.Deletion(p), (c, r) => c.Store.AddOrderDeletion(((OrderDeletion)r).Id, c.Now),
            Owned: r => OwnedIds.None with { Orders = [((OrderDeletion)r).Id] }),
        ["refunds/create"] = new(p => OrderPayloads.Refund(p), (c, r) => c.Store.AddRefund((RefundRows)r),
            Owned: r => OwnedIds.None with { Orders = [((RefundRows)r).Refund.OrderId] }),
        // The order's card (order webhooks carry no payment details); a body replayed for another shop whose order is not
        // held yet keeps a card that no order of that shop ever takes, and that is deleted within a week.
        ["order_transactions/create"] = new(p => OrderPayloads.Transaction(p), (c, r) => c.Store.AddOrderCard((OrderTransactionRows)r, c.Now),
            Owned: r => OwnedIds.None with { Orders = [((OrderTransactionRows)r).OrderId] }),
        ["carts/create"] = Cart,
        ["carts/update"] = Cart,
        ["checkouts/create"] = Checkout,
        ["checkouts/update"] = Checkout,
        ["products/create"] = Product,
        ["products/update"] = Product,
        ["products/delete"] = new(p => new ProductDeletion(p.RequiredId("id")), (c, r) => c.Store.AddProductDeletion(((ProductDeletion)r).Id, c.Now),
            Owned: r => OwnedIds.None with { Products = [((ProductDeletion)r).Id] }),
        ["inventory_items/create"] = InventoryItem,
        ["inventory_items/update"] = InventoryItem,
        ["customers/create"] = Customer,
        ["customers/update"] = Customer,
        ["customers/delete"] = new(p => CustomerPayloads.Deletion(p), (c, r) => c.Store.AddCustomerDeletion(((CustomerDeletion)r).Id, c.Now),
            Owned: r => OwnedIds.None with { Customers = [((CustomerDeletion)r).Id] }),
        [ConsentTopic] = new(p => CustomerPayloads.Consent(p), (c, r) => c.Store.AddMarketingConsent((MarketingConsent)r, c.Now),
            Owned: r => OwnedIds.None with { Customers = [((MarketingConsent)r).CustomerId] }),
        ["customers/data_request"] = new(Compliance("customers/data_request"), (c, r) => c.Compliance.AddDataRequest((JsonElement)r, c.Now), ActsOnUninstalledShop: true),
        ["customers/redact"] = new(Compliance("customers/redact"), (c, r) => c.Compliance.AddCustomerRedaction((JsonElement)r, c.Now), ActsOnUninstalledShop: true),
    }.ToFrozenDictionary();

    private static Func<JsonElement, object> Compliance(string topic) => p =>
    {
        ComplianceService.Validate(topic, p);
        return p.Clone();
    };
}

/// <summary>A topic a feature handles, registered with <see cref="WebhookTopicExtensions.AddWebhookTopic{TRows}"/>.</summary>
internal sealed record WebhookTopicRegistration(string Topic, TopicHandler Handler);

/// <summary>
/// Every topic the app handles: the core store topics and those features registered, collected once at start. A topic
/// handled twice, or one that would take over app/uninstalled or shop/redact, stops the app from starting.
/// </summary>
internal sealed class WebhookTopicTable
{
    public FrozenDictionary<string, TopicHandler> Handlers { get; }

    public WebhookTopicTable(IEnumerable<WebhookTopicRegistration> registered)
    {
        var all = new Dictionary<string, TopicHandler>(WebhookTopics.Core);
        foreach (var r in registered)
        {
            if (r.Topic is WebhookTopics.AppUninstalled or WebhookTopics.ShopRedact || !all.TryAdd(r.Topic, r.Handler))
                throw new InvalidOperationException($"The webhook topic {r.Topic} is already handled; a topic has exactly one handler.");
        }
        Handlers = all.ToFrozenDictionary();
    }

    /// <summary>Every topic shopify.app.toml must subscribe to: the handled ones and the two that act on the shop row.</summary>
    public IEnumerable<string> Subscribed => Handlers.Keys.Append(WebhookTopics.AppUninstalled).Append(WebhookTopics.ShopRedact);
}

internal static class WebhookTopicExtensions
{
    /// <summary>
    /// Adds a topic the core does not handle. The route's checks are the same for it as for every topic: the HMAC before
    /// anything is parsed, the shop binding, once per delivery id, and <paramref name="owned"/> ids already held for another
    /// shop refuse the delivery (a signed body replayed naming another shop acts on nothing). <paramref name="write"/> adds
    /// statements to the delivery's own transaction; it must do no I/O.
    /// </summary>
    public static IServiceCollection AddWebhookTopic<TRows>(this IServiceCollection services, string topic, Func<JsonElement, TRows> parse,
        Action<TopicContext, TRows> write, Func<TRows, OwnedIds>? owned = null) where TRows : class =>
        services.AddSingleton(new WebhookTopicRegistration(topic, new TopicHandler(p => parse(p), (c, r) => write(c, (TRows)r),
            Owned: owned is null ? null : r => owned((TRows)r))));
}
