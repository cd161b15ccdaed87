using System.Text.Json;
using PluginApp.Data;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.StoreData;

/// <summary>
/// GraphQL bulk-result objects to the same rows webhooks produce, so both paths meet in the same upserts.
/// GraphQL enums (PAID, ACTIVE) become the REST spellings (paid, active) the webhook rows carry.
/// </summary>
internal static class BulkRecords
{
    public static Product Product(JsonElement p) => new()
    {
        Id = Gid.Id(p.RequiredString("id")),
        Title = p.OptionalString("title") ?? "",
        Handle = p.OptionalString("handle"),
        ProductType = p.OptionalString("productType"),
        Vendor = p.OptionalString("vendor"),
        Status = Lower(p.OptionalString("status")),
        Tags = Tags(p),
        ImageUrl = p.OptionalObject("featuredImage")?.OptionalString("url"),
        CreatedAt = p.OptionalTime("createdAt"),
        UpdatedAt = p.OptionalTime("updatedAt"),
    };

    public static Variant Variant(JsonElement v, long productId) => new()
    {
        Id = Gid.Id(v.RequiredString("id")),
        ProductId = productId,
        Title = v.OptionalString("title"),
        Sku = v.OptionalString("sku"),
        Price = v.OptionalMoney("price"),
        CompareAtPrice = v.OptionalMoney("compareAtPrice"),
        InventoryQuantity = v.OptionalInt("inventoryQuantity"),
        InventoryPolicy = Lower(v.OptionalString("inventoryPolicy")),
        InventoryItemId = v.OptionalObject("inventoryItem")?.OptionalString("id") is { } item ? Gid.Id(item) : null,
        UnitCost = v.OptionalObject("inventoryItem")?.OptionalObject("unitCost")?.OptionalMoney("amount"),
        UpdatedAt = v.OptionalTime("updatedAt"),
    };

    public static Customer Customer(JsonElement c) => new()
    {
        Id = Gid.Id(c.RequiredString("id")),
        Email = c.OptionalString("email"),
        FirstName = c.OptionalString("firstName"),
        LastName = c.OptionalString("lastName"),
        Phone = c.OptionalString("phone"),
        State = Lower(c.OptionalString("state")),
        Tags = Tags(c),
        AcceptsMarketing = c.OptionalObject("emailMarketingConsent")?.OptionalString("marketingState") is { } s ? s == "SUBSCRIBED" : null,
        CreatedAt = c.OptionalTime("createdAt"),
        UpdatedAt = c.OptionalTime("updatedAt"),
    };

    public static (Order Order, List<RefundRows> Refunds) Order(JsonElement o)
    {
        // The card of the first successful sale or authorization (paymentDetails is a union; only CardPaymentDetails has these).
        var card = o.OptionalArray("transactions")
            .Where(t => t.OptionalString("kind") is "SALE" or "AUTHORIZATION" && t.OptionalString("status") is null or "SUCCESS")
            .Select(t => t.OptionalObject("paymentDetails")).FirstOrDefault(d => d is not null);
        var order = new Order
        {
            Id = Gid.Id(o.RequiredString("id")),
            Name = o.OptionalString("name"),
            CustomerId = o.OptionalObject("customer")?.OptionalString("id") is { } c ? Gid.Id(c) : null,
            Email = o.OptionalString("email"),
            Currency = o.OptionalString("currencyCode"),
            TotalPrice = Money(o, "totalPriceSet"),
            SubtotalPrice = Money(o, "subtotalPriceSet"),
            TotalDiscounts = Money(o, "totalDiscountsSet"),
            TotalTax = Money(o, "totalTaxSet"),
            FinancialStatus = Lower(o.OptionalString("displayFinancialStatus")),
            FulfillmentStatus = o.OptionalString("displayFulfillmentStatus") is "UNFULFILLED" or null ? null : Lower(o.OptionalString("displayFulfillmentStatus")),
            CancelledAt = o.OptionalTime("cancelledAt"),
            CancelReason = Lower(o.OptionalString("cancelReason")),
            SourceName = o.OptionalString("sourceName"),
            BrowserIp = o.OptionalString("clientIp"),
            BillingCountry = o.OptionalObject("billingAddress")?.OptionalString("countryCodeV2"),
            ShippingCountry = o.OptionalObject("shippingAddress")?.OptionalString("countryCodeV2"),
            DiscountCodes = string.Join(',', o.OptionalArray("discountCodes").Select(d => d.GetString())),
            Tags = Tags(o),
            Test = o.OptionalBool("test") ?? false,
            CreatedAt = o.OptionalTime("createdAt"),
            UpdatedAt = o.OptionalTime("updatedAt"),
            ProcessedAt = o.OptionalTime("processedAt"),
            Gateway = o.OptionalArray("paymentGatewayNames").Select(g => g.GetString()).OfType<string>().ToList() is { Count: > 0 } gateways
                ? string.Join(',', gateways) : null,
            AvsResult = card?.OptionalString("avsResultCode"),
            CvvResult = card?.OptionalString("cvvResultCode"),
            CardBin = card?.OptionalString("bin"),
            CardLast4 = OrderPayloads.LastFour(card?.OptionalString("number")),
        };
        var refunds = o.OptionalArray("refunds").Select(r =>
        {
            var refundId = Gid.Id(r.RequiredString("id"));
            var lines = (r.OptionalObject("refundLineItems")?.OptionalArray("nodes") ?? []).Select(l => new RefundLine
            {
                Id = l.OptionalString("id") is { } lid ? Gid.Id(lid) : null,
                RefundId = refundId,
                OrderId = order.Id,
                LineItemId = Gid.Id(l.OptionalObject("lineItem")?.RequiredString("id") ?? throw new MalformedPayloadException("refund line without lineItem")),
                Quantity = l.RequiredInt("quantity"),
                Subtotal = Money(l, "subtotalSet"),
                RestockType = Lower(l.OptionalString("restockType")),
            }).ToList();
            return new RefundRows(new Refund
            {
                Id = refundId, OrderId = order.Id, Note = r.OptionalString("note"), CreatedAt = r.OptionalTime("createdAt"),
                Amount = Money(r, "totalRefundedSet"),
            }, lines);
        }).ToList();
        return (order, refunds);
    }

    public static OrderLine OrderLine(JsonElement l, long orderId) => new()
    {
        Id = Gid.Id(l.RequiredString("id")),
        OrderId = orderId,
        ProductId = l.OptionalObject("product")?.OptionalString("id") is { } p ? Gid.Id(p) : null,
        VariantId = l.OptionalObject("variant")?.OptionalString("id") is { } v ? Gid.Id(v) : null,
        Title = l.OptionalString("title"),
        Sku = l.OptionalString("sku"),
        Quantity = l.RequiredInt("quantity"),
        Price = Money(l, "originalUnitPriceSet"),
        TotalDiscount = Money(l, "totalDiscountSet"),
    };

    private static decimal? Money(JsonElement e, string set) => e.OptionalObject(set)?.OptionalObject("shopMoney")?.OptionalMoney("amount");

    private static string? Lower(string? s) => s?.ToLowerInvariant();

    private static string Tags(JsonElement e) =>
        e.TryGetProperty("tags", out var t) && t.ValueKind == JsonValueKind.Array
            ? string.Join(", ", t.EnumerateArray().Select(x => x.GetString()))
            : e.OptionalString("tags") ?? "";
}
