namespace StoreReplay;

/// <summary>carts/* and checkouts/* bodies: the replay's sessions through <see cref="ShopifyShapes"/> (carts carry no customer).</summary>
internal static class SessionBodies
{
    public static byte[] Cart(ReplaySession s, List<SessionLine> lines, DateTimeOffset updatedAt) => ShopifyShapes.Utf8(ShopifyShapes.Cart(new ShopifyCart
    {
        Token = s.CartToken,
        CreatedAt = s.CartCreatedAt,
        UpdatedAt = updatedAt,
        Lines = lines.ConvertAll(l => new ShopifyCartLine
        {
            Key = l.LineKey, ProductId = l.Product.Id, VariantId = l.Product.VariantId, Title = l.Product.Title, Sku = l.Product.Sku,
            Vendor = l.Product.Vendor, Quantity = l.Quantity, Price = l.Price,
        }),
    }));

    public static byte[] Checkout(ReplaySession s, string currency, DateTimeOffset updatedAt, DateTimeOffset? completedAt) =>
        ShopifyShapes.Utf8(ShopifyShapes.Checkout(new ShopifyCheckout
        {
            Token = s.CheckoutToken,
            CartToken = s.CartToken,
            Email = s.Customer?.Email,
            CreatedAt = s.CheckoutCreatedAt ?? throw new ArgumentException("a session without a checkout has no checkout body", nameof(s)),
            UpdatedAt = updatedAt,
            CompletedAt = completedAt,
            Currency = currency,
            Customer = s.Customer is { } c ? CatalogBodies.Shape(c, currency) : null,
            BillingAddress = CatalogBodies.Address(s.CountryCode),
            ShippingAddress = CatalogBodies.Address(s.CountryCode),
            // Why: the Online Retail prices are what the buyer paid, tax included.
            TaxesIncluded = true,
            Lines = s.Lines.ConvertAll(l => new ShopifyCheckoutLine
            {
                Key = l.LineKey, ProductId = l.Product.Id, VariantId = l.Product.VariantId, Sku = l.Product.Sku, Title = l.Product.Title,
                VariantTitle = "", Quantity = l.Quantity, Price = l.Price, Vendor = l.Product.Vendor,
            }),
        }));
}
