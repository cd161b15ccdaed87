namespace PluginApp.StoreData;

/// <summary>
/// When an order was placed, as the models that learn from a store's history read it: when Shopify processed it, else when
/// it was created. Why: an order imported from another platform is created on the day of the import, with its real date as
/// processed_at; read by its creation, a migrated store's years of history fall on one day. <see cref="Order.PlacedAt"/> is
/// the same for a payload's order.
/// </summary>
public static class OrderTime
{
    /// <summary>The SQL of the time order <paramref name="o"/> (a table alias of orders) was placed.</summary>
    public static string Placed(string o) => $"coalesce({o}.processed_at, {o}.created_at)";
}
