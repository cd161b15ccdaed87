using System.Globalization;

namespace StoreReplay;

/// <summary>
/// Cart and checkout sessions drawn per order from (seed, order id): a share of orders is preceded by a
/// cart (created, then updated) and a checkout (created, then completed at the order's time); for each of
/// those, with probability abandonedShare, the same buyer also left an earlier session that never became an
/// order (half stop at the cart, half at an open checkout). Checkout ids: order id + 2e9 (completed), + 3e9 (abandoned).
/// </summary>
internal static class Sessions
{
    public static void AddTo(ReplayStore store, double sessionShare, double abandonedShare)
    {
        foreach (var order in store.Orders)
        {
            var rng = Determinism.RngFor(store.Seed, order.Id, purpose: 1);
            if (rng.NextDouble() >= sessionShare) continue;
            var lines = Aggregate(order, rng);

            var checkoutCreated = order.CreatedAt.AddMinutes(-rng.Next(2, 21));
            var cartUpdated = checkoutCreated.AddMinutes(-rng.Next(1, 31));
            var cartCreated = cartUpdated.AddMinutes(-rng.Next(1, 61));
            var firstLines = lines.Take((lines.Count + 1) / 2).ToList();
            var session = new ReplaySession(Determinism.Hex(rng, 16), Determinism.Hex(rng, 16), order,
                order.Customer, order.CountryCode, firstLines, lines, cartCreated, cartUpdated, checkoutCreated, order.CreatedAt);
            order.Session = session;
            store.Sessions.Add(session);

            if (rng.NextDouble() >= abandonedShare) continue;
            var picked = lines.OrderBy(_ => rng.Next()).Take(rng.Next(1, Math.Min(3, lines.Count) + 1))
                .Select(l => l with { Quantity = rng.Next(1, l.Quantity + 1) }).ToList();
            var start = cartCreated.AddHours(-rng.Next(1, 73));
            var updated = start.AddMinutes(rng.Next(1, 31));
            var toCheckout = rng.NextDouble() < 0.5;
            store.Sessions.Add(new ReplaySession(Determinism.Hex(rng, 16), Determinism.Hex(rng, 16), null,
                order.Customer, order.CountryCode, picked.Take(1).ToList(), picked, start, updated,
                toCheckout ? updated.AddMinutes(rng.Next(1, 11)) : null, toCheckout ? updated.AddMinutes(rng.Next(11, 41)) : null));
        }
    }

    /// <summary>One cart line per variant (a cart merges repeats), keyed "variantId:hash" like Shopify's.</summary>
    private static List<SessionLine> Aggregate(ReplayOrder order, Random rng) =>
        order.Lines.GroupBy(l => l.Product.Id)
            .Select(g => new SessionLine(g.First().Product,
                string.Create(CultureInfo.InvariantCulture, $"{g.First().Product.VariantId}:{Determinism.Hex(rng, 8)}"),
                g.Sum(l => l.Quantity), g.First().Price))
            .ToList();
}
