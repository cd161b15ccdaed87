using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using StoreReplay;

namespace ReplayCli;

/// <summary>
/// Storefront shoppers for the demo, played through the app's real paths: the theme block's app proxy calls
/// (recommendations, then impression, click and add-to-cart events) and the orders/create webhook Shopify sends.
/// Each shopper is a real basket of the data set from after <c>from</c> (orders the model never saw), restricted to
/// products the store already sells; the shopper opens the page of the basket's first product and sees the block.
/// What a shopper does, stated because the admin's numbers come from it:
/// - shown items that are in the basket are clicked and added to the cart (the shopper wanted them); any other shown
///   item is clicked one time in twenty;
/// - the shopper then opens the cart with the basket's products, and the Cart offers block asks the app what to show
///   (reported as seen, its arm and action written into the cart attributes the order carries);
/// - the shopper orders the basket with probability 0.45 when the product block showed something they wanted, else 0.30,
///   plus 0.03 when the cart showed the free-shipping bar (with or without a product) and 0.10 when it showed an offer,
///   whose code the order then uses (10 % of the basket, or what the offer says).
/// So the holdout comparison measures how often each arm's answer holds what shoppers go on to buy, and the cart offers
/// experiment measures the effect these assumed reactions give (stated in README: it shows the mechanism, not a real
/// effect). The demo app's clock (PUT /demo/clock, Demo only) is set back to each shopper's moment, spreading them over
/// the last days.
/// </summary>
internal static class Shoppers
{
    private const double OrderWhenShownWanted = 0.45, OrderOtherwise = 0.30, StrayClick = 0.05, AfterBar = 0.03, AfterOffer = 0.10;

    public sealed record Report(int Shoppers, int Shown, int Orders, int Failed, IReadOnlyDictionary<string, int> CartActions);

    public static async Task<Report> PlayAsync(ReplayStore store, DateTimeOffset from, int days, int perDay, HttpClient http,
        WebhookSender orders, CancellationToken ct)
    {
        var known = store.Orders.Where(o => o.CreatedAt < from).SelectMany(o => o.Lines).Select(l => l.Product.Id).ToHashSet();
        var baskets = store.Orders.Where(o => o.CreatedAt >= from)
            .Select(o => (Order: o, Wanted: o.Lines.Where(l => known.Contains(l.Product.Id)).Select(l => l.Product).DistinctBy(p => p.Id).ToList()))
            .Where(b => b.Wanted.Count > 0)
            .Take(days * perDay).ToList();
        var today = DateTimeOffset.UtcNow;
        int shown = 0, ordered = 0, failed = 0;
        var actions = new SortedDictionary<string, int>(StringComparer.Ordinal);
        try
        {
            for (var i = 0; i < baskets.Count; i++)
            {
                var (order, wanted) = baskets[i];
                // Day by day up to yesterday, shoppers spread from 08:00 to 20:00.
                var day = today.UtcDateTime.Date.AddDays(i / perDay - days);
                var at = new DateTimeOffset(day, TimeSpan.Zero).AddHours(8 + 12.0 * (i % perDay) / perDay);
                await SetClockAsync(http, at, ct);
                var rng = Determinism.RngFor(store.Seed, order.Id, purpose: 9);
                var visitor = "demo-" + order.Id.ToString(CultureInfo.InvariantCulture);
                try
                {
                    // Each shopper browses from an address of their own (10.x.y.z), as a storefront's shoppers do.
                    var ip = $"10.{i / 65536 % 256}.{i / 256 % 256}.{i % 256}";
                    var wantedShown = await VisitAsync(http, wanted, visitor, ip, rng, ct);
                    if (wantedShown) shown++;
                    var basket = new ReplayOrder { Id = order.Id, Number = order.Number, CreatedAt = order.CreatedAt, Customer = order.Customer, CountryCode = order.CountryCode };
                    basket.Lines.AddRange(order.Lines.Where(l => known.Contains(l.Product.Id)));
                    var cartToken = "demo-cart-" + order.Id.ToString(CultureInfo.InvariantCulture);
                    var cart = await CartAsync(http, basket, cartToken, visitor, ip, ct);
                    if (cart.Action is { } a) actions[a] = actions.GetValueOrDefault(a) + 1;
                    var p = (wantedShown ? OrderWhenShownWanted : OrderOtherwise)
                            + cart.Action switch { "nudge" or "nudge_upsell" => AfterBar, "offer" => AfterOffer, _ => 0 };
                    if (rng.NextDouble() >= p) continue;
                    var value = basket.Lines.Sum(l => l.Price * l.Quantity);
                    var discount = cart.Code is { } code ? new ShopifyDiscountCode { Code = code, Amount = Math.Round(value * cart.Percent / 100, 2) } : null;
                    var report = await orders.SendAsync([WebhookEmitter.ShopperOrder(store, basket, at.AddMinutes(10), visitor,
                        cart.Arm is null ? null : [new ShopifyAttribute("_pluginapp_arm", cart.Arm), new ShopifyAttribute("_pluginapp_action", cart.Action ?? "")],
                        discount, cartToken)], ct);
                    if (report.Failed > 0 || report.NotAttempted > 0) failed++;
                    else ordered++;
                }
                catch (HttpRequestException e)
                {
                    failed++;
                    if (failed <= 5) Console.Error.WriteLine($"  shopper {visitor}: {e.Message}");
                }
            }
        }
        finally
        {
            await SetClockAsync(http, null, CancellationToken.None);
        }
        return new Report(baskets.Count, shown, ordered, failed, actions);
    }

    /// <returns>Whether the block showed an item the shopper wanted.</returns>
    private static async Task<bool> VisitAsync(HttpClient http, List<ReplayProduct> wanted, string visitor, string ip, Random rng, CancellationToken ct)
    {
        var anchor = wanted[0];
        using var request = new HttpRequestMessage(HttpMethod.Get,
            $"apps/pluginapp/recommendations?placement=product&product_id={anchor.Id}&limit=4&visitor_id={visitor}");
        request.Headers.Add("X-Forwarded-For", ip);
        using var served = await http.SendAsync(request, ct);
        served.EnsureSuccessStatusCode();
        var answer = await served.Content.ReadFromJsonAsync<JsonElement>(ct);
        if (!answer.TryGetProperty("items", out var items) || items.GetArrayLength() == 0) return false;
        var requestId = answer.GetProperty("request_id").GetString();
        var wantedIds = wanted.Select(p => p.Id).ToHashSet();
        var any = false;
        foreach (var item in items.EnumerateArray())
        {
            await EventAsync(http, "impression", requestId, visitor, ip, item, ct);
            var isWanted = wantedIds.Contains(item.GetProperty("product_id").GetInt64());
            any |= isWanted;
            if (!isWanted && rng.NextDouble() >= StrayClick) continue;
            await EventAsync(http, "click", requestId, visitor, ip, item, ct);
            if (isWanted) await EventAsync(http, "add_to_cart", requestId, visitor, ip, item, ct);
        }
        return any;
    }

    private sealed record CartAnswer(string? Arm, string? Action, string? Code, decimal Percent);

    /// <summary>The cart page: the Cart offers block's question with the basket's lines, and its "seen" report when it had an answer.</summary>
    private static async Task<CartAnswer> CartAsync(HttpClient http, ReplayOrder basket, string cartToken, string visitor, string ip, CancellationToken ct)
    {
        // As the block does: at most 100 lines, the most valuable first.
        var lines = string.Join(',', basket.Lines.GroupBy(l => l.Product.VariantId).OrderByDescending(g => g.Sum(l => l.Price * l.Quantity)).Take(100)
            .Select(g => $"{g.Key}:{Math.Min(g.Sum(l => l.Quantity), 10_000)}"));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"apps/pluginapp/cart-offers?lines={Uri.EscapeDataString(lines)}&cart_token={cartToken}&visitor_id={visitor}");
        request.Headers.Add("X-Forwarded-For", ip);
        using var served = await http.SendAsync(request, ct);
        if (!served.IsSuccessStatusCode)
            throw new HttpRequestException($"cart offers answered {(int)served.StatusCode}: {await served.Content.ReadAsStringAsync(ct)}");
        var answer = await served.Content.ReadFromJsonAsync<JsonElement>(ct);
        if (!answer.TryGetProperty("decision_id", out var id) || id.ValueKind != JsonValueKind.String) return new CartAnswer(null, null, null, 0);
        using var seen = new HttpRequestMessage(HttpMethod.Post, "apps/pluginapp/cart-offers/seen")
        {
            Content = JsonContent.Create(new Dictionary<string, string?> { ["decision_id"] = id.GetString(), ["visitor_id"] = visitor }),
        };
        seen.Headers.Add("X-Forwarded-For", ip);
        using var reported = await http.SendAsync(seen, ct);
        if (!reported.IsSuccessStatusCode)
            throw new HttpRequestException($"cart offer seen answered {(int)reported.StatusCode}: {await reported.Content.ReadAsStringAsync(ct)}");
        var offer = answer.TryGetProperty("offer", out var o) && o.ValueKind == JsonValueKind.Object ? o : default;
        return new CartAnswer(answer.GetProperty("arm").GetString(), answer.GetProperty("action").GetString(),
            offer.ValueKind == JsonValueKind.Object ? offer.GetProperty("code").GetString() : null,
            offer.ValueKind == JsonValueKind.Object ? offer.GetProperty("percent").GetDecimal() : 0);
    }

    private static async Task EventAsync(HttpClient http, string type, string? requestId, string visitor, string ip, JsonElement item, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "apps/pluginapp/events")
        {
            Content = JsonContent.Create(new Dictionary<string, object?>
            {
                ["type"] = type, ["request_id"] = requestId, ["visitor_id"] = visitor, ["placement"] = "product",
                ["product_id"] = item.GetProperty("product_id").GetInt64(), ["variant_id"] = item.GetProperty("variant_id").GetInt64(),
                ["position"] = item.GetProperty("rank").GetInt32(), ["token"] = item.GetProperty("token").GetString(),
            }),
        };
        request.Headers.Add("X-Forwarded-For", ip);
        using var response = await http.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{type} event answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
    }

    private static async Task SetClockAsync(HttpClient http, DateTimeOffset? at, CancellationToken ct)
    {
        using var response = await http.PutAsJsonAsync("demo/clock", new { at }, ct);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"PUT /demo/clock answered {(int)response.StatusCode}: the app must run in the Demo environment");
    }
}
