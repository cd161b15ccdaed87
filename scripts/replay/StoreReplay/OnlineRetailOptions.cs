namespace StoreReplay;

public sealed record OnlineRetailOptions
{
    public int Seed { get; init; } = 7;
    /// <summary>Keep rows with InvoiceDate in [From, To); null = unbounded.</summary>
    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }
    /// <summary>Keep only the first N distinct invoice numbers of the file (cancelled ones count too).</summary>
    public int? MaxInvoices { get; init; }
    /// <summary>Share of orders preceded by a cart and a checkout.</summary>
    public double SessionShare { get; init; } = 0.3;
    /// <summary>Expected abandoned sessions per completed session.</summary>
    public double AbandonedShare { get; init; } = 0.1;
    /// <summary>Rows with an empty CustomerID become guest orders (no customer); false drops them.</summary>
    public bool IncludeGuestOrders { get; init; } = true;
    /// <summary>
    /// Added to every date once the [From, To) slice is taken, so the slice plays as a store's recent history (the demo
    /// ends it where its storefront shoppers begin). Every other time in the store derives from these dates.
    /// </summary>
    public TimeSpan Shift { get; init; }
}
