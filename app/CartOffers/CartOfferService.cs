using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hangfire;
using Npgsql;
using PluginApp.Data;
using PluginApp.Experiments;
using PluginApp.Governance;
using PluginApp.Hosting;
using PluginApp.Intent;
using PluginApp.Recommendations;
using PluginApp.Admin.Switches;

namespace PluginApp.CartOffers;

/// <summary>What the cart block asked about: the cart's lines as the storefront's cart holds them.</summary>
/// <param name="Paid">What the cart costs after its own discounts as a share of its price before them (<see cref="CartFacts.Paid"/>).</param>
/// <param name="ArmVisitorHash">Who the experiment assigns, when not the visitor: a shopper who declined analytics keeps no
/// visitor id across page views, and her cart stands for her (the answer stays the visitor's, whose later events it matches).</param>
/// <param name="Editor">Asked from the theme editor (the merchant's own preview of her cart page): answered as the policy
/// arm would answer it, with nothing logged, no exploration and no code handed out (its offer shows <see cref="EditorCode"/>).</param>
public sealed record CartOfferRequest(long ShopId, string Shop, string? CartToken, IReadOnlyList<(long VariantId, int Quantity)> Lines,
    string? VisitorHash, long? CustomerId, string? ClientIp, decimal Paid = 1, string? ArmVisitorHash = null, bool Editor = false);

public sealed record ProgressBar(decimal Threshold, decimal Value, decimal Remaining, double Progress, string Currency);

public sealed record OfferView(string Code, decimal Percent, decimal Amount, DateTimeOffset ExpiresAt, string ApplyUrl);

/// <summary>The cart block's answer. Arm and action go into the cart attributes, so the order carries them.</summary>
public sealed record CartOfferResponse(string? DecisionId, string Experiment, string Arm, string Action, ProgressBar? Bar,
    IReadOnlyList<RecommendedItem> Upsell, string? UpsellRequestId, OfferView? Offer, int? IntentModelVersion, string Path);

/// <summary>
/// Decides what one cart sees: prices the cart from the catalog, puts its visitor in an arm of the cart-offers experiment,
/// reads the purchase-intent model, lets <see cref="CartOfferPolicy"/> weigh the actions under the caps, hands out a code
/// when the offer wins, and logs the decision with its inputs, the action, the arm and the model version. Some of the
/// policy arm's carts get a random allowed action instead (logged as exploration) so the experiment can measure each
/// action's effect against the control arm (<see cref="CartOffersOptions.ExploreShare"/>).
/// </summary>
public sealed class CartOfferService(CartOfferSettingsStore settingsStore, CatalogCache catalogs, RecommendationService recommendations,
    ExperimentStore experiments, DiscountPool pool, TaxShares taxes, IIntentScorer intent, ActionEffectsEstimator effects, DecisionLog decisions, AiFeatureSwitches switches, NpgsqlDataSource db, IBackgroundJobClient jobs,
    Microsoft.Extensions.Options.IOptions<CartOffersOptions> options, TimeProvider clock, ILogger<CartOfferService> logger)
{
    /// <summary>The shop's offer settings, re-read every 15 s (this instance forgets them when the merchant saves; see <see cref="Invalidate"/>).</summary>
    private readonly ExpiringCache<long, CartOfferSettings> _settings = new(TimeSpan.FromSeconds(15), clock);

    public ValueTask<CartOfferSettings> SettingsAsync(long shopId, CancellationToken ct) =>
        _settings.GetAsync(shopId, static async (store, id) => (await store.GetAsync(id, CancellationToken.None)).Settings, settingsStore, ct);

    public void Invalidate(long shopId) => _settings.Remove(shopId);

    /// <summary>The code the theme editor's offer shows: shorter than every code the pool makes, so never one of them.</summary>
    public const string EditorCode = DiscountPool.Prefix + "PREVIEW";

    public async Task<CartOfferResponse> DecideAsync(CartOfferRequest req, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var settings = await SettingsAsync(req.ShopId, ct);
        if (!settings.Enabled || !await switches.IsOnAsync(req.ShopId, CartOffersFeature.Name, ct))
            return new CartOfferResponse(null, CartOffersExperiment.Key, CartOffersExperiment.StoppedArm, CartAction.Nothing, null, [], null, null, null, "off");
        var catalog = await catalogs.GetAsync(req.ShopId, ct);
        var tax = await taxes.ShareAsync(req.ShopId, ct);
        var facts = Price(req.Lines, catalog, settings.FreeShippingThreshold) with { Paid = req.Paid, TaxShare = tax.Share ?? 0, TaxRateUnknown = tax.RateUnknown };
        // Why the policy arm in the theme editor: until 8 Dec 2026 each redraw of the block as the merchant edited her cart page
        // was a shopper's cart, logged, explored, and handed a real code counted in the day's budget; and the control arm's
        // "nothing" would show her an empty box.
        var (arm, running) = req.Editor ? (CartOffersExperiment.PolicyArm, false)
            : await experiments.AssignAsync(req.ShopId, req.Shop, CartOffersExperiment.Key, UpsellExperiment.AssignmentKey(req.ArmVisitorHash ?? req.VisitorHash, req.CustomerId), ct);
        var decisionId = DecisionLog.NewId(clock.GetUtcNow());
        var reasons = new List<string>();
        var expected = new Dictionary<string, double>();
        var action = CartAction.Nothing;
        string? drawn = null;
        IReadOnlyList<RecommendedItem> upsell = [];
        string? upsellRequest = null;
        OfferView? offer = null;
        CartIntent? score = null;
        string? shadow = null;
        string[] allowed = [];
        if (facts.Items == 0) reasons.Add("the cart is empty");
        else
        {
            var variants = req.Lines.Select(l => l.VariantId).ToArray();
            var candidates = facts.Remaining is > 0 ? (await UpsellCandidatesAsync(req, variants, facts.PriceToReach!.Value, catalog, preview: true, ct)).Items : [];
            var best = candidates.FirstOrDefault();
            var bestVariant = best is null ? null : catalog.Products.GetValueOrDefault(best.ProductId)?.Display;
            facts = facts with { UpsellPrice = bestVariant?.Price, UpsellCost = bestVariant?.Cost };
            // The control's cart only reads the pool (it hands nothing out, so it leaves the settling to the policy's carts).
            var addressHash = DiscountPool.AddressHash(req.Shop, req.ClientIp);
            var (ready, spent, held, hadCode, addressCodes) = await pool.StateAsync(req.ShopId, req.CartToken, settings, ct,
                settle: arm != CartOffersExperiment.ControlArm && !req.Editor, addressHash);
            // A cart asking again already holds its code: that code's discount is not spent a second time, and the caps are
            // checked at its own percent (until 5 Dec 2026 at the offer's, and a cart kept being shown a 20 % code after the
            // merchant had lowered the offer and its cap to 10 %).
            var caps = new OfferCaps(settings.OffersEnabled && req.CartToken is not null, held?.Percent ?? settings.OfferPercent, settings.MaxDiscountPercent,
                settings.MarginFloorPercent, settings.DailyBudget, spent - (held?.Amount ?? 0), ready || held is not null, hadCode, held is not null,
                addressCodes, addressHash is null || req.Editor ? 0 : options.Value.CodesPerAddressPerDay);
            // What this cart could have been shown, in either arm: the measured effects compare an explored action's carts
            // with the control's carts that allowed it (ActionEffectsEstimator).
            allowed = CartOfferPolicy.Allowed(facts, caps);
            if (arm == CartOffersExperiment.ControlArm)
            {
                reasons.Add("control arm: this cart is shown nothing, so the experiment can measure what the others earn");
                if (held is not null && held.ExpiresAt > clock.GetUtcNow())
                    reasons.Add($"the cart holds a code it was handed before it was in the control ({held.Percent:0.##} % off; while the experiment was stopped, or before its shares changed): " +
                        "it keeps that discount, so the block's report of this cart does not count its visitor in the experiment");
            }
            else
                (action, drawn, upsell, upsellRequest, offer, score, shadow) = await PolicyAsync(req, settings, catalog, facts, caps, allowed, held, ready, running,
                    decisionId, variants, expected, reasons, ct);
        }
        // The bar with a nudge; and, full, on a policy cart the policy showed nothing because it already reaches free shipping,
        // so the shopper who just added the product that took her there is told so (until 5 Dec 2026 the block said it from
        // catalog prices in the browser; now the app says it, priced as every bar is).
        var reached = action == CartAction.Nothing && arm != CartOffersExperiment.ControlArm && facts.Items > 0 && facts.Remaining == 0;
        var bar = (action is CartAction.Nudge or CartAction.NudgeUpsell || reached) && facts.Threshold is { } t
            ? new ProgressBar(t, facts.Paying, facts.Remaining ?? 0, t == 0 ? 1 : Math.Min(1, (double)(facts.Paying / t)), catalog.Currency)
            : null;
        // The block counts the cart's own total after its discounts (the storefront's, in the shopper's currency), which may
        // still fall short: the reason says what the app priced, not what the shopper was told.
        if (reached && bar is not null)
            reasons.Add(facts.Paid < 1
                ? "the cart already reaches free shipping after its own discounts: the block shows the full bar"
                : "the cart already reaches free shipping at catalog prices: the block shows the full bar, or what is left after the cart's own discounts");
        // Why not the request's token once a code is handed out: the code is the cart's now, and a shopper who left the page
        // meanwhile must not leave it without the decision that explains it (until 5 Dec 2026 such a code had none).
        if (facts.Items > 0 && !req.Editor)
            await LogAsync(req, decisionId, arm, action, drawn, score, facts, expected, allowed, reasons, offer?.Code, shadow, started,
                offer is null ? ct : CancellationToken.None);
        // The intent path: the store's model, the store's base rate when it has none, or no score (empty cart, control arm).
        if (!req.Editor) PluginApp.Operations.OperatorMetrics.Served("cart_offers", score is null ? "not_scored" : score.ModelVersion is null ? "base_rate" : "intent_model");
        return new CartOfferResponse(facts.Items > 0 ? decisionId : null, CartOffersExperiment.Key, arm, action, bar, upsell, upsellRequest, offer,
            score?.ModelVersion, running ? "experiment" : "policy");
    }

    /// <summary>
    /// The policy arm's cart: read its intent, weigh the actions, explore while the experiment runs, hand out a code.
    /// <c>Drawn</c> is the action exploration drew (null when the cart did not explore), kept even when it could not be
    /// shown (no code left, no product), so the measured effects count the cart under what it drew.
    /// </summary>
    private async Task<(string Action, string? Drawn, IReadOnlyList<RecommendedItem> Upsell, string? UpsellRequest, OfferView? Offer, CartIntent Score, string? Shadow)>
        PolicyAsync(CartOfferRequest req, CartOfferSettings settings, CatalogSnapshot catalog, CartFacts facts, OfferCaps caps, string[] allowed, HandedCode? held,
            bool ready, bool running, string decisionId, long[] variants, Dictionary<string, double> expected, List<string> reasons, CancellationToken ct)
    {
        IReadOnlyList<RecommendedItem> upsell = [];
        string? upsellRequest = null, shadow = null;
        OfferView? offer = null;
        string? drawn = null;
        var score = await intent.ScoreAsync(req.ShopId, req.CartToken, facts, req.CustomerId, ct);
        var lifts = await effects.EffectsAsync(req.ShopId, ct);
        var decision = CartOfferPolicy.Decide(facts, score.Probability, caps, lifts);
        // A purchase-intent version in shadow: what the policy would have chosen on its reading, logged beside the served action
        // and the policy's own choice on the active version's reading (policy), before exploration or a missing code or
        // product changed what was served: the agreement compares the two choices (until 6 Dec 2026 the served action, so
        // the explored carts counted as disagreements neither version caused).
        if (score.Release is { Stage: "shadow" } sh)
            shadow = JsonSerializer.Serialize(sh.Probability is { } p
                ? new { version = sh.Version, subject = CartOfferPolicy.Decide(facts, p, caps, lifts).Action, intent = p, policy = decision.Action }
                : (object)new { version = sh.Version, failed = sh.Failed });
        foreach (var (k, v) in decision.Expected) expected[k] = v;
        reasons.AddRange(decision.Reasons);
        if (score.Note is { } note) reasons.Add(note);
        var action = decision.Action;
        // Exploration measures each action's effect through the experiment's exposures, so only while it runs (stopped, it
        // was margin given for nothing); by the cart, so a cart asking again gets the same draw (by the decision, a
        // shopper reloading the cart page drew again until an offer came up).
        var drawKey = req.CartToken ?? decisionId;
        if (running && !req.Editor && Explores(drawKey) && allowed.Length > 1)
        {
            var pick = allowed[(int)(Assignment.Bucket(req.Shop, drawKey, "explore-action") * allowed.Length) % allowed.Length];
            if (pick != action) reasons.Insert(0, $"exploration: {CartOfferPolicy.Words(pick)} instead, chosen at random among the allowed actions so each one's effect can be measured");
            (action, drawn) = (pick, pick);
        }
        // A cart that holds its code is shown it again while the caps and the margin floor hold at its percent: the code is
        // hers, and its discount was counted when it was handed out. Until 7 Dec 2026 each ask weighed the offer anew, and a
        // cart whose intent had risen as the shopper lingered, or whose draw changed as the cart crossed the threshold, lost
        // the code from the block while it still worked in Shopify. An exploring cart drew the offer when it was handed it.
        if (held is not null && action != CartAction.Offer && allowed.Contains(CartAction.Offer))
        {
            reasons.Insert(0, string.Create(CultureInfo.InvariantCulture,
                $"the cart holds the code it was handed ({held.Percent:0.##} % off): shown again, though the policy would now {CartOfferPolicy.Words(action)}, as its discount was counted when it was handed out"));
            (action, drawn) = (CartAction.Offer, drawn is null ? null : CartAction.Offer);
        }
        if (action == CartAction.Offer)
        {
            var amount = Math.Round(facts.Value * settings.OfferPercent / 100, 2);
            var code = held ?? (req.Editor
                ? ready ? new HandedCode(EditorCode, settings.OfferPercent, clock.GetUtcNow().AddHours(settings.CodeExpiryHours), amount) : null
                : await pool.HandOutAsync(req.ShopId, req.CartToken!, req.VisitorHash, decisionId, amount, settings, ct,
                    DiscountPool.AddressHash(req.Shop, req.ClientIp), caps.AddressCap));
            if (code is null)
            {
                reasons.Insert(0, "the offer was chosen but no code could be handed out (the pool ran dry, the budget filled or the shopper's address had its codes for the day meanwhile)");
                action = expected.Where(kv => kv.Key != CartAction.Offer).MaxBy(kv => kv.Value).Key;
            }
            else
                offer = new OfferView(code.Code, code.Percent, code.Amount, code.ExpiresAt, $"/discount/{Uri.EscapeDataString(code.Code)}?redirect=%2Fcart");
            if ((!ready || code is not null) && !req.Editor) jobs.Enqueue<CartOfferJobs>(j => j.RefillAsync(req.ShopId, CancellationToken.None));
        }
        else if (!ready && caps.Enabled && !req.Editor) jobs.Enqueue<CartOfferJobs>(j => j.RefillAsync(req.ShopId, CancellationToken.None));
        if (action == CartAction.NudgeUpsell)
        {
            var served = await UpsellCandidatesAsync(req, variants, facts.PriceToReach!.Value, catalog, preview: req.Editor, ct);
            upsell = served.Items;
            upsellRequest = served.RequestId;
            if (upsell.Count == 0) action = CartAction.Nudge;
        }
        return (action, drawn, upsell, upsellRequest, offer, score, shadow);
    }

    /// <summary>Whether a cart explores: <see cref="CartOffersOptions.ExploreShare"/> of carts, by a hash of its token (of the decision's id when it has none).</summary>
    private bool Explores(string drawn) => Assignment.Bucket("explore", drawn, CartOffersExperiment.Key) < options.Value.ExploreShare;

    /// <summary>The cart at catalog prices; lines of unknown variants are left out, a line without a cost makes the cost unknown.</summary>
    internal static CartFacts Price(IReadOnlyList<(long VariantId, int Quantity)> lines, CatalogSnapshot catalog, decimal? threshold)
    {
        decimal value = 0, cost = 0;
        var costKnown = true;
        var items = 0;
        var products = new HashSet<long>();
        foreach (var (variantId, qty) in lines)
        {
            // A line the catalog cannot price (a variant not loaded yet, a gift card) still takes the cart's discount in Shopify:
            // its cost is unknown, so no offer (until 4 Dec it was left out, and the margin floor passed on the rest of the cart).
            if (!catalog.ProductOfVariant.TryGetValue(variantId, out var productId) || !catalog.Products.TryGetValue(productId, out var product)
                || product.Variants.FirstOrDefault(x => x.Id == variantId) is not { Price: { } price } v)
            {
                costKnown = false;
                continue;
            }
            value += price * qty;
            items += qty;
            products.Add(productId);
            if (v.Cost is { } c) cost += c * qty; else costKnown = false;
        }
        return new CartFacts(value, costKnown && items > 0 ? cost : null, items, threshold, null, null, products.Count);
    }

    /// <summary>The recommender's cart answer (business rules applied) kept to products that take the cart over the threshold
    /// (priced at <paramref name="remaining"/> or more: <see cref="CartFacts.PriceToReach"/>), best first.</summary>
    private async Task<(IReadOnlyList<RecommendedItem> Items, string? RequestId)> UpsellCandidatesAsync(CartOfferRequest req, long[] variants, decimal remaining,
        CatalogSnapshot catalog, bool preview, CancellationToken ct)
    {
        var answer = await recommendations.RecommendAsync(new RecommendationRequest(req.ShopId, req.Shop, "cart", null, variants, 12, req.VisitorHash, req.CustomerId,
            Preview: preview, ClientIp: req.ClientIp, Editor: req.Editor), ct);
        var crossing = answer.Items.Where(i => decimal.TryParse(i.Price, NumberStyles.Number, CultureInfo.InvariantCulture, out var p) && p >= remaining).Take(2).ToList();
        return (crossing, preview ? null : answer.RequestId);
    }

    private async Task LogAsync(CartOfferRequest req, string decisionId, string arm, string action, string? drawn, CartIntent? score, CartFacts facts,
        Dictionary<string, double> expected, string[] allowed, List<string> reasons, string? code, string? shadow, long started, CancellationToken ct)
    {
        var explore = drawn is not null;
        try
        {
            // Why three paths: a cart of the control arm (or an empty one) is not scored at all, which is no fallback; one the
            // store's rate read because the model was missing, off or cut off is (until 4 Dec those were logged as the model's,
            // and the control's as fallbacks, so the page's fallback share hid an outage).
            await decisions.WriteAsync(new Decision(DecisionKinds.Offer, decisionId, req.ShopId, clock.GetUtcNow(),
                score is null ? "not_scored" : score.ModelVersion is null ? "store_rate" : "model")
            {
                Subject = action, Fallback = score is { ModelVersion: null }, ModelKind = IntentModelTrainer.Kind, ModelVersion = score?.ModelVersion, Arm = arm,
                CustomerId = req.CustomerId, VisitorHash = req.VisitorHash, CartToken = req.CartToken,
                Inputs = JsonSerializer.Serialize(new
                {
                    value = facts.Value, cost = facts.Cost, items = facts.Items, threshold = facts.Threshold, paid = facts.Paid, remaining = facts.Remaining, taxShare = facts.TaxShare,
                    upsellPrice = facts.UpsellPrice, intentReasons = score?.Reasons ?? [],
                }),
                // A canary's decisions say so; "failed" only when it failed (the release job counts the key).
                Output = score?.Release is { Stage: "canary" } canary
                    ? canary.Failed is { } failed
                        ? JsonSerializer.Serialize(new { action, explore, drawn, intent = score.Probability, expected, allowed, code, release = "canary", candidate = canary.Version, failed })
                        : JsonSerializer.Serialize(new { action, explore, drawn, intent = score.Probability, expected, allowed, code, release = "canary", candidate = canary.Version })
                    : JsonSerializer.Serialize(new { action, explore, drawn, intent = score?.Probability, expected, allowed, code }),
                Shadow = shadow,
                Reasons = reasons.ToArray(), LatencyMs = (float)Stopwatch.GetElapsedTime(started).TotalMilliseconds,
            }, ct);
        }
        catch (NpgsqlException e)
        {
            // The shopper still gets the answer; a code handed out stays recorded on the code itself.
            logger.LogWarning("Shop {Shop}: could not log cart offer decision {Decision}: {Message}", req.Shop, decisionId, e.Message);
        }
    }

    /// <summary>
    /// The block saw the answer: the unit's exposure to its arm (the arm comes from our log, not from the browser), if the
    /// experiment ran as it runs now when the cart was decided. Why: a page decided while the experiment was stopped (every
    /// cart the stopped arm), or before its shares changed, and seen after, recorded its visitor in an arm she was not
    /// assigned, for good, as the first exposure stands (until 7 Dec 2026); her next cart's decision exposes her rightly.
    /// Nor does a control cart that held a code still valid when it was decided (handed out while the experiment was stopped,
    /// or in the policy's arm before the shares changed): its shopper keeps the discount, and counted in the control she
    /// would bring a discounted order into the arm that is offered none (until 7 Dec 2026 she did).
    /// </summary>
    public async Task<bool> SeenAsync(long shopId, string decisionId, string? visitorHash, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT c.arm, c.customer_id, c.visitor_hash, c.decided_at,
                   EXISTS (SELECT 1 FROM discount_codes d WHERE d.shop_id = c.shop_id AND d.cart_token = c.cart_token
                           AND d.handed_out_at <= c.decided_at AND d.expires_at > c.decided_at)
            FROM cart_offer_decisions c
            WHERE c.shop_id = $1 AND c.decision_id = $2 AND c.visitor_hash IS NOT DISTINCT FROM $3
            """);
        cmd.Parameters.Add(Sql.Param(shopId));
        cmd.Parameters.Add(Sql.Param(decisionId));
        cmd.Parameters.Add(Sql.Text(visitorHash));
        string arm;
        long? customer;
        DateTimeOffset decidedAt;
        bool heldCode;
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            if (!await r.ReadAsync(ct)) return false;
            arm = r.GetString(0);
            customer = r.IsDBNull(1) ? null : r.GetInt64(1);
            decidedAt = r.GetFieldValue<DateTimeOffset>(3);
            heldCode = r.GetBoolean(4);
        }
        if (heldCode && arm == CartOffersExperiment.ControlArm) return true;
        var settings = await experiments.GetAsync(shopId, CartOffersExperiment.Key, ct);
        var decidedAsNow = decidedAt >= settings.StandingSince;
        if (settings.Running && decidedAsNow && Assignment.Unit(visitorHash, customer) is { } unit)
            await ExperimentExposures.RecordAsync(db, new Exposure(shopId, CartOffersExperiment.Key, unit, arm, customer, clock.GetUtcNow()), ct);
        return true;
    }
}
