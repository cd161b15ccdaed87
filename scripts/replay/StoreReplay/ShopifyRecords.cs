namespace StoreReplay;

// What ShopifyShapes turns into webhook payloads. Each record holds only the values a caller chooses; everything
// Shopify derives from them (names, totals, money bags, GIDs) is left to ShopifyShapes, so it is decided once.
// Defaults are what a plain online-store order carries.

/// <summary>A postal address. The replay's data sets hold only a country, so every other field may be null.</summary>
public sealed record ShopifyAddress
{
    public string? FirstName { get; init; }
    public string? LastName { get; init; }
    public string? Company { get; init; }
    public string? Address1 { get; init; }
    public string? Address2 { get; init; }
    public string? City { get; init; }
    public string? Province { get; init; }
    public string? ProvinceCode { get; init; }
    public string? Country { get; init; }
    public required string CountryCode { get; init; }
    public string? Zip { get; init; }
    public string? Phone { get; init; }
}

/// <summary>A customer as customers/* sends it and as orders and checkouts embed it.</summary>
public sealed record ShopifyCustomer
{
    public required long Id { get; init; }
    public string? Email { get; init; }
    public string? FirstName { get; init; }
    public string? LastName { get; init; }
    public string? Phone { get; init; }
    /// <summary>disabled, invited, enabled or declined.</summary>
    public string State { get; init; } = "enabled";
    public bool VerifiedEmail { get; init; } = true;
    /// <summary>Comma-separated, as Shopify sends tags.</summary>
    public string Tags { get; init; } = "";
    public string? Note { get; init; }
    public required string Currency { get; init; }
    public bool TaxExempt { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    /// <summary>email_marketing_consent.state: subscribed, not_subscribed, pending or unsubscribed.</summary>
    public string MarketingState { get; init; } = "not_subscribed";
    public string MarketingOptInLevel { get; init; } = "single_opt_in";
    public DateTimeOffset? MarketingConsentUpdatedAt { get; init; }
    public ShopifyAddress? DefaultAddress { get; init; }
}

/// <summary>A {name, value} pair: an order's note_attributes (the cart attributes) and a line's properties.</summary>
public sealed record ShopifyAttribute(string Name, string Value);

/// <summary>The storefront client an order came from; its address is also the order's browser_ip.</summary>
public sealed record ShopifyClientDetails
{
    public required string BrowserIp { get; init; }
    public string AcceptLanguage { get; init; } = "en";
    public string UserAgent { get; init; } = "Mozilla/5.0";
    public string? SessionHash { get; init; }
}

/// <summary>A discount code applied to an order or checkout; its amount counts in total_discounts.</summary>
public sealed record ShopifyDiscountCode
{
    public required string Code { get; init; }
    public decimal Amount { get; init; }
    /// <summary>fixed_amount, percentage or shipping.</summary>
    public string Type { get; init; } = "percentage";
}

/// <summary>A shipping method charged on an order or checkout; its price counts in total_price.</summary>
public sealed record ShopifyShippingLine
{
    public required long Id { get; init; }
    public required string Title { get; init; }
    public required decimal Price { get; init; }
    public string? Code { get; init; }
    public string Source { get; init; } = "shopify";
}

/// <summary>An order line item (also a refund line's line_item).</summary>
public sealed record ShopifyLine
{
    public required long Id { get; init; }
    public required long ProductId { get; init; }
    public required long VariantId { get; init; }
    public required string Title { get; init; }
    /// <summary>Null for a product's only ("Default Title") variant; the line's name appends it when set.</summary>
    public string? VariantTitle { get; init; }
    public string? Sku { get; init; }
    public string? Vendor { get; init; }
    public required int Quantity { get; init; }
    /// <summary>Unit price.</summary>
    public required decimal Price { get; init; }
    public int Grams { get; init; }
    public bool Taxable { get; init; } = true;
    public bool RequiresShipping { get; init; } = true;
    public IReadOnlyList<ShopifyAttribute> Properties { get; init; } = [];
}

/// <summary>An order as orders/create, orders/updated, orders/paid and orders/cancelled send it.</summary>
public sealed record ShopifyOrder
{
    public required long Id { get; init; }
    /// <summary>order_number and number; the name is "#" and this.</summary>
    public required long Number { get; init; }
    public required string Token { get; init; }
    public string? CartToken { get; init; }
    public string? CheckoutToken { get; init; }
    /// <summary>Also the contact_email.</summary>
    public string? Email { get; init; }
    public string? Phone { get; init; }
    /// <summary>Also the processed_at.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? CancelledAt { get; init; }
    /// <summary>customer, fraud, inventory, declined, staff or other; null unless cancelled.</summary>
    public string? CancelReason { get; init; }
    public DateTimeOffset? ClosedAt { get; init; }
    /// <summary>pending, authorized, partially_paid, paid, partially_refunded, refunded or voided.</summary>
    public string FinancialStatus { get; init; } = "paid";
    /// <summary>null, partial, fulfilled or restocked.</summary>
    public string? FulfillmentStatus { get; init; }
    public bool Test { get; init; }
    /// <summary>Shop and presentment currency (the replay and the tests sell in one currency).</summary>
    public required string Currency { get; init; }
    /// <summary>When true the line prices hold the tax, so total_tax is not added to total_price.</summary>
    public bool TaxesIncluded { get; init; }
    public decimal TotalTax { get; init; }
    public string Tags { get; init; } = "";
    public string? Note { get; init; }
    public IReadOnlyList<ShopifyAttribute> NoteAttributes { get; init; } = [];
    /// <summary>web, pos, shopify_draft_order or an app id.</summary>
    public string SourceName { get; init; } = "web";
    public string? LandingSite { get; init; }
    public string? ReferringSite { get; init; }
    /// <summary>Null when the data has no storefront client (then browser_ip is null too).</summary>
    public ShopifyClientDetails? Client { get; init; }
    /// <summary>Null for a guest checkout.</summary>
    public ShopifyCustomer? Customer { get; init; }
    public ShopifyAddress? BillingAddress { get; init; }
    public ShopifyAddress? ShippingAddress { get; init; }
    public IReadOnlyList<ShopifyDiscountCode> DiscountCodes { get; init; } = [];
    public IReadOnlyList<ShopifyShippingLine> ShippingLines { get; init; } = [];
    public IReadOnlyList<string> PaymentGatewayNames { get; init; } = ["shopify_payments"];
    public required IReadOnlyList<ShopifyLine> Lines { get; init; }
}

/// <summary>A refund transaction (kind "refund"); its amount is what the refund gave back.</summary>
public sealed record ShopifyTransaction
{
    public required long Id { get; init; }
    public required decimal Amount { get; init; }
    public string Gateway { get; init; } = "shopify_payments";
    /// <summary>pending, failure, success or error.</summary>
    public string Status { get; init; } = "success";
}

/// <summary>One refunded line of a refund.</summary>
public sealed record ShopifyRefundLine
{
    public required long Id { get; init; }
    public required long LineItemId { get; init; }
    public required int Quantity { get; init; }
    public required decimal Subtotal { get; init; }
    public decimal TotalTax { get; init; }
    /// <summary>no_restock, cancel, return or legacy_restock.</summary>
    public string RestockType { get; init; } = "return";
    public long? LocationId { get; init; }
    /// <summary>The refunded order line; when null (a caller that knows only its id) line_item is left out.</summary>
    public ShopifyLine? LineItem { get; init; }
}

/// <summary>A refund as refunds/create sends it.</summary>
public sealed record ShopifyRefund
{
    public required long Id { get; init; }
    public required long OrderId { get; init; }
    /// <summary>Also the processed_at, of the refund and of its transactions.</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    public string? Note { get; init; }
    /// <summary>Deprecated by Shopify in favour of each line's restock_type, still sent.</summary>
    public bool Restock { get; init; }
    public required string Currency { get; init; }
    public required IReadOnlyList<ShopifyRefundLine> Lines { get; init; }
    public IReadOnlyList<ShopifyTransaction> Transactions { get; init; } = [];
}

/// <summary>A product option (e.g. Size) and the values its variants take.</summary>
public sealed record ShopifyProductOption(string Name, IReadOnlyList<string> Values);

/// <summary>A product variant. No cost: Shopify keeps it on the inventory item, out of the webhook.</summary>
public sealed record ShopifyVariant
{
    public required long Id { get; init; }
    public required string Title { get; init; }
    public required decimal Price { get; init; }
    public decimal? CompareAtPrice { get; init; }
    public string? Sku { get; init; }
    public string? Barcode { get; init; }
    /// <summary>1-based.</summary>
    public int Position { get; init; } = 1;
    public required long InventoryItemId { get; init; }
    public int InventoryQuantity { get; init; }
    /// <summary>deny or continue (selling when out of stock).</summary>
    public string InventoryPolicy { get; init; } = "deny";
    public string? InventoryManagement { get; init; } = "shopify";
    public bool Taxable { get; init; } = true;
    public bool RequiresShipping { get; init; } = true;
    public string? Option1 { get; init; }
    public string? Option2 { get; init; }
    public string? Option3 { get; init; }
    public int Grams { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>A product as products/create and products/update send it.</summary>
public sealed record ShopifyProduct
{
    public required long Id { get; init; }
    public required string Title { get; init; }
    public string BodyHtml { get; init; } = "";
    public string? Vendor { get; init; }
    public string? ProductType { get; init; }
    public required string Handle { get; init; }
    /// <summary>active, draft or archived.</summary>
    public string Status { get; init; } = "active";
    public string Tags { get; init; } = "";
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? PublishedAt { get; init; }
    public string PublishedScope { get; init; } = "web";
    /// <summary>Image URLs in display order; the first is the product's image.</summary>
    public IReadOnlyList<string> Images { get; init; } = [];
    public IReadOnlyList<ShopifyProductOption> Options { get; init; } = [];
    public required IReadOnlyList<ShopifyVariant> Variants { get; init; }
}

/// <summary>An Online Store cart line; a cart merges repeats of a variant into one line.</summary>
public sealed record ShopifyCartLine
{
    /// <summary>"variantId:hash", as Shopify keys cart lines.</summary>
    public required string Key { get; init; }
    public required long ProductId { get; init; }
    public required long VariantId { get; init; }
    public required string Title { get; init; }
    public string? Sku { get; init; }
    public string? Vendor { get; init; }
    public required int Quantity { get; init; }
    public required decimal Price { get; init; }
    public int Grams { get; init; }
}

/// <summary>A cart as carts/create and carts/update send it: no customer identity.</summary>
public sealed record ShopifyCart
{
    /// <summary>Also the cart's id.</summary>
    public required string Token { get; init; }
    public string? Note { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public required IReadOnlyList<ShopifyCartLine> Lines { get; init; }
}

/// <summary>A checkout line.</summary>
public sealed record ShopifyCheckoutLine
{
    public required string Key { get; init; }
    public required long ProductId { get; init; }
    public required long VariantId { get; init; }
    public string? Sku { get; init; }
    public required string Title { get; init; }
    public string? VariantTitle { get; init; }
    public required int Quantity { get; init; }
    public required decimal Price { get; init; }
    public int Grams { get; init; }
    public string? Vendor { get; init; }
}

/// <summary>A checkout as checkouts/create and checkouts/update send it (the abandoned-checkout resource).</summary>
public sealed record ShopifyCheckout
{
    public required string Token { get; init; }
    public string? CartToken { get; init; }
    public string? Email { get; init; }
    public string? Phone { get; init; }
    public string? Gateway { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    /// <summary>Null until the order is placed; stays null for an abandoned checkout.</summary>
    public DateTimeOffset? CompletedAt { get; init; }
    public DateTimeOffset? ClosedAt { get; init; }
    public required string Currency { get; init; }
    public string CustomerLocale { get; init; } = "en";
    public string SourceName { get; init; } = "web";
    public bool BuyerAcceptsMarketing { get; init; }
    public ShopifyCustomer? Customer { get; init; }
    public ShopifyAddress? BillingAddress { get; init; }
    public ShopifyAddress? ShippingAddress { get; init; }
    public IReadOnlyList<ShopifyDiscountCode> DiscountCodes { get; init; } = [];
    public IReadOnlyList<ShopifyShippingLine> ShippingLines { get; init; } = [];
    public bool TaxesIncluded { get; init; }
    public decimal TotalTax { get; init; }
    public required IReadOnlyList<ShopifyCheckoutLine> Lines { get; init; }
}
