using System.Globalization;
using StoreReplay;

namespace ReplayCli;

internal static class Summary
{
    public static string Line(SendReport r) => string.Create(CultureInfo.InvariantCulture,
        $"sent: {r.SentOf("products/create")} products, {r.SentOf("customers/create")} customers ({r.SentOf("customers_email_marketing_consent/update")} subscribed), {r.SentOf("orders/create")} orders ({r.LinesSent} lines, {r.SentOf("orders/paid")} paid), {r.SentOf("refunds/create")} refunds, {r.SentOf("carts/create")} carts ({r.SentOf("carts/update")} updates), {r.SentOf("checkouts/create")} checkouts ({r.SentOf("checkouts/update")} updates); {r.Sent} deliveries, {r.Failed} failed, {r.NotAttempted} not attempted; {r.Seconds:F1} s ({r.Sent / Math.Max(r.Seconds, 0.001):F0}/s)");
}
