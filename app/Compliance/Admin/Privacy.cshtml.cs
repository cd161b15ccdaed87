using Microsoft.EntityFrameworkCore;
using PluginApp.Admin.Shell;
using PluginApp.Data;
using PluginApp.StoreData;
using PluginApp.Stripe;

namespace PluginApp.Compliance.Admin;

/// <summary>Customer data requests and their exports, redactions done, retention, and what the app stores about people.</summary>
public sealed class PrivacyModel(AppDbContext db, PersonalDataCatalog catalog, ShopScope scope, StripeConnections stripe) : AdminPageModel
{
    /// <summary>The store's own Stripe account, whose disputes and fraud warnings become order-risk labels.</summary>
    public StripeStatus Stripe { get; private set; } = StripeStatus.None;
    public List<StripeEventView> StripeUnmatched { get; private set; } = [];

    public List<CustomerDataRequest> Requests { get; private set; } = [];

    /// <summary>Every request of the store (of the customer asked for, when one is): the page lists the newest 50.</summary>
    public int RequestCount { get; private set; }

    /// <summary>A customer id to find that customer's requests, however old (until 6 Dec 2026 only the newest 50 of the store
    /// were listed, and an older customer's export could not be downloaded from the page).</summary>
    public long? Customer { get; private set; }
    public List<(long CustomerId, DateTimeOffset At)> Redactions { get; private set; } = [];
    public int RedactedCount { get; private set; }
    public PersonalDataCatalog Catalog => catalog;

    public async Task OnGetAsync(long? customer, CancellationToken ct)
    {
        Customer = customer;
        ViewData["Title"] = "Data and privacy";
        var requests = db.CustomerDataRequests.AsNoTracking().Where(r => Customer == null || r.CustomerId == Customer);
        RequestCount = await requests.CountAsync(ct);
        Requests = await requests.OrderByDescending(r => r.RequestedAt).Take(50).ToListAsync(ct);
        var redacted = db.Customers.AsNoTracking().Where(c => c.RedactedAt != null);
        RedactedCount = await redacted.CountAsync(ct);
        Redactions = (await redacted.OrderByDescending(c => c.RedactedAt).Take(20).Select(c => new { c.Id, c.RedactedAt }).ToListAsync(ct))
            .Select(c => (c.Id, c.RedactedAt!.Value)).ToList();
        Stripe = await stripe.StatusAsync(scope.ShopId, ct);
        // Why the state in the query: filtered after taking the latest 20 of any state, the list showed fewer (or none) of the
        // unmatched events the line above it counted (until 4 Dec).
        if (Stripe.Connected) StripeUnmatched = await stripe.RecentEventsAsync(scope.ShopId, 20, ct, state: "unmatched");
    }
}
