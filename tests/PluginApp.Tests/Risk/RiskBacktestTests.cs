using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Risk;

/// <summary>The threshold backtest, checked against a count by hand on six orders.</summary>
public sealed class RiskBacktestTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task Backtest_CurrentAndProposedThresholds_EqualAHandCount_AndStayInTheirShop()
    {
        const string shop = "risk-backtest.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        var now = app.Clock.GetUtcNow();
        // order, score, total, age in days, label (null: none)
        var orders = new (long Id, double Score, decimal Total, int Age, bool? Fraud)[]
        {
            (1, 0.05, 10, 5, true),   // fraud scored low
            (2, 0.25, 20, 5, false),  // approved by a reviewer
            (3, 0.70, 30, 5, true),   // fraud scored high
            (4, 0.30, 40, 5, null),   // recent, outcome unknown
            (5, 0.50, 50, 90, null),  // old enough without a fraud label: legitimate
            (6, 0.15, 60, 5, true),   // fraud scored just above the default medium threshold
        };
        foreach (var o in orders)
        {
            await app.ScalarAsync("INSERT INTO orders (shop_id, id, total_price, created_at) VALUES ($1, $2, $3, $4)", shopId, o.Id, o.Total, now.AddDays(-o.Age));
            await app.ScalarAsync("""
                INSERT INTO risk_scores (shop_id, order_id, score, level, prior_weight, reasons, features, queued_at, scored_at)
                VALUES ($1, $2, $3, 'LOW', 1, '[]', '{}', $4, $4)
                """, shopId, o.Id, o.Score, now.AddDays(-o.Age));
            if (o.Fraud is { } fraud)
                await app.ScalarAsync("INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, $2, 'review', $3, $4)",
                    shopId, o.Id, fraud, now.AddDays(-1));
        }

        var view = await GetAsync(shop, "/api/admin/risk/backtest?medium=0.2&high=0.6");

        // By hand. Current (defaults 0.10 / 0.40): flagged 2,3,4,5,6; high 3,5; caught 3,6; missed 1; false positives 2,5.
        AssertResult(view.GetProperty("current"), orders: 6, high: 2, medium: 3, flagged: 5, caught: 2, missed: 1, falsePositives: 2, held: 200m);
        // Proposed 0.2 / 0.6: flagged 2,3,4,5; high 3; caught 3; missed 1,6; false positives 2,5.
        AssertResult(view.GetProperty("proposed"), orders: 6, high: 1, medium: 3, flagged: 4, caught: 1, missed: 2, falsePositives: 2, held: 140m);
        Assert.Equal(3, view.GetProperty("knownFraud").GetInt32());
        Assert.Equal(2, view.GetProperty("knownLegitimate").GetInt32());

        var refused = await app.Client.SendAsync(app.AdminGet("/api/admin/risk/backtest?medium=0.5&high=0.3", shop));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("must be above the medium threshold",
            (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").GetProperty("highFrom")[0].GetString());

        // Saving moves "current" to the new pair; another shop sees none of these orders.
        var save = app.AdminGet("/api/admin/risk/thresholds", shop);
        save.Method = HttpMethod.Put;
        save.Content = JsonContent.Create(new { mediumFrom = 0.2, highFrom = 0.6 });
        Assert.Equal(HttpStatusCode.OK, (await app.Client.SendAsync(save)).StatusCode);
        AssertResult((await GetAsync(shop, "/api/admin/risk/backtest")).GetProperty("current"), 6, 1, 3, 4, 1, 2, 2, 140m);
        await app.InstallShopAsync("risk-backtest-other.myshopify.com");
        Assert.Equal(0, (await GetAsync("risk-backtest-other.myshopify.com", "/api/admin/risk/backtest")).GetProperty("current").GetProperty("orders").GetInt32());
    }

    private async Task<JsonElement> GetAsync(string shop, string path)
    {
        var response = await app.Client.SendAsync(app.AdminGet(path, shop));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static void AssertResult(JsonElement r, int orders, int high, int medium, int flagged, int caught, int missed, int falsePositives, decimal held)
    {
        Assert.Equal([orders, high, medium, flagged, caught, missed, falsePositives],
            new[] { "orders", "high", "medium", "flagged", "fraudCaught", "fraudMissed", "falsePositives" }.Select(p => r.GetProperty(p).GetInt32()));
        Assert.Equal(held, r.GetProperty("revenueHeld").GetDecimal());
    }
}
