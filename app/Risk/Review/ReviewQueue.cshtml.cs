using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using PluginApp.Admin.Shell;
using PluginApp.Data;

namespace PluginApp.Risk.Review;

/// <summary>
/// The review queue: without <c>order</c>, the flagged orders waiting for a decision, largest score × total first; with it,
/// that order's review (reasons, the customer's history, orders sharing its email or browser address, decisions) with
/// previous and next through the queue. Opening an order in the queue takes its lock for this staff user; going back to
/// the list hands it back.
/// </summary>
public sealed class ReviewQueueModel(ReviewStore store, ShopScope scope, TimeProvider clock) : AdminPageModel
{
    public DateTimeOffset Now { get; } = clock.GetUtcNow();

    public ReviewQueue Queue { get; private set; } = new([], 0);
    public ReviewDetail? Detail { get; private set; }
    public ReviewLock? Lock { get; private set; }
    /// <summary>Whether this staff user holds the order's lock.</summary>
    public bool Mine { get; private set; }
    public bool CanDecide => Detail is not null && (Lock is null || Mine);

    public async Task<IActionResult> OnGetAsync(long? order, CancellationToken ct)
    {
        ViewData["Title"] = "Review queue";
        var reviewer = ReviewQueueApi.Reviewer(HttpContext);
        if (order is null)
        {
            await store.ReleaseAsync(scope.ShopId, reviewer, null, ct);
            Queue = await store.QueueAsync(scope.ShopId, ReviewQueueApi.PageSize, ct);
            return Page();
        }
        Detail = await store.DetailAsync(scope.ShopId, order.Value, ct);
        if (Detail is null) return NotFound();
        if (Detail.Order.Awaiting)
        {
            if (await store.TakeLockAsync(scope.ShopId, order.Value, reviewer, ct) is not { } outcome) return NotFound();
            (Lock, Mine) = (outcome.Lock, outcome.Mine);
        }
        else (Lock, Mine) = (Detail.Lock, Detail.Lock?.Holder == reviewer);
        return Page();
    }

    public string OrderLink(long id) => Link("/admin/review", ("order", id.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The latest approve or fraud decision, if the order has one.</summary>
    public ReviewDecision? Verdict => Detail?.History.FirstOrDefault(d => d.Decision != "note");

    /// <summary>How many approve and fraud decisions this page shows: sent with a decision, which is refused if another came since.</summary>
    public int Verdicts => Detail?.History.Count(d => d.Decision != "note") ?? 0;

    public static string Badge(string? level) => level switch
    {
        "HIGH" => "badge--critical",
        "MEDIUM" => "badge--attention",
        "LOW" => "badge--success",
        _ => "badge--neutral",
    };

    public static string Score(double score) => Format.Percent(score, 0);

    public static string Decision(string decision) => decision switch
    {
        "approve" => "Approved",
        "fraud" => "Marked as fraud",
        _ => "Note",
    };

    /// <summary>"Marked as fraud and cancelled (refund: original payment method, restocked)" for a decision that cancelled.</summary>
    public static string Decision(ReviewDecision d) => d.Cancel is not { } c ? Decision(d.Decision) : $"Marked as fraud and cancelled ({Options(c)})";

    /// <summary>"refund: original payment method, restocked" (", customer notified" when chosen).</summary>
    public static string Options(CancelChoice c) =>
        $"refund: {(c.Refund ? "original payment method" : "none")}, {(c.Restock ? "restocked" : "not restocked")}" + (c.NotifyCustomer ? ", customer notified" : "");

    /// <summary>Where the decision's call to Shopify stands, in words ("" when it made none).</summary>
    /// <param name="cancelled">Whether the order is cancelled, as Shopify's order webhooks said.</param>
    /// <remarks>Why not "sent" alone: Shopify cancels in a background job after accepting the call, and a cancellation it then
    /// cannot carry out (a refund it could not make) leaves the order open; only the order's own webhook says it is done.
    /// Until 6 Dec 2026 the page said "Cancellation sent" either way.</remarks>
    public static string Call(ReviewDecision d, bool cancelled, DateTimeOffset now) => (d.Cancel, d.Shopify) switch
    {
        (null, _) => "",
        (_, { State: "failed" } f) => $"Cancellation failed: {f.Error}",
        // Whoever's call it was, and whether the outbox still keeps ours.
        _ when cancelled => "Cancelled in Shopify",
        (_, null) => "no longer tracked",
        (_, { State: "sent", At: { } at }) when now - at >= UnconfirmedAfter =>
            $"Cancellation sent {Format.Time(at)}, but Shopify has not said the order is cancelled: the cancellation may have failed there (a refund it could not make, say); check the order in Shopify",
        (_, { State: "sent" }) => "Cancellation sent; waiting for Shopify to say the order is cancelled",
        (_, { Error: { } e }) => $"Cancellation waiting to be retried: {e}",
        _ => "Cancellation waiting to be sent",
    };

    /// <summary>How long after the call went through a cancellation Shopify has not confirmed reads as possibly failed (its job takes seconds).</summary>
    public static readonly TimeSpan UnconfirmedAfter = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Which version scored the order, in words: the store's model (and how much of the score the rule prior still gave, on a
    /// young model), or the rules alone. Why: a reviewer weighing the reasons should know whether a model or the rules gave them
    /// (until 6 Dec 2026 the page did not say; the decision log did).
    /// </summary>
    public static string ScoredBy(ReviewOrder o) => o.ModelVersion is { } v
        ? o.PriorWeight > 0.005
            ? string.Create(CultureInfo.InvariantCulture, $"this store's order-risk model v{v}, blended with the rule prior ({o.PriorWeight * 100:0}% of the score from the rules)")
            : $"this store's order-risk model v{v}"
        : "the rule prior (no model of this store's own was in use)";

    /// <summary>"Fulfillment held", or why not ("Not held: a valued customer (12 earlier orders, 3,400.00 spent)"); null without a hold decision.</summary>
    /// <param name="currency">The shop's currency, in which the earlier spend is counted.</param>
    public static string? Hold(HoldView? h, string currency) => h?.State switch
    {
        null => null,
        RiskHolds.ToHold => "Fulfillment hold requested",
        RiskHolds.Held when h.Calls is { State: "failed" } f => $"Not held: Shopify refused the hold ({f.Error ?? "no reason given"})",
        RiskHolds.Held when h.Calls is { State: "waiting" } => "Fulfillment hold being placed",
        RiskHolds.Held => "Fulfillment held",
        RiskHolds.Released when h.Calls is { State: "failed" } f => $"Release refused by Shopify, so the hold may still be on ({f.Error ?? "no reason given"})",
        RiskHolds.Released when h.Calls is { State: "waiting" } => $"Hold being released ({Why(h.ReleaseReason)})",
        RiskHolds.NotHeldValued => string.Create(CultureInfo.InvariantCulture,
            $"Not held: a valued customer ({h.EarlierOrders} earlier order{(h.EarlierOrders == 1 ? "" : "s")}, {Format.Money(h.EarlierSpend, currency)} spent)"),
        RiskHolds.NotHeldNoneOpen => "Not held: no fulfillment order the app could hold (already fulfilled or closed, or with a fulfillment service it cannot hold)",
        RiskHolds.ToRelease => $"Hold being released ({Why(h.ReleaseReason)})",
        _ => $"Hold released ({Why(h.ReleaseReason)})",
    };

    private static string Why(string? releaseReason) => releaseReason == RiskHolds.LowScore ? "a later score put the order at LOW" : "approved";

    public static string Shares(RelatedOrder r)
    {
        var shared = new[] { (r.SameEmail, "email"), (r.SameAddress, "browser address"), (r.SameCard, "card") }.Where(x => x.Item1).Select(x => x.Item2).ToList();
        return shared.Count <= 1 ? shared.FirstOrDefault() ?? "" : string.Join(", ", shared[..^1]) + " and " + shared[^1];
    }

    public static string Label(bool? fraud) => fraud switch
    {
        true => "fraud",
        false => "not fraud",
        null => "none",
    };
}
