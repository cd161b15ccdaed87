using System.Text.Json;
using PluginApp.Outbox;

namespace PluginApp.Risk;

/// <summary>
/// What order risk may do to an order in Shopify besides scoring it, as outbox call kinds: a reviewer's cancellation, and
/// the fulfillment hold on HIGH orders with its release. None is idempotent at Shopify, so each carries a check that is
/// read before any resend.
/// </summary>
public static class RiskActions
{
    /// <summary>
    /// Our holds' handle. A hold is ours when it carries this handle and Shopify says the app asking made it
    /// (heldByRequestingApp): another app may use the same handle, and its hold is neither ours to count nor to release.
    /// </summary>
    public const string HoldHandle = "pluginapp-risk";

    /// <summary>
    /// orderCancel (reason FRAUD, from a reviewer's decision). It is asynchronous and not idempotent: before a resend the
    /// order's cancelledAt is read, and a cancelled order means an earlier attempt landed. A cancellation Shopify has
    /// accepted but not finished yet still reads as not cancelled; the resend is then refused by Shopify (the order is
    /// being cancelled) and shows as failed with Shopify's words, never as a second cancellation. Its refund method is
    /// declared non-null, as the pinned version's reference (2026-07) declares it in its example (for a non-null argument, a nullable
    /// variable fails GraphQL validation, and every cancellation would; a non-null one is valid either way); the app always sends one.
    /// </summary>
    public static readonly OutboxOperation OrderCancel = new("orderCancel",
        """
        mutation CancelOrder($orderId: ID!, $reason: OrderCancelReason!, $restock: Boolean!, $refundMethod: OrderCancelRefundMethodInput!,
                             $notifyCustomer: Boolean, $staffNote: String) {
          orderCancel(orderId: $orderId, reason: $reason, restock: $restock, refundMethod: $refundMethod, notifyCustomer: $notifyCustomer,
                      staffNote: $staffNote) {
            job { id done }
            orderCancelUserErrors { field message code }
          }
        }
        """,
        new OutboxCheck("query OrderCancelledAt($id: ID!) { order(id: $id) { cancelledAt } }",
            v => new { id = v.GetProperty("orderId").GetString() },
            (data, _) => data.TryGetProperty("order", out var o) && o.ValueKind == JsonValueKind.Object
                         && o.TryGetProperty("cancelledAt", out var at) && at.ValueKind == JsonValueKind.String));

    private const string HoldsQuery = "query FulfillmentOrderHolds($id: ID!) { fulfillmentOrder(id: $id) { id status fulfillmentHolds { id handle heldByRequestingApp } } }";

    /// <summary>
    /// fulfillmentOrderHold with our handle and reason HIGH_RISK_OF_FRAUD. Whether Shopify refuses a second hold with the
    /// same handle is not documented, so it is not treated as idempotent: before a resend the fulfillment order's holds are
    /// read, and one with our handle means the earlier attempt landed.
    /// </summary>
    public static readonly OutboxOperation FulfillmentOrderHold = new("fulfillmentOrderHold",
        """
        mutation HoldFulfillmentOrder($id: ID!, $fulfillmentHold: FulfillmentOrderHoldInput!) {
          fulfillmentOrderHold(id: $id, fulfillmentHold: $fulfillmentHold) { fulfillmentHold { id handle } userErrors { field message code } }
        }
        """,
        new OutboxCheck(HoldsQuery, v => new { id = v.GetProperty("id").GetString() },
            (data, _) => Holds(data).Any(h => h.IsOurs)))
    {
        // Why: a hold that failed during an outage, retried from the Operations page after a reviewer approved the order,
        // held an approved order nobody would release (until 6 Dec 2026).
        RetryRefusal = """
            SELECT 'the order''s hold was let go since (' || CASE h.release_reason WHEN 'approved' THEN 'a reviewer approved it'
                   WHEN 'low_score' THEN 'a later score put it at LOW' ELSE 'released' END || '): holding it now would undo that'
            FROM risk_holds h WHERE h.shop_id = $1 AND h.order_id = split_part($2, ':', 2)::bigint AND h.state IN ('to_release', 'released')
            """,
    };

    /// <summary>
    /// fulfillmentOrderReleaseHold of our hold only (by its id: without ids Shopify would release every hold on the
    /// fulfillment order, other apps' too). Before a resend the holds are read: none of ours left means it landed.
    /// </summary>
    public static readonly OutboxOperation FulfillmentOrderReleaseHold = new("fulfillmentOrderReleaseHold",
        """
        mutation ReleaseFulfillmentHold($id: ID!, $holdIds: [ID!]) {
          fulfillmentOrderReleaseHold(id: $id, holdIds: $holdIds) { fulfillmentOrder { id status } userErrors { field message code } }
        }
        """,
        new OutboxCheck(HoldsQuery, v => new { id = v.GetProperty("id").GetString() },
            (data, v) =>
            {
                var ours = v.GetProperty("holdIds").EnumerateArray().Select(x => x.GetString()).ToHashSet();
                return !Holds(data).Any(h => ours.Contains(h.Id));
            }))
    {
        // Why: a release that failed, retried after a fraud verdict held the order again, let a fraud order ship (until 6 Dec 2026).
        RetryRefusal = """
            SELECT 'the order is to be held again since (a fraud verdict or a new score at HIGH): releasing it now would undo that'
            FROM risk_holds h WHERE h.shop_id = $1 AND h.order_id = split_part($2, ':', 2)::bigint AND h.state IN ('to_hold', 'held')
            """,
    };

    public static IEnumerable<OutboxOperation> All => [OrderCancel, FulfillmentOrderHold, FulfillmentOrderReleaseHold];

    /// <summary>The order's fulfillment orders with their holds (a fulfillment order with more than 20 is not one we hold).</summary>
    public const string FulfillmentOrdersQuery = """
        query OrderFulfillmentOrders($id: ID!) {
          order(id: $id) { fulfillmentOrders(first: 20) { nodes { id status fulfillmentHolds { id handle heldByRequestingApp } } } }
        }
        """;

    /// <summary>A hold on a fulfillment order: its id, handle, and whether this app made it.</summary>
    public sealed record Hold(string Id, string? Handle, bool ByThisApp)
    {
        public bool IsOurs => ByThisApp && Handle == HoldHandle;
    }

    public sealed record FulfillmentOrder(string Id, string Status, IReadOnlyList<Hold> Holds);

    public static IReadOnlyList<FulfillmentOrder> FulfillmentOrders(JsonElement data)
    {
        if (!data.TryGetProperty("order", out var o) || o.ValueKind != JsonValueKind.Object
            || !o.TryGetProperty("fulfillmentOrders", out var c) || c.ValueKind != JsonValueKind.Object) return [];
        return c.GetProperty("nodes").EnumerateArray()
            .Select(n => new FulfillmentOrder(n.GetProperty("id").GetString()!, n.GetProperty("status").GetString() ?? "", HoldsOf(n)))
            .ToList();
    }

    private static IReadOnlyList<Hold> Holds(JsonElement data) =>
        data.TryGetProperty("fulfillmentOrder", out var fo) && fo.ValueKind == JsonValueKind.Object ? HoldsOf(fo) : [];

    private static List<Hold> HoldsOf(JsonElement fo) =>
        fo.TryGetProperty("fulfillmentHolds", out var h) && h.ValueKind == JsonValueKind.Array
            ? h.EnumerateArray().Select(x => new Hold(x.GetProperty("id").GetString()!,
                x.TryGetProperty("handle", out var handle) && handle.ValueKind == JsonValueKind.String ? handle.GetString() : null,
                x.TryGetProperty("heldByRequestingApp", out var byUs) && byUs.ValueKind == JsonValueKind.True)).ToList()
            : [];
}
