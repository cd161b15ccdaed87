using PluginApp.StoreData;

namespace PluginApp.Backfill;

/// <summary>
/// One bulk query of the backfill, and the set-based statements that merge a chunk of its staged parent lines, with their
/// children, into the store (<see cref="StoreMerge"/>: PostgreSQL maps GraphQL's shape to the webhook rows', but for orders'
/// line items, which the app reads as they are staged).
/// </summary>
/// <param name="LineItemChildren">Its child lines are orders' line items, staged as the values they give order_lines
/// (<see cref="BulkLineItem"/>) rather than as JSON.</param>
internal sealed record BackfillPhase(string Name, string QueryPath, bool LineItemChildren = false)
{
    public const string Products = StoreMerge.Products;
    public const string Customers = StoreMerge.Customers;
    public const string Orders = StoreMerge.Orders;

    public IReadOnlyList<MergeStatement> Merge => StoreMerge.Phases[Name];

    /// <summary>The store tables <see cref="Merge"/> writes.</summary>
    public IReadOnlyList<string> Tables => StoreMerge.Tables[Name];

    /// <summary>Merged in this order (orders refer to products and customers); their bulk queries run at once.</summary>
    public static readonly BackfillPhase[] All =
    [
        new(Products, "Backfill/Queries/products.graphql"), // children: variants and the collections the product belongs to
        new(Customers, "Backfill/Queries/customers.graphql"),
        new(Orders, "Backfill/Queries/orders.graphql", LineItemChildren: true), // children: line items; refunds come inside the order
    ];
}
