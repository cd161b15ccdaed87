using System.Text.Json;
using PluginApp.StoreData;
using PluginApp.Webhooks;

namespace PluginApp.Risk;

/// <summary>A Shopify Payments dispute as the disputes/create and disputes/update topics deliver it (ids and amounts, no person).</summary>
internal sealed record ShopifyDispute(long Id, long? OrderId, string Type, string Reason, string Status, DateTimeOffset? InitiatedAt,
    DateTimeOffset? FinalizedOn);

/// <summary>
/// Shopify Payments disputes as fraud labels (source 'dispute'), written in the delivery's own transaction.
/// The rule: a dispute whose reason is fraudulent or unrecognized (the cardholder says they did not make the purchase) is
/// fraud, unless the merchant won it (the bank accepted the merchant's evidence), which makes it not fraud. A dispute for
/// any other reason (not received, not as described, duplicate...) is about the service, not about who paid: it writes no
/// label. Known from: initiated_at for an open dispute; for a finished one (won, lost, accepted) the end of its finalized_on
/// day, or the delivery's time if that is earlier. A delivery whose label would be older than the one held changes nothing,
/// so a late retry of disputes/create cannot turn a won dispute back into fraud.
/// </summary>
internal static class DisputeLabels
{
    public const string Source = "dispute";
    public static readonly string[] Topics = ["disputes/create", "disputes/update"];

    private static readonly HashSet<string> FraudReasons = new(["fraudulent", "unrecognized"], StringComparer.OrdinalIgnoreCase);
    private static readonly HashSet<string> Finished = new(["won", "lost", "accepted", "charge_refunded", "prevented"], StringComparer.OrdinalIgnoreCase);

    public static IServiceCollection AddDisputeTopics(this IServiceCollection services)
    {
        foreach (var topic in Topics)
            services.AddWebhookTopic(topic, Parse, Write,
                // Why the order: Shopify's ids are unique across shops, so a dispute about an order held for another shop is a replay.
                owned: d => d.OrderId is { } order ? OwnedIds.None with { Orders = [order] } : OwnedIds.None);
        return services;
    }

    public static ShopifyDispute Parse(JsonElement p) => new(
        p.RequiredId("id"), p.OptionalId("order_id"), p.OptionalString("type") ?? "dispute", p.OptionalString("reason") ?? "unknown",
        p.OptionalString("status") ?? "unknown", p.OptionalTime("initiated_at"), p.OptionalTime("finalized_on"));

    /// <summary>Whether the dispute says fraud, and since when that is known; null when it says nothing about fraud.</summary>
    public static (bool Fraud, DateTimeOffset KnownAt)? Label(ShopifyDispute d, DateTimeOffset now)
    {
        if (!FraudReasons.Contains(d.Reason)) return null;
        var fraud = !string.Equals(d.Status, "won", StringComparison.OrdinalIgnoreCase);
        var opened = d.InitiatedAt is { } i && i <= now ? i : now;
        if (!Finished.Contains(d.Status)) return (fraud, opened);
        // finalized_on is a date: by the end of it the outcome is known (and by now, since it was delivered).
        var finished = d.FinalizedOn is { } f && f.AddDays(1) < now ? f.AddDays(1) : now;
        return (fraud, finished > opened ? finished : opened);
    }

    /// <summary>
    /// The dispute's label, its time kept while what it says stays the same: a fraud dispute lost 70 days after it opened
    /// was known as fraud from the day it opened, and the risk features of orders scored in between (fraud share of the
    /// address, the email) counted it from then. Until 5 Dec 2026 the loss moved the time to its end, so training rebuilt
    /// those orders' features without it.
    /// </summary>
    private static void Write(TopicContext c, ShopifyDispute d)
    {
        if (d.OrderId is not { } order || Label(d, c.Now) is not { } label) return;
        c.Store.Add("""
            INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at, detail) VALUES ($1, $2, 'dispute', $3, $4, $5)
            ON CONFLICT (shop_id, order_id, source) DO UPDATE SET fraud = excluded.fraud,
              labelled_at = CASE WHEN excluded.fraud <> risk_labels.fraud THEN excluded.labelled_at ELSE risk_labels.labelled_at END,
              detail = excluded.detail
            WHERE excluded.labelled_at >= risk_labels.labelled_at
            """, c.Store.ShopId, order, label.Fraud, label.KnownAt,
            $"Shopify Payments {d.Type} {d.Id}: reason {d.Reason}, status {d.Status}");
        c.Store.Add(RiskQueue.LabelChangedSql, c.Store.ShopId, order, c.Now);
    }
}
