using System.Globalization;
using PluginApp.Ml.Tabular;

namespace PluginApp.Ml.Intent;

/// <summary>
/// THE feature builder of the purchase-intent model: training, held-out evaluation and scoring all call
/// <see cref="Build"/>, so they cannot drift apart. It reads only the <see cref="CartSnapshot"/> (no clock, no store
/// lookup). Descriptions are in merchant words; <see cref="Reason"/> turns a feature of a row into a sentence.
/// </summary>
/// <remarks>
/// The features, in schema order (all numeric unless said; "ln" = stored as ln(1 + x), see <see cref="LogScaled"/>):
/// <list type="number">
/// <item><c>cart_value</c> (ln): cart total in the store currency.</item>
/// <item><c>value_ratio</c> (ln): cart total / the store's median order value; missing when the median is unknown or 0.
/// Why both: the median moves as a store grows over the months a training window spans, and "2.3x the usual order" is
/// what a merchant reads; the model is per store, so the two are nearly collinear, which trees ignore and logistic
/// regression's L2 shares out.</item>
/// <item><c>items</c> (ln): total quantity.</item>
/// <item><c>distinct_products</c> (ln): different products.</item>
/// <item><c>minutes_since_created</c> (ln): age of the cart at the snapshot moment.</item>
/// <item><c>minutes_since_updated</c> (ln): how long it has sat idle.</item>
/// <item><c>updates</c> (ln): times the cart was changed after creation (a shopper who keeps working on a cart).</item>
/// <item><c>reached_checkout</c>: 0/1.</item>
/// <item><c>returning_customer</c>: 0/1, missing = unknown.</item>
/// <item><c>customer_orders</c> (ln): the customer's earlier orders that stood (no test orders, none cancelled by then),
/// missing = unknown (anonymous).</item>
/// <item><c>past_abandonments</c> (ln): the customer's earlier carts that did not become orders, missing = unknown.</item>
/// <item><c>device</c> (categorical): mobile, desktop, tablet or other; missing = unknown.</item>
/// <item><c>part_of_day</c> (categorical): night (0-5 h), morning (6-11), afternoon (12-17), evening (18-23), in the store's
/// time zone.</item>
/// <item><c>weekend</c>: 0/1 (Saturday or Sunday in the store's time zone), missing = unknown. A model trained before
/// 5 Dec 2026 read both in UTC; the descriptions changed with it, so such a model no longer loads and the store's rate
/// answers until the next training.</item>
/// <item><c>discount_applied</c>: 0/1.</item>
/// </list>
/// Missing numerics get a 0/1 missing indicator inside the tabular model (when any training row had them missing), so
/// "unknown customer" is a signal of its own rather than an imputed average.
/// </remarks>
public static class IntentFeatures
{
    /// <summary>The schema; see the type's remarks for each feature.</summary>
    public static TabularSchema Schema { get; } = new(
        TabularFeature.Numeric("cart_value", "cart value in the store currency"),
        TabularFeature.Numeric("value_ratio", "cart value compared with the store's usual order"),
        TabularFeature.Numeric("items", "items in the cart"),
        TabularFeature.Numeric("distinct_products", "different products in the cart"),
        TabularFeature.Numeric("minutes_since_created", "time since the cart was created"),
        TabularFeature.Numeric("minutes_since_updated", "time since the cart was last changed"),
        TabularFeature.Numeric("updates", "times the shopper changed the cart"),
        TabularFeature.Numeric("reached_checkout", "whether the cart reached checkout"),
        TabularFeature.Numeric("returning_customer", "whether the shopper was known to the store before"),
        TabularFeature.Numeric("customer_orders", "orders the customer placed before"),
        TabularFeature.Numeric("past_abandonments", "earlier carts of the customer that did not become orders"),
        TabularFeature.Categorical("device", "device the shopper uses"),
        TabularFeature.Categorical("part_of_day", "time of day in the store's time zone"),
        TabularFeature.Numeric("weekend", "whether it is the weekend in the store's time zone"),
        TabularFeature.Numeric("discount_applied", "whether a discount is applied"));

    /// <summary>Feature names in schema order.</summary>
    public static IReadOnlyList<string> Names { get; } = Schema.Features.Select(f => f.Name).ToArray();

    /// <summary>
    /// Features stored as ln(1 + value): money, counts and minutes with heavy right tails. Why: logistic regression (what
    /// <see cref="TabularLearner.Auto"/> picks for small stores) is linear in its inputs, and on these a log scale is what
    /// makes "twice the value" one step; trees are unaffected. <see cref="Raw"/> undoes it, and the reasons use raw values.
    /// </summary>
    public static IReadOnlySet<string> LogScaled { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "cart_value", "value_ratio", "items", "distinct_products", "minutes_since_created", "minutes_since_updated", "updates",
        "customer_orders", "past_abandonments",
    };

    /// <summary>The one feature of the cart-value baseline (<see cref="IntentTrainer.CartValueOnly"/>).</summary>
    public static TabularSchema CartValueSchema { get; } = new(Schema["cart_value"]);

    /// <summary>The one feature of the reached-checkout baseline (<see cref="IntentTrainer.CheckoutOnly"/>).</summary>
    public static TabularSchema CheckoutSchema { get; } = new(Schema["reached_checkout"]);

    /// <summary>Device values kept as they are (lower-cased); any other non-empty value becomes "other".</summary>
    public static IReadOnlyList<string> Devices { get; } = ["mobile", "desktop", "tablet"];

    /// <summary>The row of a snapshot. Rejects an impossible snapshot with an <see cref="ArgumentException"/> naming the field.</summary>
    public static TabularRow Build(CartSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        snapshot.Validate();
        return Checked(snapshot);
    }

    private static TabularRow Checked(CartSnapshot s)
    {
        var ratio = s.ShopMedianOrderValue is > 0 and var m ? s.CartValue / m : (double?)null;
        return Schema.Row(
            Ln(s.CartValue), Ln(ratio), Ln(s.Items), Ln(s.DistinctProducts), Ln(s.MinutesSinceCreated), Ln(s.MinutesSinceUpdated),
            Ln(s.Updates), s.ReachedCheckout, s.ReturningCustomer, Ln(s.CustomerOrders), Ln(s.PastAbandonments),
            DeviceLevel(s.Device), PartOfDay(s.HourOfDay), s.DayOfWeek is { } d ? d is 0 or 6 : null, s.DiscountApplied);
    }

    /// <summary>Rows of many snapshots; an impossible one is rejected naming its index and field.</summary>
    public static TabularRow[] Build(IReadOnlyList<CartSnapshot> snapshots)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        var rows = new TabularRow[snapshots.Count];
        for (var i = 0; i < rows.Length; i++)
        {
            var s = snapshots[i] ?? throw new ArgumentException($"snapshots[{i}] is null.", nameof(snapshots));
            s.Validate($"snapshots[{i}]");
            rows[i] = Checked(s);
        }
        return rows;
    }

    /// <summary>The cart-value baseline's row, from a full feature row.</summary>
    internal static TabularRow CartValueRow(TabularRow row) => CartValueSchema.Row(row["cart_value"]);

    /// <summary>The reached-checkout baseline's row, from a full feature row.</summary>
    internal static TabularRow CheckoutRow(TabularRow row) => CheckoutSchema.Row(row["reached_checkout"]);

    private static object? Ln(double? x) => x is { } v ? Math.Log(1 + Math.Max(0, v)) : null;

    /// <summary>"mobile", "desktop", "tablet", "other", or null when unknown.</summary>
    public static string? DeviceLevel(string? device)
    {
        if (string.IsNullOrWhiteSpace(device)) return null;
        var d = device.Trim().ToLowerInvariant();
        return Devices.Contains(d) ? d : "other";
    }

    /// <summary>"night" (0-5 h), "morning" (6-11), "afternoon" (12-17), "evening" (18-23), or null when unknown.</summary>
    public static string? PartOfDay(int? hour) => hour switch
    {
        null => null,
        < 6 => "night",
        < 12 => "morning",
        < 18 => "afternoon",
        _ => "evening",
    };

    /// <summary>A feature of a row on its natural scale (money, items, minutes, 0/1), null when missing or categorical.
    /// Log-scaled features are rounded to 6 significant digits, the precision the float row keeps.</summary>
    public static double? Raw(TabularRow row, string feature)
    {
        ArgumentNullException.ThrowIfNull(row);
        if (row[feature] is not float f) return null;
        double v = f;
        if (!LogScaled.Contains(feature)) return v;
        var x = Math.Exp(v) - 1;
        if (x <= 0) return 0;
        // Why: ln(1 + x) stored as a float keeps ~7 digits, so exp of it gives 2.9999998 for 3 items or 9,999.995 for 10,000.
        var digits = Math.Clamp(5 - (int)Math.Floor(Math.Log10(x)), 0, 15);
        return Math.Round(x, digits);
    }

    /// <summary>
    /// A sentence about one feature of a row in merchant words, e.g. "cart worth 2.3x the store's usual order (129.00)",
    /// "changed the cart 3 times", "returning customer with 4 orders", "abandoned 2 carts before". The value and value-ratio
    /// features give the same sentence when the ratio is known, and so do returning customer and earlier orders, so a
    /// list of reasons de-duplicated by text names each fact once.
    /// </summary>
    public static string Reason(string feature, TabularRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        ArgumentNullException.ThrowIfNull(feature);
        if (!row.Schema.Equals(Schema)) throw new ArgumentException("The row was not built by IntentFeatures.Build.", nameof(row));
        string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        double? Get(string f) => Raw(row, f);
        string Times(double n, string one, string many) => n == 1 ? one : I($"{n:N0} {many}");
        switch (feature)
        {
            case "cart_value" or "value_ratio":
                var value = Get("cart_value") ?? 0;
                return Get("value_ratio") is { } r
                    ? I($"cart worth {r:0.0}x the store's usual order ({value:N2})")
                    : value == 0 ? "empty cart (worth 0)" : I($"cart worth {value:N2}");
            case "returning_customer" or "customer_orders":
                var orders = Get("customer_orders");
                var returning = Get("returning_customer");
                if (orders > 0) return I($"returning customer with {Times(orders.Value, "1 order", "orders")}");
                if (returning == 1) return "returning customer, no order yet";
                if (orders == 0 || returning == 0) return "new customer, no order before";
                return "customer not known";
            case "device":
                return row["device"] switch
                {
                    null => "device not known",
                    "other" => "shopping on another device than mobile, desktop or tablet",
                    string d => $"shopping on {d}",
                    _ => "device not known",
                };
            case "part_of_day":
                return row["part_of_day"] is string p ? $"cart active in the {p} (store time)" : "time of day not known";
        }
        if (Schema.IndexOf(feature) < 0) throw new ArgumentException($"Unknown feature '{feature}'; the intent features are: {string.Join(", ", Names)}.", nameof(feature));
        if (Get(feature) is not { } x) return feature switch
        {
            "past_abandonments" => "earlier carts not known",
            "weekend" => "day of the week not known",
            _ => $"{Schema[feature].Description} not known",
        };
        return feature switch
        {
            "items" => x == 0 ? "no items in the cart" : I($"{Times(x, "1 item", "items")} in the cart"),
            "distinct_products" => x == 1 ? "one product" : I($"{x:N0} different products"),
            "minutes_since_created" => $"cart created {Ago(x)}",
            "minutes_since_updated" => $"last changed {Ago(x)}",
            "updates" => x == 0 ? "cart not changed since it was created" : $"changed the cart {Times(x, "once", "times")}",
            "reached_checkout" => x == 1 ? "reached checkout" : "has not reached checkout",
            "past_abandonments" => x == 0 ? "never abandoned a cart before" : $"abandoned {Times(x, "1 cart", "carts")} before",
            "weekend" => x == 1 ? "on a weekend" : "on a weekday",
            "discount_applied" => x == 1 ? "discount applied" : "no discount applied",
            _ => I($"{feature} = {x:G4}"),
        };
    }

    /// <summary>"12 minutes ago", "5 hours ago", "3 days ago".</summary>
    private static string Ago(double minutes)
    {
        string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        if (minutes < 1) return "less than a minute ago";
        if (minutes < 90) return Math.Round(minutes) == 1 ? "1 minute ago" : I($"{minutes:F0} minutes ago");
        if (minutes < 48 * 60) return I($"{minutes / 60:F0} hours ago");
        return I($"{minutes / 1440:F0} days ago");
    }
}
