using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using PluginApp.Governance;

namespace PluginApp.Recommendations;

/// <param name="Preview">The merchant's preview in the admin: always the model arm, nothing logged, no event tokens.</param>
/// <param name="Editor">With <paramref name="Preview"/>: asked by a block in the theme editor (np=2), which anyone can ask
/// for, so the serving guards still refuse a risky shopper (until 8 Dec 2026's review, a preview skipped them).</param>
/// <param name="ClientIp">The shopper's address as the app proxy forwarded it, for the serving guards; not stored by serving
/// (the cart offers keep it, hashed, on a code handed out, for that day's limit: DiscountPool.AddressHash).</param>
/// <param name="Spare">Products asked beyond <paramref name="Limit"/>, for the block to put in place of one it will not show
/// (the cart grid beside the Cart offers block); the variety rules are those of <paramref name="Limit"/> products.</param>
public sealed record RecommendationRequest(long ShopId, string Shop, string Placement, long? ProductId, long[] CartVariantIds, int Limit,
    string? VisitorHash, long? CustomerId, bool Preview = false, string? ClientIp = null, int Spare = 0, bool Editor = false)
{
    /// <summary>How many products the answer holds at most: the limit and the spares.</summary>
    public int Count => Limit + Spare;
}

/// <summary>One item as the storefront gets it: its rank and the reason in a word, never the model's raw score.</summary>
public sealed record RecommendedItem(long ProductId, long? VariantId, string Title, string? Price, string Currency, string? Image, string Url,
    string Reason, int Rank, string Token);

/// <param name="Notice">The merchant's "Why am I seeing this?" text for the block, or null for the theme's default.</param>
public sealed record RecommendationResponse(string RequestId, string Shop, string Placement, string Path, int? ModelVersion,
    ExperimentView Experiment, IReadOnlyList<RecommendedItem> Items, string? Notice = null);

public sealed record ExperimentView(string Name, string Arm);

/// <summary>
/// Candidates (cart fold-in, similar items, bought together) -> business rules -> pinned first -> diversity
/// -> top N. No model, too few candidates, an error or an overrun of the time budget: store bestsellers under
/// the same rules. The answer says which path produced it.
/// </summary>
public sealed class RecommendationService(ModelCache models, CatalogCache catalogs, AnswerCache answers, DecisionLog decisions, DecisionTokens tokens,
    PluginApp.Experiments.ExperimentStore experiments, ModelBreakers breakers, IEnumerable<IServingGuard> guards, IOptions<RecommendationOptions> options, TimeProvider clock, ILogger<RecommendationService> logger)
{
    /// <summary>What a shopper a serving guard refused is told answered: nothing, not why.</summary>
    public const string RefusedPath = "nothing";

    private readonly record struct Candidate(long ProductId, string Reason, float Score);

    /// <summary>The decision log's inputs of an answer served from <see cref="AnswerCache"/>.</summary>
    public const string CachedInputs = """{"answer":"cached"}""";

    public async Task<RecommendationResponse> RecommendAsync(RecommendationRequest req, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var requestId = DecisionLog.NewId(clock.GetUtcNow());
        var catalog = await catalogs.GetAsync(req.ShopId, ct);
        var anchors = Anchors(req, catalog);
        var arm = req.Preview ? UpsellExperiment.ModelArm
            : (await experiments.AssignAsync(req.ShopId, req.Shop, UpsellExperiment.Key, UpsellExperiment.AssignmentKey(req.VisitorHash, req.CustomerId), ct)).Arm;
        if (!catalog.Enabled && catalog.WhenOff == UpsellFeature.ShowNothing)
            return Respond(req, requestId, UpsellFeature.SwitchedOff, null, arm, [], catalog, started, anchors);
        if (!req.Preview || req.Editor)
            foreach (var guard in guards)
                if (await guard.RefuseAsync(req.ShopId, req.CustomerId, req.ClientIp, ct) is { } refused)
                    // Why the shopper reads "nothing": the guard's name (risky_session) told a suspected fraudster that an
                    // order of theirs waits for review (until 5 Dec 2026). The decision log keeps it.
                    return Respond(req, requestId, refused, null, arm, [], catalog, started, anchors, refused: true) with { Path = RefusedPath };

        var useModel = arm == UpsellExperiment.ModelArm && catalog.Enabled;
        // Switched off to show the store's bestsellers: the decision says it was the merchant's choice, not a fallback of the
        // model's (until 7 Dec 2026 it read as "store bestsellers (fallback)" with no reason).
        string[] offReasons = catalog.Enabled ? [] : [UpsellFeature.OffReason];
        // Why only product pages: a product page's answer is the same for every visitor of an arm until the catalog or models
        // change; a cart's combination rarely repeats, nor does a product page's answer for a shopper with a cart (it leaves
        // out what is in the cart, Select). The merchant's preview is always computed.
        var cacheable = !req.Preview && req.Placement == "product" && req.ProductId is not null && options.Value.AnswerCacheEntries > 0
            && InCart(req, catalog) is null;
        var shopModels = useModel || cacheable ? await models.GetAsync(req.ShopId, ct) : null;
        string[] reasons = [];
        if (shopModels is null && (useModel || cacheable))
        {
            cacheable = false;
            if (useModel) reasons = ["the model is still loading into memory; bestsellers answer until it is in"];
        }
        // A version in release: in shadow it answers beside the active one (logged only); in canary it answers its share of visitors.
        var release = useModel && !req.Preview ? shopModels?.Release : null;
        var inCanary = release is { Stage: "canary" } c && InCanary(req, c);
        var key = new AnswerCache.Key(req.ProductId ?? 0, req.Count, arm, inCanary);
        // Why a hit asks neither the model nor its breaker: nothing of the model runs, and only an answer it gave cleanly is kept
        // (a model whose file breaks is loaded again, under a new generation, so none of its earlier answers match).
        if (cacheable && answers.TryGet(req.ShopId, catalog.Version, shopModels!.Generation, key, out var hit))
            return Respond(req, requestId, hit.Path, hit.Version, arm, hit.Items, catalog, started, anchors, offReasons, output: hit.Output, shadow: hit.Shadow, cached: true);

        Composed? answer = null;
        string? output = null;
        var failed = false;
        if (release is { Stage: "canary" } canary && inCanary)
        {
            var (composed, failure) = TryRelease(canary, req, anchors, catalog);
            answer = composed;
            failed = failure is not null;
            output = Json(failure is null ? new { release = "canary", candidate = canary.Version } : (object)new { release = "canary", candidate = canary.Version, failed = failure });
        }
        if (answer is null && useModel && shopModels is not null)
        {
            if (!breakers.Allows(req.ShopId, RecommenderTrainer.Kind))
                reasons = [$"the model is cut off after repeated errors ({breakers.State(req.ShopId, RecommenderTrainer.Kind).Reason}); bestsellers answer until it is tried again"];
            else if (shopModels.Active is { } model)
            {
                var (candidates, served, failure, overranSince) = RunModel(model.Bundle, req, anchors, "the model", "; serving bestsellers");
                if (failure is not null)
                {
                    failed = true;
                    breakers.Failure(req.ShopId, RecommenderTrainer.Kind, failure, overranSince);
                }
                else
                {
                    breakers.Success(req.ShopId, RecommenderTrainer.Kind);
                    if (served is not null) answer = Compose(candidates, served, model.Version, catalog, req, anchors);
                }
            }
        }
        answer ??= Compose([], "bestsellers", null, catalog, req, anchors);

        string? shadow = null;
        TimeSpan? answeredIn = null;
        if (release is { Stage: "shadow" } s)
        {
            // Why after the answer and never into it: the candidate is compared, not shown; the response is built from `answer` only.
            // The decision's latency stays the served answer's (the shadow costs one more model call within the same budget).
            answeredIn = Stopwatch.GetElapsedTime(started);
            var (composed, failure) = TryRelease(s, req, anchors, catalog);
            failed |= failure is not null;
            shadow = Json(failure is null
                ? new { version = s.Version, path = composed!.Path, ids = composed.Items.Select(i => i.ProductId).ToArray() }
                : (object)new { version = s.Version, failed = failure });
        }

        // Why not keep an answer given after a failure or a refusal: those are passing states; the next request tries again.
        if (cacheable && !failed && reasons.Length == 0)
            answers.Put(req.ShopId, catalog.Version, shopModels!.Generation, key, new CachedAnswer(answer.Path, answer.Version, [.. answer.Items], output, shadow));
        return Respond(req, requestId, answer.Path, answer.Version, arm, answer.Items, catalog, started, anchors, reasons.Length > 0 ? reasons : offReasons, output, shadow, answeredIn);
    }

    private sealed record Composed(string Path, int? Version, List<RecommendedItem> Items);

    /// <summary>Whether the visitor is in the canary's share: a deterministic hash of the visitor (or customer), so they keep one version.</summary>
    private static bool InCanary(RecommendationRequest req, ReleaseModel canary) =>
        PluginApp.Experiments.Assignment.Unit(req.VisitorHash, req.CustomerId) is { } unit
        && PluginApp.Experiments.Assignment.Bucket(req.Shop, unit, "release:" + RecommenderTrainer.Kind) < canary.CanaryShare;

    /// <summary>The release version's answer under the same rules, or why it failed (its failures never touch the active version's breaker).</summary>
    private (Composed? Answer, string? Failure) TryRelease(ReleaseModel release, RecommendationRequest req, List<CatalogProduct> anchors, CatalogSnapshot catalog)
    {
        if (release.Bundle is null) return (null, release.LoadError ?? "no model file");
        var (candidates, served, failure, _) = RunModel(release.Bundle, req, anchors, $"the {release.Stage} version {release.Version}", "; it counts against its release");
        if (failure is not null) return (null, failure);
        return (served is null ? Compose([], "bestsellers", null, catalog, req, anchors) : Compose(candidates, served, release.Version, catalog, req, anchors), null);
    }

    /// <summary>A model's candidates within the serving budget; an error or an overrun is a failure, in words.</summary>
    /// <param name="who">The model in the log's words ("the model" for the active version).</param>
    /// <param name="then">What happens instead, in the log's words.</param>
    /// <returns>With an overrun, when the call began (<see cref="Stopwatch.GetTimestamp"/>), for the breaker.</returns>
    private (List<Candidate> Candidates, string? Served, string? Failure, long? OverranSince) RunModel(RecommenderBundle bundle, RecommendationRequest req,
        List<CatalogProduct> anchors, string who, string then)
    {
        var candidates = new List<Candidate>(64); // two sources interleaved, 30 each at the blocks' usual limits
        try
        {
            var budget = Stopwatch.GetTimestamp();
            var served = ModelCandidates(bundle, req, anchors, candidates);
            var took = Stopwatch.GetElapsedTime(budget);
            if (took <= options.Value.ServingBudget) return (candidates, served, null, null);
            logger.LogWarning("Shop {Shop}: {Who} took {Elapsed} ms, over the budget{Then}", req.Shop, who, took.TotalMilliseconds, then);
            return ([], null, $"took {took.TotalMilliseconds:0} ms, over the {options.Value.ServingBudget.TotalMilliseconds:0} ms budget", budget);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Shop {Shop}: {Who} failed{Then}", req.Shop, who, then);
            return ([], null, $"{e.GetType().Name}: {e.Message}", null);
        }
    }

    /// <summary>Rules, pinned, variety, top N; too few survivors are filled from bestsellers under the same rules.</summary>
    private Composed Compose(List<Candidate> candidates, string path, int? version, CatalogSnapshot catalog, RecommendationRequest req, List<CatalogProduct> anchors)
    {
        var items = Select(candidates, catalog, req, anchors);
        if (items.Count < req.Count)
        {
            // Too few survived the rules: fill from bestsellers under the same rules (each says "popular").
            // Why not a list: Select stops at the limit, a few of up to 200 bestsellers.
            // Why the items chosen so far go in: the fill must skip them, and count them against the cap per product type
            // (until 4 Dec the fill started a fresh count, and a store selling mostly one type showed twice the cap of it).
            var fill = Select(catalog.Bestsellers.Select((p, i) => new Candidate(p, "popular", 1f / (i + 1))), catalog, req, anchors, items);
            if (items.Count == 0) { path = "bestsellers"; version = null; }
            items.AddRange(fill.Take(req.Count - items.Count));
        }
        return new Composed(path, version, items);
    }

    private static string Json(object value) => System.Text.Json.JsonSerializer.Serialize(value);

    private RecommendationResponse Respond(RecommendationRequest req, string requestId, string path, int? version, string arm,
        IReadOnlyList<RecommendedItem> composed, CatalogSnapshot catalog, long started, List<CatalogProduct> anchors, string[]? reasons = null, string? output = null,
        string? shadow = null, TimeSpan? answeredIn = null, bool cached = false, bool refused = false)
    {
        // Why per request even for a cached answer: each token proves this answer went to this visitor.
        var now = clock.GetUtcNow();
        var items = new RecommendedItem[composed.Count];
        for (var i = 0; i < items.Length; i++)
            items[i] = composed[i] with
            {
                Rank = i + 1, Token = req.Preview ? "" : tokens.Issue(req.Shop, requestId, req.VisitorHash, req.CustomerId, composed[i].ProductId, now),
            };
        if (!req.Preview) PluginApp.Operations.OperatorMetrics.Served("recommendations", path);
        var response = new RecommendationResponse(requestId, req.Shop, req.Placement, path, version, new ExperimentView(UpsellExperiment.Key, arm), items,
            catalog.Notice);
        if (!req.Preview)
            decisions.Record(new Decision(DecisionKinds.Upsell, requestId, req.ShopId, now, path)
            {
                // A fallback is the model's arm answered without the model. Not an answer the merchant chose by switching upsells
                // off, nor a guard's refusal: until 7 Dec 2026 both counted, and a store with upsells off read as answered by
                // a fallback nearly always on the Model governance page.
                Subject = req.Placement, Fallback = version is null && arm == UpsellExperiment.ModelArm && catalog.Enabled && !refused, ModelKind = RecommenderTrainer.Kind, ModelVersion = version, Arm = arm,
                VisitorHash = req.VisitorHash, CustomerId = req.CustomerId, InputIds = anchors.Select(a => a.Id).ToArray(),
                OutputIds = Array.ConvertAll(items, i => i.ProductId), LatencyMs = (float)(answeredIn ?? Stopwatch.GetElapsedTime(started)).TotalMilliseconds,
                Reasons = reasons ?? [], Output = output, Shadow = shadow, Inputs = cached ? CachedInputs : null,
            });
        return response;
    }

    /// <summary>
    /// The products of the cart a product page's request names (the block sends Shopify's cart), when the rules keep cart
    /// items out; null when there are none.
    /// </summary>
    private static HashSet<long>? InCart(RecommendationRequest req, CatalogSnapshot catalog)
    {
        if (req.Placement != "product" || req.CartVariantIds.Length == 0 || !catalog.Rules.ExcludeInCart) return null;
        HashSet<long>? products = null;
        foreach (var v in req.CartVariantIds)
            if (catalog.ProductOfVariant.TryGetValue(v, out var pid) && pid != req.ProductId) (products ??= []).Add(pid);
        return products;
    }

    private static List<CatalogProduct> Anchors(RecommendationRequest req, CatalogSnapshot catalog)
    {
        var anchors = new List<CatalogProduct>(Math.Max(1, req.CartVariantIds.Length));
        if (req.Placement == "product" && req.ProductId is { } p)
        {
            if (catalog.Products.TryGetValue(p, out var product)) anchors.Add(product);
            return anchors;
        }
        foreach (var v in req.CartVariantIds)
            if (catalog.ProductOfVariant.TryGetValue(v, out var pid) && catalog.Products.TryGetValue(pid, out var product) && !Holds(anchors, pid))
                anchors.Add(product);
        return anchors;

        static bool Holds(List<CatalogProduct> anchors, long id)
        {
            foreach (var a in anchors) if (a.Id == id) return true;
            return false;
        }
    }

    /// <returns>The path that answered: "model" when ALS contributed, "co_occurrence", "popularity", or null when nothing did.</returns>
    private static string? ModelCandidates(RecommenderBundle bundle, RecommendationRequest req, List<CatalogProduct> anchors,
        List<Candidate> into)
    {
        var (items, weights) = InteractionBuilder.ForFoldIn(anchors.Select(a => a.Id), bundle.ItemIndex);
        var anchorSet = items.ToHashSet();
        var k = Math.Max(req.Count * 5, 30);
        // Why: the candidate that won on this store's held-out customers serves (RecommenderTraining picks it).
        if (bundle.Served == ServedCandidate.Popularity)
        {
            into.AddRange(bundle.Popularity.Recommend(k, anchorSet.Contains).Select(s => new Candidate(bundle.ProductIds[s.Item], "popular", s.Score)));
            return "popularity";
        }
        if (items.Length == 0) return null;
        var together = (bundle.Served == ServedCandidate.Als ? [] : items.Length == 1
                ? bundle.CoOccurrence.Neighbors(items[0]).Take(k).ToArray()
                : bundle.CoOccurrence.RecommendForCart(items, k, anchorSet.Contains))
            .Select(s => new Candidate(bundle.ProductIds[s.Item], "bought_together", s.Score)).ToList();
        var fromModel = (bundle.Served == ServedCandidate.CoOccurrence ? [] : req.Placement == "product" && items.Length == 1
                ? bundle.Als.SimilarItems(items[0], k).Select(s => new Candidate(bundle.ProductIds[s.Item], "similar", s.Score))
                : bundle.Als.RecommendForCart(items, k, anchorSet.Contains).Select(s => new Candidate(bundle.ProductIds[s.Item], "for_you", s.Score)))
            .ToList();
        // Why interleave: bought-together pairs are precise but few; the model covers the long tail.
        for (var i = 0; i < Math.Max(together.Count, fromModel.Count); i++)
        {
            if (i < together.Count) into.Add(together[i]);
            if (i < fromModel.Count) into.Add(fromModel[i]);
        }
        return fromModel.Count > 0 ? "model" : together.Count > 0 ? "co_occurrence" : null;
    }

    private List<RecommendedItem> Select(IEnumerable<Candidate> candidates, CatalogSnapshot catalog, RecommendationRequest req,
        List<CatalogProduct> anchors, IReadOnlyList<RecommendedItem>? already = null)
    {
        var rules = catalog.Rules;
        var anchorIds = anchors.Select(a => a.Id).ToHashSet();
        if (InCart(req, catalog) is { } inCart) anchorIds.UnionWith(inCart); // a product page's shopper is not offered her cart's products
        // A product page's answer is cached for every visitor of the page (cacheable above): its cap must not follow one
        // shopper's cart, so only a cart's answer is capped at its own variants' prices.
        var anchorPrice = AnchorPrice(anchors, req.Placement == "cart" ? req.CartVariantIds : []);
        var perType = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var maxPerType = rules.MaxPerProductType ?? Math.Max(2, (req.Limit + 1) / 2);
        var chosen = new List<RecommendedItem>();
        var seen = new HashSet<long>();
        foreach (var item in already ?? [])
        {
            seen.Add(item.ProductId);
            var type = catalog.Products.TryGetValue(item.ProductId, out var p) ? p.ProductType ?? "" : "";
            perType[type] = perType.GetValueOrDefault(type) + 1;
        }

        var pinned = rules.PinnedProductIds.Select((p, i) => new Candidate(p, "pinned", float.MaxValue - i));
        foreach (var c in pinned.Concat(candidates))
        {
            if (chosen.Count >= req.Count) break;
            if (!seen.Add(c.ProductId) || !catalog.Products.TryGetValue(c.ProductId, out var product)) continue;
            if (!Allowed(product, rules, anchorIds, anchorPrice, req.Placement)) continue;
            var type = product.ProductType ?? "";
            if (c.Reason != "pinned" && type.Length > 0 && perType.GetValueOrDefault(type) >= maxPerType) continue;
            perType[type] = perType.GetValueOrDefault(type) + 1;
            var v = product.Display;
            // The link opens the variant whose price the card shows (themes open a product's first variant, which may cost
            // more: until 6 Dec 2026 a card saying 12.00 for a sale size opened a page saying 20.00).
            var path = product.Handle is null ? $"/products/{product.Id}" : $"/products/{product.Handle}";
            chosen.Add(new RecommendedItem(product.Id, v?.Id, product.Title, v?.Price?.ToString("0.00", CultureInfo.InvariantCulture), catalog.Currency,
                product.ImageUrl, v is null ? path : string.Create(CultureInfo.InvariantCulture, $"{path}?variant={v.Id}"), c.Reason, 0, ""));
        }
        return chosen;
    }

    internal static bool Allowed(CatalogProduct p, BusinessRules rules, HashSet<long> anchors, decimal? anchorPrice, string placement) =>
        Refusal(p, rules, anchors, anchorPrice, placement) is null;

    /// <summary>The rule that keeps a product out of this answer, in words, or null when it may be shown.</summary>
    internal static string? Refusal(CatalogProduct p, BusinessRules rules, HashSet<long> anchors, decimal? anchorPrice, string placement)
    {
        if (!p.Sellable) return "not for sale";
        if (anchors.Contains(p.Id) && (placement == "product" || rules.ExcludeInCart)) return "already in the cart or on the page";
        if (rules.ExcludeOutOfStock && !p.InStock) return "out of stock";
        if (rules.BlockedProductIds.Contains(p.Id)) return "blocked product";
        if (p.Collections.Any(rules.BlockedCollectionIds.Contains)) return "in a blocked collection";
        var v = p.Display;
        if (rules.MaxPriceRatio is { } ratio && anchorPrice is { } ap && v?.Price is { } price && price > ap * ratio) return "dearer than the price ratio allows";
        // A free product with a cost (a gift) is below any floor: until 5 Dec 2026 a price of 0 skipped the rule.
        if (rules.MinMarginPercent is { } margin && v is { Price: { } sells, Cost: { } cost } && (sells > 0 ? (sells - cost) / sells * 100 < margin : cost > 0))
            return "below the margin floor";
        return null;
    }

    /// <summary>
    /// The anchors' price the price-ratio rule compares against: the dearest anchor's, each at the price of its variant in
    /// the cart (<paramref name="cartVariants"/>), else its displayed one. Why: a cart holding a product's 100.00 variant,
    /// whose cheapest in stock is 10.00, capped its upsells at twice 10.00 and showed few or none (until 7 Dec 2026).
    /// </summary>
    internal static decimal? AnchorPrice(List<CatalogProduct> anchors, long[] cartVariants)
    {
        decimal? dearest = null;
        foreach (var a in anchors)
        {
            decimal? price = null;
            foreach (var v in a.Variants)
                if (v.Price is > 0 && (price is null || v.Price > price) && Array.IndexOf(cartVariants, v.Id) >= 0) price = v.Price;
            price ??= a.Display?.Price;
            if (price is > 0 && (dearest is null || price > dearest)) dearest = price;
        }
        return dearest;
    }
}
