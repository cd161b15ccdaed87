namespace StoreReplay;

/// <summary>orders/* and refunds/create bodies: the replay's orders through <see cref="ShopifyShapes"/>.</summary>
internal static class OrderBodies
{
    public static byte[] Order(ReplayOrder o, string currency, int seed, DateTimeOffset updatedAt) => ShopifyShapes.Utf8(ShopifyShapes.Order(Shape(o, currency, seed, updatedAt)));

    public static ShopifyOrder Shape(ReplayOrder o, string currency, int seed, DateTimeOffset updatedAt) => new()
    {
        Id = o.Id,
        Number = o.Number,
        Token = Determinism.Hex(Determinism.RngFor(seed, o.Id, purpose: 4), 16),
        CartToken = o.Session?.CartToken,
        CheckoutToken = o.Session?.CheckoutToken,
        Email = o.Customer?.Email,
        CreatedAt = o.CreatedAt,
        UpdatedAt = updatedAt,
        Currency = currency,
        // Why: the Online Retail prices are what the buyer paid, tax included.
        TaxesIncluded = true,
        Client = o.BrowserIp is { } ip
            ? new ShopifyClientDetails { BrowserIp = ip, UserAgent = "Mozilla/5.0 (replay)", SessionHash = o.SessionHash }
            : null,
        Customer = o.Customer is { } c ? CatalogBodies.Shape(c, currency) : null,
        BillingAddress = CatalogBodies.Address(o.CountryCode),
        ShippingAddress = CatalogBodies.Address(o.CountryCode),
        Lines = o.Lines.ConvertAll(Line),
    };

    public static byte[] Refund(ReplayRefund r, string currency) => ShopifyShapes.Utf8(ShopifyShapes.Refund(new ShopifyRefund
    {
        Id = r.Id,
        OrderId = r.Order.Id,
        CreatedAt = r.CreatedAt,
        Note = r.Note,
        Restock = true,
        Currency = currency,
        Lines = r.Lines.ConvertAll(l => new ShopifyRefundLine
        {
            Id = l.Id, LineItemId = l.Line.Id, Quantity = l.Quantity, Subtotal = l.Line.Price * l.Quantity, LineItem = Line(l.Line),
        }),
        Transactions = [new ShopifyTransaction { Id = r.Id * 10 + 1, Amount = r.Amount }],
    }));

    /// <summary>The data sets have no variants: a line's variant is its product's only one, so it has no variant title.</summary>
    private static ShopifyLine Line(ReplayLine l) => new()
    {
        Id = l.Id,
        ProductId = l.Product.Id,
        VariantId = l.Product.VariantId,
        Title = l.Title,
        Sku = l.Product.Sku,
        Vendor = l.Product.Vendor,
        Quantity = l.Quantity,
        Price = l.Price,
    };
}
