namespace StoreReplay;

/// <summary>products/create and customers/create bodies: the replay's catalog through <see cref="ShopifyShapes"/>.</summary>
internal static class CatalogBodies
{
    private const string DefaultTitle = "Default Title";

    public static byte[] Product(ReplayProduct p) => ShopifyShapes.Utf8(ShopifyShapes.Product(new ShopifyProduct
    {
        Id = p.Id,
        Title = p.Title,
        Vendor = p.Vendor,
        ProductType = p.ProductType,
        Handle = p.Handle,
        CreatedAt = p.CreatedAt,
        UpdatedAt = p.CreatedAt,
        PublishedAt = p.CreatedAt,
        // Why one "Default Title" variant: the data sets sell a stock code at one price, which Shopify models so.
        Options = [new ShopifyProductOption("Title", [DefaultTitle])],
        Variants =
        [
            new ShopifyVariant
            {
                Id = p.VariantId, Title = DefaultTitle, Price = p.Price, Sku = p.Sku, InventoryItemId = p.InventoryItemId,
                InventoryQuantity = p.InventoryQuantity, Option1 = DefaultTitle, CreatedAt = p.CreatedAt, UpdatedAt = p.CreatedAt,
            },
        ],
    }));

    public static byte[] Customer(ReplayCustomer c, string currency) => ShopifyShapes.Utf8(ShopifyShapes.Customer(Shape(c, currency)));

    /// <summary>customers_email_marketing_consent/update for a customer who subscribed as her account was made.</summary>
    public static byte[] SubscribedConsent(ReplayCustomer c, string currency) =>
        ShopifyShapes.Utf8(ShopifyShapes.MarketingConsent(Shape(c, currency) with { MarketingState = "subscribed", MarketingConsentUpdatedAt = c.CreatedAt }));

    /// <summary>The customer as every payload shows it: one version, always at its created_at, so no payload undoes another.</summary>
    public static ShopifyCustomer Shape(ReplayCustomer c, string currency) => new()
    {
        Id = c.Id,
        Email = c.Email,
        Currency = currency,
        CreatedAt = c.CreatedAt,
        UpdatedAt = c.CreatedAt,
        DefaultAddress = Address(c.CountryCode),
    };

    /// <summary>The data sets hold only a country, so every other address field is null.</summary>
    public static ShopifyAddress? Address(string? countryCode) =>
        countryCode is null ? null : new ShopifyAddress { CountryCode = countryCode, Country = Countries.Name(countryCode) };
}
