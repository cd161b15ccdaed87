using System.Globalization;
using System.Text.Json.Nodes;
using StoreReplay;

namespace PluginApp.Tests.Infrastructure;

/// <summary>
/// The tests' webhook bodies: fixed defaults (Ada Lovelace's store, in USD) over <see cref="ShopifyShapes"/>, which
/// decides every field's shape. Tests assert on these values (line ids id*100+i, products 9000+i, variants 19000+i,
/// quantities i+1), so they change only with the tests.
/// </summary>
public static class ShopifyPayloads
{
    private const string Currency = "USD";
    private const string Email = "ada@example.com";
    private const string Phone = "+15555550100";
    private const string CustomerUpdatedAt = "2026-07-01T10:00:00-04:00";

    public static JsonObject Customer(long id, string email = Email, string updatedAt = CustomerUpdatedAt) =>
        ShopifyShapes.Customer(Ada(id, email, updatedAt));

    /// <summary>customers_email_marketing_consent/update for Ada: <paramref name="state"/> ("subscribed", "unsubscribed", ...) since <paramref name="at"/> (null: no time).</summary>
    public static JsonObject Consent(long customerId, string state, string? at) =>
        ShopifyShapes.MarketingConsent(Ada(customerId) with { MarketingState = state, MarketingConsentUpdatedAt = at is null ? null : At(at) });

    public static JsonObject Address(string country = "US") => ShopifyShapes.Address(AdaAddress(country));

    public static JsonObject Order(long id, long? customerId = 7001, int lines = 2, string updatedAt = "2026-07-02T12:00:00-04:00",
        string financialStatus = "paid", string? cancelledAt = null) => ShopifyShapes.Order(new ShopifyOrder
    {
        Id = id,
        Number = id % 100000,
        Token = $"tok{id}",
        CartToken = $"cart{id}",
        CheckoutToken = $"chk{id}",
        Email = Email,
        CreatedAt = At("2026-07-02T11:59:00-04:00"),
        UpdatedAt = At(updatedAt),
        CancelledAt = cancelledAt is null ? null : At(cancelledAt),
        CancelReason = cancelledAt is null ? null : "customer",
        FinancialStatus = financialStatus,
        Currency = Currency,
        Client = new ShopifyClientDetails { BrowserIp = "203.0.113.7", AcceptLanguage = "en-US" },
        Customer = customerId is { } c ? Ada(c) : null,
        BillingAddress = AdaAddress("US"),
        ShippingAddress = AdaAddress("CA"),
        DiscountCodes = [new ShopifyDiscountCode { Code = "WELCOME10" }],
        ShippingLines = [Standard],
        Lines = Enumerable.Range(0, lines).Select(i => new ShopifyLine
        {
            Id = id * 100 + i,
            ProductId = 9000 + i,
            VariantId = 19000 + i,
            Title = $"Product {i}",
            VariantTitle = "Default",
            Sku = $"SKU-{i}",
            Vendor = "Acme",
            Quantity = i + 1,
            Price = 10m + i * 5m,
            Grams = 200,
        }).ToList(),
    });

    public static JsonObject Refund(long id, long orderId, long lineItemId, int quantity = 1) => ShopifyShapes.Refund(new ShopifyRefund
    {
        Id = id,
        OrderId = orderId,
        CreatedAt = At("2026-07-05T09:00:00-04:00"),
        Note = "Damaged",
        Currency = Currency,
        Lines = [new ShopifyRefundLine { Id = id * 10, LineItemId = lineItemId, Quantity = quantity, Subtotal = 10m, LocationId = 1 }],
        Transactions = [new ShopifyTransaction { Id = id * 100, Amount = 10m }],
    });

    public static JsonObject Product(long id, int variants = 2, string updatedAt = "2026-07-01T08:00:00-04:00", int inventory = 5)
    {
        var created = At("2026-05-01T08:00:00-04:00");
        var updated = At(updatedAt);
        return ShopifyShapes.Product(new ShopifyProduct
        {
            Id = id,
            Title = $"Mug {id}",
            BodyHtml = "<p>A mug</p>",
            Vendor = "Acme",
            ProductType = "Mugs",
            Handle = $"mug-{id}",
            Tags = "kitchen",
            CreatedAt = created,
            UpdatedAt = updated,
            PublishedAt = created,
            Images = [$"https://cdn.example.com/{id}.jpg"],
            Variants = Enumerable.Range(0, variants).Select(i => new ShopifyVariant
            {
                Id = id * 10 + i,
                Title = $"Size {i}",
                Price = 12m + i,
                Sku = $"MUG-{id}-{i}",
                Position = i + 1,
                InventoryItemId = id * 100 + i,
                InventoryQuantity = inventory,
                CreatedAt = created,
                UpdatedAt = updated,
            }).ToList(),
        });
    }

    public static JsonObject Cart(string token, string updatedAt = "2026-07-02T10:00:00-04:00", params (long Variant, int Qty)[] lines) =>
        ShopifyShapes.Cart(new ShopifyCart
        {
            Token = token,
            CreatedAt = At("2026-07-02T09:55:00-04:00"),
            UpdatedAt = At(updatedAt),
            Lines = lines.Select(l => new ShopifyCartLine
            {
                Key = $"{l.Variant}:abc{l.Variant}", ProductId = l.Variant / 10, VariantId = l.Variant, Title = "Mug", Quantity = l.Qty, Price = 12m,
            }).ToList(),
        });

    /// <summary>A checkout as the pinned API version sends it: no id of its own (removed in 2026-04), its token <c>ck{n}</c>.</summary>
    public static JsonObject Checkout(long n, long? customerId, string? completedAt = null) => ShopifyShapes.Checkout(new ShopifyCheckout
    {
        Token = $"ck{n}",
        CartToken = $"cart-{n}",
        Email = Email,
        CreatedAt = At("2026-07-02T10:00:00-04:00"),
        UpdatedAt = At("2026-07-02T10:05:00-04:00"),
        CompletedAt = completedAt is null ? null : At(completedAt),
        Currency = Currency,
        Customer = customerId is { } c ? Ada(c) : null,
        BillingAddress = AdaAddress("US"),
        ShippingAddress = AdaAddress("US"),
        ShippingLines = [Standard],
        Lines = [new ShopifyCheckoutLine { Key = "k1", ProductId = 9000, VariantId = 19000, Sku = "SKU-0", Title = "Product 0", Quantity = 2, Price = 12m }],
    });

    private static readonly ShopifyShippingLine Standard = new() { Id = 1, Title = "Standard", Price = 5m };

    private static ShopifyCustomer Ada(long id, string email = Email, string updatedAt = CustomerUpdatedAt) => new()
    {
        Id = id,
        Email = email,
        FirstName = "Ada",
        LastName = "Lovelace",
        Phone = Phone,
        Tags = "vip, newsletter",
        Currency = Currency,
        CreatedAt = At("2026-06-01T10:00:00-04:00"),
        UpdatedAt = At(updatedAt),
        MarketingState = "subscribed",
        DefaultAddress = AdaAddress("US"),
    };

    // Why "United States" whatever the code: the tests read only country_code, and its values have always been so.
    private static ShopifyAddress AdaAddress(string countryCode) => new()
    {
        FirstName = "Ada", LastName = "Lovelace", Address1 = "12 Analytical Row", City = "Springfield", Province = "Illinois",
        ProvinceCode = "IL", Country = "United States", CountryCode = countryCode, Zip = "62701", Phone = Phone,
    };

    /// <summary>Tests pass times as ISO-8601 strings; ShopifyShapes writes them back with an offset, so "Z" becomes "+00:00".</summary>
    private static DateTimeOffset At(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
