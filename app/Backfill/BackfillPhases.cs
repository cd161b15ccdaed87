using System.Text.Json;
using PluginApp.Data;
using PluginApp.Shopify;
using PluginApp.StoreData;

namespace PluginApp.Backfill;

/// <summary>One bulk query of the backfill and how a parent object with its children becomes store rows.</summary>
internal sealed record BackfillPhase(string Name, string QueryPath, Action<StoreWriter, JsonElement, IReadOnlyList<JsonElement>> Write)
{
    public const string Products = "products";
    public const string Customers = "customers";
    public const string Orders = "orders";

    /// <summary>In this order: orders refer to products and customers.</summary>
    public static readonly BackfillPhase[] All =
    [
        // A product's children are its variants and the collections it belongs to.
        new(Products, "Backfill/Queries/products.graphql", (store, p, children) =>
        {
            var product = BulkRecords.Product(p);
            var variants = children.Where(c => !IsCollection(c)).Select(c => BulkRecords.Variant(c, product.Id)).ToList();
            store.AddProduct(new ProductRows(product, variants));
            store.AddProductCollections(product.Id, children.Where(IsCollection).Select(c => Gid.Id(c.GetProperty("id").GetString()!)).ToArray());
        }),
        new(Customers, "Backfill/Queries/customers.graphql", (store, c, _) => store.AddCustomer(BulkRecords.Customer(c))),
        new(Orders, "Backfill/Queries/orders.graphql", (store, o, children) =>
        {
            var (order, refunds) = BulkRecords.Order(o);
            store.AddOrder(new OrderRows(order, children.Select(l => BulkRecords.OrderLine(l, order.Id)).ToList(), null, refunds));
        }),
    ];

    private static bool IsCollection(JsonElement e) =>
        e.GetProperty("id").GetString()!.StartsWith("gid://shopify/Collection/", StringComparison.Ordinal);
}
