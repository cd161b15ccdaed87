namespace PluginApp.StoreData;

// Row types for the normalized store data. Each carries its shop; the DbContext filters on it.
public interface IShopOwned { long ShopId { get; set; } }

public sealed class Shop
{
    public long Id { get; set; }
    public string Domain { get; set; } = "";
    public long? ShopifyShopId { get; set; }
    public string? AccessTokenEnc { get; set; }
    public DateTimeOffset? AccessTokenExpiresAt { get; set; }
    public string? RefreshTokenEnc { get; set; }
    public DateTimeOffset? RefreshTokenExpiresAt { get; set; }
    public string Scopes { get; set; } = "";
    public DateTimeOffset? InstalledAt { get; set; }
    public DateTimeOffset? UninstalledAt { get; set; }
    public DateTimeOffset? TokenRevokedAt { get; set; }
    public string? IanaTimezone { get; set; }
    public string? Currency { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public sealed class Customer : IShopOwned
{
    public long ShopId { get; set; }
    public long Id { get; set; }
    public string? Email { get; set; }
    public string? FirstName { get; set; }
    public string? LastName { get; set; }
    public string? Phone { get; set; }
    public string? State { get; set; }
    /// <summary>Null when no payload told them: webhooks carry a customer's tags no more since API version 2025-01.</summary>
    public string? Tags { get; set; }
    /// <summary>Null when no payload told it: webhooks carry it only in customers_email_marketing_consent/update since 2025-01.</summary>
    public bool? AcceptsMarketing { get; set; }
    /// <summary>When the consent was given or withdrawn, where a payload says so: it orders consents that come out of order.</summary>
    public DateTimeOffset? MarketingConsentAt { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }
    public DateTimeOffset? UpdatedAt { get; set; }
    public DateTimeOffset? RedactedAt { get; set; }
}

public sealed class Product : IShopOwned
{
    public long ShopId { get; set; }
    public long Id { get; set; }
    public string Title { get; set; } = "";
    public string? Handle { get; set; }
    public string? ProductType { get; set; }
    public string? Vendor { get; set; }
    public string? Status { get; set; }
    /// <summary>On the Online Store sales channel (false only when Shopify says it is not: <c>published_at</c> null).</summary>
    public bool Published { get; set; } = true;
    public string Tags { get; set; } = "";
    public string? ImageUrl { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }
    public DateTimeOffset? UpdatedAt { get; set; }
    public DateTimeOffset? DeletedAt { get; set; }
}

public sealed class Variant : IShopOwned
{
    public long ShopId { get; set; }
    public long Id { get; set; }
    public long ProductId { get; set; }
    public string? Title { get; set; }
    public string? Sku { get; set; }
    public decimal? Price { get; set; }
    public decimal? CompareAtPrice { get; set; }
    public int? InventoryQuantity { get; set; }
    /// <summary>Whether Shopify tracks the stock; null when the payload does not say (products webhooks since 2024-07).</summary>
    public bool? InventoryTracked { get; set; }
    public string? InventoryPolicy { get; set; }
    public long? InventoryItemId { get; set; }
    public decimal? UnitCost { get; set; }
    public DateTimeOffset? UpdatedAt { get; set; }
}

public sealed class Order : IShopOwned
{
    public long ShopId { get; set; }
    public long Id { get; set; }
    public string? Name { get; set; }
    public long? CustomerId { get; set; }
    public string? Email { get; set; }
    public string? Currency { get; set; }
    public decimal? TotalPrice { get; set; }
    public decimal? SubtotalPrice { get; set; }
    public decimal? TotalDiscounts { get; set; }
    public decimal? TotalTax { get; set; }
    /// <summary>Whether the order's prices include its tax (taxes_included): then its subtotal holds the tax too. Null when unknown.</summary>
    public bool? TaxesIncluded { get; set; }
    public string? FinancialStatus { get; set; }
    public string? FulfillmentStatus { get; set; }
    public DateTimeOffset? CancelledAt { get; set; }
    public string? CancelReason { get; set; }
    public string? CartToken { get; set; }
    public string? CheckoutToken { get; set; }
    public string? SourceName { get; set; }
    public string? BrowserIp { get; set; }
    public string? BillingCountry { get; set; }
    public string? ShippingCountry { get; set; }
    public string DiscountCodes { get; set; } = "";
    public string Tags { get; set; } = "";
    public bool Test { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }
    public DateTimeOffset? UpdatedAt { get; set; }
    public DateTimeOffset? ProcessedAt { get; set; }
    /// <summary>When the order was placed: processed, else created (<see cref="OrderTime"/>; an imported order is created on the import's day).</summary>
    public DateTimeOffset? PlacedAt => ProcessedAt ?? CreatedAt;
    /// <summary>The payment gateways, comma-separated (payment_gateway_names).</summary>
    public string? Gateway { get; set; }
    /// <summary>The card's address verification result code (one letter), where the payment gave one.</summary>
    public string? AvsResult { get; set; }
    /// <summary>The card's security code result (one letter), where the payment gave one.</summary>
    public string? CvvResult { get; set; }
    /// <summary>The card's issuer number (its first six digits), where the payment gave it.</summary>
    public string? CardBin { get; set; }
    /// <summary>The card's last four digits, where the payment gave them.</summary>
    public string? CardLast4 { get; set; }
}

public sealed class OrderLine : IShopOwned
{
    public long ShopId { get; set; }
    public long Id { get; set; }
    public long OrderId { get; set; }
    public long? ProductId { get; set; }
    public long? VariantId { get; set; }
    public string? Title { get; set; }
    public string? Sku { get; set; }
    public int Quantity { get; set; }
    public decimal? Price { get; set; }
    public decimal? TotalDiscount { get; set; }
}

public sealed class Refund : IShopOwned
{
    public long ShopId { get; set; }
    public long Id { get; set; }
    public long OrderId { get; set; }
    public string? Note { get; set; }
    public decimal? Amount { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }
    /// <summary>When the refund was made: an imported one is created on the import's day (<see cref="OrderTime"/>).</summary>
    public DateTimeOffset? ProcessedAt { get; set; }
}

public sealed class RefundLine : IShopOwned
{
    public long ShopId { get; set; }
    public long? Id { get; set; }
    public long RefundId { get; set; }
    public long OrderId { get; set; }
    public long LineItemId { get; set; }
    public int Quantity { get; set; }
    public decimal? Subtotal { get; set; }
    /// <summary>The tax the refunded line gave back; in an order whose prices include tax, its subtotal holds it.</summary>
    public decimal? TotalTax { get; set; }
    public string? RestockType { get; set; }
}

public sealed class Cart : IShopOwned
{
    public long ShopId { get; set; }
    public string Token { get; set; } = "";
    public string? Note { get; set; }
    public decimal? TotalPrice { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }
    public DateTimeOffset? UpdatedAt { get; set; }
}

public sealed class CartLine : IShopOwned
{
    public long ShopId { get; set; }
    public string CartToken { get; set; } = "";
    public string LineKey { get; set; } = "";
    public long? ProductId { get; set; }
    public long? VariantId { get; set; }
    public int Quantity { get; set; }
    public decimal? Price { get; set; }
}

public sealed class Checkout : IShopOwned
{
    public long ShopId { get; set; }
    /// <summary>The checkout's key: Shopify's webhooks carry no checkout id since API version 2026-04, and orders name it by token.</summary>
    public string Token { get; set; } = "";
    public string? CartToken { get; set; }
    public long? CustomerId { get; set; }
    public string? Email { get; set; }
    public string? Currency { get; set; }
    public decimal? TotalPrice { get; set; }
    public decimal? SubtotalPrice { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }
    public DateTimeOffset? UpdatedAt { get; set; }
}

public sealed class CheckoutLine : IShopOwned
{
    public long ShopId { get; set; }
    public string CheckoutToken { get; set; } = "";
    public string LineKey { get; set; } = "";
    public long? ProductId { get; set; }
    public long? VariantId { get; set; }
    public int Quantity { get; set; }
    public decimal? Price { get; set; }
}

public sealed class WebhookDelivery
{
    public long Id { get; set; }
    public string DeliveryId { get; set; } = "";
    public string ShopDomain { get; set; } = "";
    public long? ShopId { get; set; }
    public string Topic { get; set; } = "";
    public string? ApiVersion { get; set; }
    public string? EventId { get; set; }
    public DateTimeOffset? TriggeredAt { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }
    public string Outcome { get; set; } = "";
    public string Body { get; set; } = "";
}

public sealed class CustomerDataRequest : IShopOwned
{
    public long Id { get; set; }
    public long ShopId { get; set; }
    public long CustomerId { get; set; }
    public long? DataRequestId { get; set; }
    public DateTimeOffset RequestedAt { get; set; }
    public string Export { get; set; } = "";
}
