using System.Globalization;

namespace PluginApp.Ml.Intent;

/// <summary>
/// What is known about one cart (or open checkout) at one moment, the snapshot moment. Training and scoring must fill it
/// the same way: a training snapshot is the state the app <i>would have scored</i> at that moment, before anyone knew
/// whether the cart became an order. Two traps the app side must avoid (both make held-out figures look great and the live
/// model useless): (1) never build a training snapshot from the cart's final state after the order (then
/// <see cref="ReachedCheckout"/> is true for every ordered cart); (2) take training snapshots at the same kind of moment
/// the live job scores (e.g. every cart 30 minutes after its last change), or <see cref="MinutesSinceUpdated"/> means one
/// thing in training and another in scoring. Counts about the customer (<see cref="CustomerOrders"/>,
/// <see cref="PastAbandonments"/>) and <see cref="ShopMedianOrderValue"/> must be computed from what happened before the
/// snapshot moment only.
/// </summary>
/// <remarks>
/// No field of the list the app asked for was dropped; four enter the model changed. <see cref="ShopMedianOrderValue"/> is
/// not a feature of its own (the model is per store, so the store's median is nearly a constant; it only turns the
/// cart value into "x times the usual order"). <see cref="HourOfDay"/> and <see cref="DayOfWeek"/> enter coarsened (part of
/// the day, weekend or not): a store with a few hundred orders has too few per hour or weekday to learn 24 or 7 levels.
/// <see cref="Device"/> values other than mobile, desktop and tablet become "other", so a raw user-agent string cannot
/// blow up the categories.
/// </remarks>
public sealed record CartSnapshot
{
    /// <summary>Cart (or checkout) total in the store currency, before shipping; finite, &gt;= 0.</summary>
    public double CartValue { get; init; }

    /// <summary>Total quantity of items in the cart (&gt;= 0).</summary>
    public int Items { get; init; }

    /// <summary>Distinct products (or variants) in the cart (&gt;= 0).</summary>
    public int DistinctProducts { get; init; }

    /// <summary>Minutes from the cart's creation to the snapshot moment (finite, &gt;= 0).</summary>
    public double MinutesSinceCreated { get; init; }

    /// <summary>Minutes from the cart's last change to the snapshot moment (finite, &gt;= 0): how long it has sat idle.</summary>
    public double MinutesSinceUpdated { get; init; }

    /// <summary>Times the cart was changed after it was created (items added, removed or changed), up to the snapshot moment.</summary>
    public int Updates { get; init; }

    /// <summary>Whether a checkout exists for the cart at the snapshot moment.</summary>
    public bool ReachedCheckout { get; init; }

    /// <summary>Whether the shopper was known to the store before this cart (an account, an earlier order or cart); null = unknown.</summary>
    public bool? ReturningCustomer { get; init; }

    /// <summary>Orders the customer placed before the snapshot moment; null = unknown (anonymous cart).</summary>
    public int? CustomerOrders { get; init; }

    /// <summary>Earlier carts or checkouts of the same customer or email that did not become orders; null = unknown.</summary>
    public int? PastAbandonments { get; init; }

    /// <summary>"mobile", "desktop" or "tablet" (case-insensitive; anything else counts as "other"); null = unknown.</summary>
    public string? Device { get; init; }

    /// <summary>Hour of the snapshot moment in the store's time zone, 0-23; null = unknown.</summary>
    public int? HourOfDay { get; init; }

    /// <summary>Day of the week of the snapshot moment in the store's time zone, numbered like <see cref="System.DayOfWeek"/>
    /// (0 = Sunday ... 6 = Saturday); null = unknown.</summary>
    public int? DayOfWeek { get; init; }

    /// <summary>Whether a discount code or automatic discount is applied to the cart.</summary>
    public bool DiscountApplied { get; init; }

    /// <summary>The store's median order value before the snapshot moment (store currency); null or 0 = unknown. Only used
    /// for the value ratio.</summary>
    public double? ShopMedianOrderValue { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first impossible field (negative counts, non-finite or
    /// negative money and minutes, an hour outside 0-23, a day outside 0-6).</summary>
    public void Validate(string paramName = "snapshot")
    {
        void Fail(string field, object? value, string rule) =>
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{paramName}.{field} is {value}; {rule}."), paramName);
        if (!(CartValue >= 0) || double.IsInfinity(CartValue)) Fail(nameof(CartValue), CartValue, "it must be a finite number >= 0");
        if (Items < 0) Fail(nameof(Items), Items, "it must be >= 0");
        if (DistinctProducts < 0) Fail(nameof(DistinctProducts), DistinctProducts, "it must be >= 0");
        if (!(MinutesSinceCreated >= 0) || double.IsInfinity(MinutesSinceCreated)) Fail(nameof(MinutesSinceCreated), MinutesSinceCreated, "it must be a finite number >= 0");
        if (!(MinutesSinceUpdated >= 0) || double.IsInfinity(MinutesSinceUpdated)) Fail(nameof(MinutesSinceUpdated), MinutesSinceUpdated, "it must be a finite number >= 0");
        if (Updates < 0) Fail(nameof(Updates), Updates, "it must be >= 0");
        if (CustomerOrders < 0) Fail(nameof(CustomerOrders), CustomerOrders, "it must be >= 0 or null");
        if (PastAbandonments < 0) Fail(nameof(PastAbandonments), PastAbandonments, "it must be >= 0 or null");
        if (HourOfDay is < 0 or > 23) Fail(nameof(HourOfDay), HourOfDay, "it must be 0-23 or null");
        if (DayOfWeek is < 0 or > 6) Fail(nameof(DayOfWeek), DayOfWeek, "it must be 0-6 (0 = Sunday) or null");
        if (ShopMedianOrderValue is { } m && (!(m >= 0) || double.IsInfinity(m)))
            Fail(nameof(ShopMedianOrderValue), m, "it must be a finite number >= 0 or null");
    }
}

/// <summary>One training example: a cart as it was at <paramref name="At"/> and whether it later became an order.</summary>
/// <param name="Snapshot">The cart at the snapshot moment (see <see cref="CartSnapshot"/> for what must not leak into it).</param>
/// <param name="Ordered">True when the cart or its checkout became an order after the snapshot moment. Hand in only carts
/// whose outcome is settled (older than the app's attribution window, e.g. 7 days): a recent open cart labelled "not
/// ordered" may still convert, and those would all land in the held-out share, the latest carts.</param>
/// <param name="At">The snapshot moment (UTC). The trainer splits by it: the latest carts are held out.</param>
public sealed record IntentExample(CartSnapshot Snapshot, bool Ordered, DateTime At);
