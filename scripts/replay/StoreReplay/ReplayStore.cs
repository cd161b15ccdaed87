namespace StoreReplay;

/// <summary>A store rebuilt from a data set: what Shopify would hold and send for it.</summary>
public sealed class ReplayStore
{
    public required int Seed { get; init; }
    public required string Currency { get; init; }
    public List<ReplayProduct> Products { get; } = [];
    public List<ReplayCustomer> Customers { get; } = [];
    /// <summary>In time order (created_at, then data order).</summary>
    public List<ReplayOrder> Orders { get; } = [];
    public List<ReplayRefund> Refunds { get; } = [];
    /// <summary>Cart and checkout sessions: those that led to an order and the abandoned ones.</summary>
    public List<ReplaySession> Sessions { get; } = [];
    /// <summary>Evaluation labels kept out of every payload (fraud data set only).</summary>
    public List<FraudLabel> Labels { get; } = [];

    /// <summary>The share of customers who subscribe to email marketing as their account is made (the data sets say nothing of it).</summary>
    public const int SubscribedPercent = 40;

    /// <summary>Whether the customer subscribed to email marketing when her account was made: the same answer every run of a seed.</summary>
    public bool Subscribed(ReplayCustomer c) => Determinism.MixToInt(Seed, c.Id, 11) % 100 < SubscribedPercent;

    public int LineCount => Orders.Sum(o => o.Lines.Count);
}

public sealed record ReplayProduct(long Id, long VariantId, long InventoryItemId, string Sku, string Title, string Handle,
    string ProductType, string Vendor, decimal Price, decimal? UnitCost, int InventoryQuantity, DateTimeOffset CreatedAt);

/// <summary>A customer as every payload that embeds it shows it: one version, so no payload undoes another.</summary>
public sealed record ReplayCustomer(long Id, string Email, string? CountryCode, DateTimeOffset CreatedAt);

public sealed class ReplayOrder
{
    public required long Id { get; init; }
    public required long Number { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public ReplayCustomer? Customer { get; init; }
    public string? CountryCode { get; init; }
    /// <summary>The storefront client (fraud data: the terminal); null when the data set has none.</summary>
    public string? BrowserIp { get; init; }
    public string? SessionHash { get; init; }
    public List<ReplayLine> Lines { get; } = [];
    public ReplaySession? Session { get; set; }
    /// <summary>When and why the merchant cancelled it, as a bulk export made after that time shows (reason in GraphQL's spelling).</summary>
    public (DateTimeOffset At, string Reason)? Cancelled { get; set; }
    public decimal Total => Lines.Sum(l => l.Price * l.Quantity);
}

public sealed record ReplayLine(long Id, ReplayProduct Product, string Title, int Quantity, decimal Price);

public sealed record ReplayRefund(long Id, ReplayOrder Order, DateTimeOffset CreatedAt, string Note, List<ReplayRefundLine> Lines)
{
    public decimal Amount => Lines.Sum(l => l.Line.Price * l.Quantity);
}

public sealed record ReplayRefundLine(long Id, ReplayLine Line, int Quantity);

/// <summary>
/// A storefront session: a cart, optionally a checkout, and the order it became (null when abandoned).
/// Times are in event order: cart created, cart updated, checkout created, checkout updated, order.
/// </summary>
public sealed record ReplaySession(string CartToken, string CheckoutToken, ReplayOrder? Order,
    ReplayCustomer? Customer, string? CountryCode, List<SessionLine> FirstCartLines, List<SessionLine> Lines,
    DateTimeOffset CartCreatedAt, DateTimeOffset CartUpdatedAt, DateTimeOffset? CheckoutCreatedAt, DateTimeOffset? CheckoutUpdatedAt)
{
    public bool Abandoned => Order is null;
    public bool ReachedCheckout => CheckoutCreatedAt is not null;
}

public sealed record SessionLine(ReplayProduct Product, string LineKey, int Quantity, decimal Price);

public sealed record FraudLabel(long OrderId, long TransactionId, DateTimeOffset CreatedAt, int Fraud, int Scenario);
