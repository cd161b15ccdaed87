using System.Globalization;
using Hangfire;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using PluginApp.Admin;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Experiments;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Outbox;
using PluginApp.Recommendations;
using PluginApp.Webhooks;
using PluginApp.Admin.Switches;

namespace PluginApp.CartOffers;

/// <summary>The cart-offers experiment: a control arm shown nothing, the policy arm shown what the policy picks.</summary>
public static class CartOffersExperiment
{
    public const string Key = "cart-offers";
    public const string ControlArm = "control";
    public const string PolicyArm = "policy";
    public const string StoppedArm = PolicyArm;

    public static readonly ExperimentKind Kind = new(Key, "Cart offers", "Does choosing per cart between the bar, an upsell and an offer earn more margin than showing nothing?",
        ControlArm, [new ArmShare(ControlArm, 0.2, "nothing shown in the cart"), new ArmShare(PolicyArm, 0.8, "the action the policy picks for the cart")],
        "margin", RunsByDefault: true, StoppedArm: StoppedArm);
}

/// <summary>Hangfire entry points: topping up a shop's code pool, and a sweep over the shops with cart offers on.</summary>
public sealed class CartOfferJobs(DiscountPool pool, CartOfferSettingsStore settings, AiFeatureSwitches switches, NpgsqlDataSource db, JobLocks locks)
{
    /// <summary>
    /// Tops the pool up while the shop hands codes out: its offers on in the settings, and cart offers not switched off. Why
    /// the switch too: switched off, the block hands no code out, and the codes expiring meanwhile would otherwise be
    /// replaced, new discounts appearing in the merchant's store for a feature they turned off.
    /// </summary>
    public async Task RefillAsync(long shopId, CancellationToken ct)
    {
        var (s, _, _, _) = await settings.GetAsync(shopId, ct);
        // Off: what is still queued for creation is dropped (the sweep's quarter-hourly look catches any the switch-off missed).
        if (!s.Enabled || !s.OffersEnabled || !await switches.IsOnAsync(shopId, CartOffersFeature.Name, ct)) { await pool.CancelQueuedCreationsAsync(shopId, ct); return; }
        await pool.RefillAsync(shopId, s, ct);
    }

    public async Task SweepAsync(CancellationToken ct)
    {
        await using var held = await locks.TryAcquireAsync("cart-offers-sweep", ct);
        if (held is null) return;
        var shops = new List<long>();
        await using (var cmd = db.CreateCommand("""
            SELECT c.shop_id FROM cart_offer_settings c JOIN shops s ON s.id = c.shop_id
            WHERE s.uninstalled_at IS NULL AND (c.settings->>'enabled')::boolean
            """))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) shops.Add(r.GetInt64(0));
        foreach (var shop in shops) await RefillAsync(shop, ct);
    }
}

public static class CartOffersFeature
{
    public const string Name = "cart-offers";

    /// <summary>Cart offers as a feature the merchant can switch off in one click: the cart block then shows nothing.</summary>
    public static readonly AiFeature Switch = new(Name, "Cart offers",
        "Chooses per cart between nothing, a free-shipping bar, the bar with a product, or a single-use discount.", ["nothing"])
    {
        OffMeaning = new Dictionary<string, string> { ["nothing"] = "the cart block is not shown at all (the theme renders nothing in its place once Shopify has the app's setting); no code is handed out or created" },
        // Switched off, the codes queued for creation and not yet sent are dropped (a request's end must not leave them).
        WhenSwitchedOff = (services, shopId, _) => services.GetRequiredService<DiscountPool>().CancelQueuedCreationsAsync(shopId, CancellationToken.None),
        // Switched off, the pool was left to run down; on again, it is topped up now rather than at the next sweep.
        WhenSwitchedOn = (services, shopId) => services.GetRequiredService<IBackgroundJobClient>().Enqueue<CartOfferJobs>(j => j.RefillAsync(shopId, CancellationToken.None)),
        // Off, or not enabled in its settings (as a new install is), the cart offers block renders nothing at all
        // (theme-extension/blocks/cart-offers.liquid; in the theme editor a note says why).
        Blocks = new BlockVisibility("cart_offers_hidden", "nothing",
            async (services, shopId, ct) => !(await services.GetRequiredService<CartOfferSettingsStore>().GetAsync(shopId, ct)).Settings.Enabled),
    };

    /// <summary>
    /// Of a discount code <c>d</c>: handed out on a decision of another logged-in customer ($2 the asker), under a visitor id
    /// they share (one browser in a household). Such a code is hers, not the asker's: neither exported nor erased with the
    /// asker's (since 6 Dec 2026, as the decisions themselves).
    /// </summary>
    private const string AnotherCustomers =
        "EXISTS (SELECT 1 FROM decisions x WHERE x.shop_id = d.shop_id AND x.decision_id = d.decision_id AND x.customer_id IS NOT NULL AND x.customer_id <> $2)";

    public static IServiceCollection AddCartOffers(this IServiceCollection services)
    {
        services.AddOptions<CartOffersOptions>().BindConfiguration(CartOffersOptions.Section).ValidateOnStart();
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<CartOffersOptions>, CartOffersOptionsValidator>();
        services.AddExperiment(CartOffersExperiment.Kind);
        services.AddAiFeature(Switch);
        services.AddSingleton<CartOfferSettingsStore>();
        services.AddSingleton<DiscountPool>();
        services.AddSingleton<TaxShares>();
        services.AddSingleton<CartOfferService>();
        services.AddSingleton<CartOfferStats>();
        services.AddSingleton<ActionEffectsEstimator>();
        services.AddTransient<CartOfferJobs>();
        services.AddOutboxOperation(DiscountPool.Create);
        services.AddScopeUse("write_discounts", "creating the single-use discount codes cart offers hand out");
        services.AddIngestionStep<StoreData.OrderRows>("discount code used", (store, order, at) => DiscountPool.MarkUsed(store, order, at.Now));
        services.AddAdminPage("/admin/cart-offers", "Cart offers", 45);
        services.AddRecurringJob<CartOfferJobs>("cart-offers-pool", j => j.SweepAsync(CancellationToken.None), _ => "*/15 * * * *");
        services.AddProxyRoutes("cart offers", MapProxyRoutes);
        // Codes first: they find the customer's visitor ids through the decisions erased next. A code handed out to another
        // customer logged in is theirs, whether found by the cart or the visitor id (until 6 Dec 2026 only the visitor id's
        // were left alone). A code one of her orders used is hers too, found by the order: an order the import brought has no
        // cart token to lead to it (until 7 Dec 2026 such a code kept her cart and visitor ids, and her export left it out).
        services.AddPersonalData(new PersonalDataTable("discount_codes", ["cart_token", "visitor_hash", "address_hash"],
            $"""
            UPDATE discount_codes d SET cart_token = NULL, visitor_hash = NULL, address_hash = NULL WHERE d.shop_id = $1 AND (
              d.cart_token IN (SELECT cart_token FROM redaction_carts)
              OR d.visitor_hash IN (SELECT visitor_hash FROM redaction_visitors)
              OR d.order_id IN (SELECT id FROM redaction_orders)) AND NOT {AnotherCustomers}
            """,
            Export: $"""
                SELECT coalesce(jsonb_agg(to_jsonb(d) - 'shop_id'), '[]') FROM discount_codes d WHERE d.shop_id = $1 AND (
                  d.cart_token IN (SELECT cart_token FROM redaction_carts)
                  OR d.visitor_hash IN (SELECT visitor_hash FROM redaction_visitors)
                  OR d.order_id IN (SELECT id FROM redaction_orders)) AND NOT {AnotherCustomers}
                """));
        services.AddRetention(new RetentionRule("used or expired discount codes", TimeSpan.FromDays(180),
            "DELETE FROM discount_codes WHERE state IN ('used', 'expired') AND created_at < $1"));
        // The address a code was handed to is needed for that day's limit only (CartOffersOptions.CodesPerAddressPerDay).
        services.AddRetention(new RetentionRule("shoppers' addresses of handed-out codes", TimeSpan.FromDays(2),
            "UPDATE discount_codes SET address_hash = NULL WHERE address_hash IS NOT NULL AND handed_out_at < $1"));
        return services;
    }

    private static void MapProxyRoutes(RouteGroupBuilder proxy)
    {
        proxy.MapGet("/cart-offers", DecideAsync);
        proxy.MapPost("/cart-offers/seen", SeenAsync).DisableAntiforgery();
    }

    /// <summary>
    /// <c>lines</c>: the cart's lines as "variant:quantity" pairs separated by commas (at most 100). <c>np=1</c>: the shopper
    /// declined analytics, and is answered as a guest though logged in (<see cref="ProxyEndpoints.Shopper"/>); <c>np=2</c>:
    /// the theme editor, answered as a preview (<see cref="CartOfferRequest.Editor"/>). Until 6 Dec
    /// 2026 her cart was linked to her account in the decision log and, nightly, in cart_customers, which purchase-intent
    /// training and the abandonment sweep read. <c>paid</c>: the cart's total after its discounts over its total before them
    /// (/cart.js's total_price over original_total_price), from 0 to 1; NaN or Infinity (a cart of free lines) or absent reads as 1.
    /// </summary>
    private static async Task<Results<ProxyJson.Buffered<CartOfferResponse>, ProblemHttpResult>> DecideAsync(HttpContext http, CartOfferService service, string? lines,
        string? cart_token, string? visitor_id, string? logged_in_customer_id, string? np, string? paid, CancellationToken ct)
    {
        var share = 1m;
        if (paid is not null)
        {
            if (!double.TryParse(paid, NumberStyles.Float, CultureInfo.InvariantCulture, out var p) || p < 0)
                return ProxyEndpoints.Problem($"paid holds '{paid}', not a share of the cart's price from 0 to 1");
            // NaN or Infinity (a cart whose price before discounts is 0): none. Below a thousandth: a cart given away, whose
            // gap no product at that share closes (and whose division would overflow).
            share = !double.IsFinite(p) ? 1m : p < 0.001 ? 0m : (decimal)Math.Min(1, p);
        }
        var parsed = new List<(long, int)>();
        foreach (var part in (lines ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pair = part.Split(':');
            if (pair.Length != 2 || !long.TryParse(pair[0], NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v <= 0
                || !int.TryParse(pair[1], NumberStyles.None, CultureInfo.InvariantCulture, out var q) || q is <= 0 or > 10_000)
                return ProxyEndpoints.Problem($"lines holds '{part}', not variant:quantity");
            parsed.Add((v, q));
        }
        if (parsed.Count > 100) return ProxyEndpoints.Problem("lines holds more than 100 lines");
        // Why the token up to its '?': /cart.js gives it with the cart's key ("c1-…?key=…", since June 2024), which the carts
        // and orders webhooks do not carry; with it, no code, decision or erasure found the cart, and the key is not ours to keep.
        cart_token = cart_token?.Split('?', 2)[0];
        if (cart_token is { Length: > 128 } || visitor_id is { Length: > 128 }) return ProxyEndpoints.Problem("cart_token and visitor_id are at most 128 characters");
        var shop = ProxyEndpoints.ShopOf(http);
        cart_token = string.IsNullOrWhiteSpace(cart_token) ? null : cart_token;
        // A shopper who declined analytics keeps no visitor id (the block makes one each page view), so her arm was drawn
        // anew at each view of the same cart, and the offer or the bar came and went between reloads (until 7 Dec 2026). Her
        // cart is assigned instead, for that cart only: its token is the storefront's own cookie, kept whatever she chose,
        // and her views are not reported, so she counts in no experiment's figures. The answer stays the page's visitor's:
        // if she agrees on the page, its seen and events come under that id.
        var request = new CartOfferRequest(ProxyEndpoints.ShopIdOf(http), shop, cart_token, parsed,
            Assignment.VisitorHash(shop, visitor_id), ProxyEndpoints.Shopper(logged_in_customer_id, np), ProxyEndpoints.ShopperAddressOf(http), share,
            np == "1" && cart_token is not null ? Assignment.VisitorHash(shop, "cart:" + cart_token) : null, Editor: ProxyEndpoints.InEditor(np));
        return ProxyJson.Answer(await service.DecideAsync(request, ct));
    }

    public sealed record SeenBody(string? DecisionId, string? VisitorId);

    private static async Task<Results<Accepted, ProblemHttpResult>> SeenAsync(HttpContext http, CartOfferService service, CancellationToken ct)
    {
        SeenBody? body;
        try { body = await http.Request.ReadFromJsonAsync<SeenBody>(ProxyJson.Options, ct); }
        catch (System.Text.Json.JsonException) { return ProxyEndpoints.Problem("the body is not valid JSON"); }
        if (body?.DecisionId is not { Length: > 0 and <= 64 } id) return ProxyEndpoints.Problem("decision_id is required");
        var shop = ProxyEndpoints.ShopOf(http);
        return await service.SeenAsync(ProxyEndpoints.ShopIdOf(http), id, Assignment.VisitorHash(shop, body.VisitorId), ct)
            ? TypedResults.Accepted((string?)null)
            : TypedResults.Problem(title: "Unknown decision", detail: "no cart offer was decided for this visitor with that id", statusCode: 403);
    }

    public static RouteGroupBuilder MapCartOffersAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/cart-offers", GetSettingsAsync);
        api.MapPut("/cart-offers", PutSettingsAsync);
        api.MapGet("/cart-offers/decisions", DecisionsAsync);
        return api;
    }

    public sealed record SettingsView(int Version, CartOfferSettings Settings, DateTimeOffset? UpdatedAt, string? UpdatedBy);

    private static async Task<Ok<SettingsView>> GetSettingsAsync(CartOfferSettingsStore store, ShopScope scope, CancellationToken ct)
    {
        var (s, v, at, by) = await store.GetAsync(scope.ShopId, ct);
        return TypedResults.Ok(new SettingsView(v, s, at, by));
    }

    private static async Task<Results<Ok<SettingsView>, ValidationProblem>> PutSettingsAsync(CartOfferSettings settings, CartOfferSettingsStore store,
        CartOfferService service, ShopScope scope, HttpContext http, IBackgroundJobClient jobs, CancellationToken ct)
    {
        var problems = settings.Problems();
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        var by = PluginApp.Admin.Switches.AdminUser.Of(http);
        var before = (await store.GetAsync(scope.ShopId, ct)).Settings;
        var version = await store.SaveAsync(scope.ShopId, settings, by, ct);
        service.Invalidate(scope.ShopId);
        // Enabled or not, the block is rendered or not (BlockVisibility's own reason).
        if (before.Enabled != settings.Enabled) PluginApp.Admin.Switches.BlockVisibilityJob.Enqueue(http.RequestServices, scope.ShopId, Name);
        if (settings.Enabled && settings.OffersEnabled) jobs.Enqueue<CartOfferJobs>(j => j.RefillAsync(scope.ShopId, CancellationToken.None));
        // Codes turned off (or the block): those queued for creation and not yet sent are dropped, as when switched off.
        else await http.RequestServices.GetRequiredService<DiscountPool>().CancelQueuedCreationsAsync(scope.ShopId, CancellationToken.None);
        return TypedResults.Ok(new SettingsView(version, settings, null, by));
    }

    private static async Task<Ok<List<CartOfferDecisionView>>> DecisionsAsync(CartOfferStats stats, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await stats.RecentAsync(scope.ShopId, 50, ct));
}
