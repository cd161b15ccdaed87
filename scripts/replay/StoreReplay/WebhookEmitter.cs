using System.Globalization;

namespace StoreReplay;

/// <summary>One webhook as Shopify would deliver it. Deliveries with the same PartitionKey must arrive in order.</summary>
public sealed record Delivery(string Topic, string DeliveryId, string PartitionKey, DateTimeOffset TriggeredAt, byte[] Body, int Lines);

/// <summary>
/// A store as the time-ordered webhooks Shopify would send: the catalog (products/create) first, then
/// customers/create, then carts/*, checkouts/*, orders/create, orders/paid and refunds/create interleaved
/// by event time. Bodies are built lazily, one at a time, so a large store streams.
/// </summary>
public static class WebhookEmitter
{
    private enum Kind { CartCreate, CartUpdate, CheckoutCreate, CheckoutUpdate, OrderCreate, OrderPaid, Refund }

    private readonly record struct Event(DateTimeOffset At, int Seq, Kind Kind, object Subject);

    public static IEnumerable<Delivery> Emit(ReplayStore store)
    {
        var seed = store.Seed;
        foreach (var p in store.Products)
            yield return Make(seed, "products/create", Id(p.Id), $"product:{Id(p.Id)}", p.CreatedAt, CatalogBodies.Product(p));
        foreach (var c in store.Customers)
        {
            yield return Make(seed, "customers/create", Id(c.Id), $"customer:{Id(c.Id)}", c.CreatedAt,
                CatalogBodies.Customer(c, store.Currency));
            // Her consent comes by a topic of its own (a customer's payload carries none since API version 2025-01).
            if (store.Subscribed(c))
                yield return Make(seed, "customers_email_marketing_consent/update", Id(c.Id), $"customer:{Id(c.Id)}", c.CreatedAt,
                    CatalogBodies.SubscribedConsent(c, store.Currency));
        }
        foreach (var e in Timeline(store))
            yield return Deliver(store, e);
    }

    /// <summary>Ties in time keep the order events were added: a session's steps, then its order, then refunds.</summary>
    private static List<Event> Timeline(ReplayStore store)
    {
        var events = new List<Event>(store.Orders.Count * 2 + store.Sessions.Count * 4 + store.Refunds.Count);
        void Add(DateTimeOffset at, Kind kind, object subject) => events.Add(new Event(at, events.Count, kind, subject));
        foreach (var s in store.Sessions)
        {
            Add(s.CartCreatedAt, Kind.CartCreate, s);
            Add(s.CartUpdatedAt, Kind.CartUpdate, s);
            if (s.CheckoutCreatedAt is { } created) Add(created, Kind.CheckoutCreate, s);
            if (s.CheckoutUpdatedAt is { } updated) Add(updated, Kind.CheckoutUpdate, s);
        }
        foreach (var o in store.Orders)
        {
            Add(o.CreatedAt, Kind.OrderCreate, o);
            Add(PaidAt(o), Kind.OrderPaid, o);
        }
        foreach (var r in store.Refunds) Add(r.CreatedAt, Kind.Refund, r);
        events.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Seq.CompareTo(b.Seq));
        return events;
    }

    // Why a second later: orders/paid is a newer version of the order, so its updated_at must be later.
    private static DateTimeOffset PaidAt(ReplayOrder o) => o.CreatedAt.AddSeconds(1);

    private static Delivery Deliver(ReplayStore store, Event e)
    {
        var seed = store.Seed;
        switch (e.Kind)
        {
            case Kind.OrderCreate or Kind.OrderPaid:
            {
                var o = (ReplayOrder)e.Subject;
                var topic = e.Kind == Kind.OrderCreate ? "orders/create" : "orders/paid";
                return Make(seed, topic, Id(o.Id), OrderPartition(o.Id), e.At, OrderBodies.Order(o, store.Currency, seed, e.At), o.Lines.Count);
            }
            case Kind.Refund:
            {
                var r = (ReplayRefund)e.Subject;
                return Make(seed, "refunds/create", Id(r.Id), OrderPartition(r.Order.Id), e.At, OrderBodies.Refund(r, store.Currency));
            }
            default:
            {
                var s = (ReplaySession)e.Subject;
                // A completed session travels with its order; an abandoned one on its own.
                var partition = s.Order is { } o ? OrderPartition(o.Id) : "cart:" + s.CartToken;
                return e.Kind switch
                {
                    Kind.CartCreate => Make(seed, "carts/create", s.CartToken, partition, e.At, SessionBodies.Cart(s, s.FirstCartLines, e.At)),
                    Kind.CartUpdate => Make(seed, "carts/update", s.CartToken, partition, e.At, SessionBodies.Cart(s, s.Lines, e.At)),
                    Kind.CheckoutCreate => Make(seed, "checkouts/create", s.CheckoutToken, partition, e.At,
                        SessionBodies.Checkout(s, store.Currency, e.At, null)),
                    _ => Make(seed, "checkouts/update", s.CheckoutToken, partition, e.At,
                        SessionBodies.Checkout(s, store.Currency, e.At, s.Abandoned ? null : e.At)),
                };
            }
        }
    }

    private static string OrderPartition(long orderId) => "order:" + Id(orderId);

    private static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// orders/create for a storefront shopper's order placed at <paramref name="at"/> (not the data set's time), carrying
    /// the shopper's visitor id in the cart attribute the theme block writes.
    /// </summary>
    /// <param name="attributes">More cart attributes the blocks wrote (e.g. the cart offer's arm and action), carried as note_attributes.</param>
    /// <param name="discount">A discount code applied at checkout and its amount (counted in total_discounts).</param>
    public static Delivery ShopperOrder(ReplayStore store, ReplayOrder o, DateTimeOffset at, string visitorId,
        IReadOnlyList<ShopifyAttribute>? attributes = null, ShopifyDiscountCode? discount = null, string? cartToken = null)
    {
        var shape = OrderBodies.Shape(o, store.Currency, store.Seed, at) with
        {
            CreatedAt = at, NoteAttributes = [new ShopifyAttribute("_pluginapp_visitor", visitorId), .. attributes ?? []],
            DiscountCodes = discount is null ? [] : [discount],
        };
        if (cartToken is not null) shape = shape with { CartToken = cartToken };
        return Make(store.Seed, "orders/create", Id(o.Id), OrderPartition(o.Id), at, ShopifyShapes.Utf8(ShopifyShapes.Order(shape)), o.Lines.Count);
    }

    /// <summary>orders/cancelled for an order the merchant cancelled as fraud at <paramref name="cancelledAt"/>: the label path Shopify offers.</summary>
    public static Delivery FraudCancellation(ReplayStore store, ReplayOrder o, DateTimeOffset cancelledAt)
    {
        var shape = OrderBodies.Shape(o, store.Currency, store.Seed, cancelledAt) with { CancelledAt = cancelledAt, CancelReason = "fraud" };
        return Make(store.Seed, "orders/cancelled", Id(o.Id), OrderPartition(o.Id), cancelledAt, ShopifyShapes.Utf8(ShopifyShapes.Order(shape)), o.Lines.Count);
    }

    private static Delivery Make(int seed, string topic, string resourceKey, string partition, DateTimeOffset at, byte[] body, int lines = 0) =>
        new(topic, Determinism.DeliveryId(seed, topic, resourceKey), partition, at, body, lines);
}
