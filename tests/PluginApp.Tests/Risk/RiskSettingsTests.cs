using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace PluginApp.Tests.Risk;

/// <summary>The risk settings page in the browser: a backtest preview of current against proposed thresholds, saving them, holds, tenancy.</summary>
public sealed class RiskSettingsTests(ReviewFixture app) : IClassFixture<ReviewFixture>
{
    private const string Ada = "42";

    /// <summary>
    /// Eight scored orders placed in the last days (younger than the label maturity, so only labels count): scores 0.05 to
    /// 0.9, totals 10 to 80, three labelled fraud (0.05, 0.45, 0.9) and three legitimate (0.12, 0.2, 0.6).
    /// </summary>
    private static readonly (double Score, decimal Total, bool? Fraud)[] Labelled =
    [
        (0.05, 10m, true), (0.08, 20m, null), (0.12, 30m, false), (0.20, 40m, false),
        (0.30, 50m, null), (0.45, 60m, true), (0.60, 70m, false), (0.90, 80m, true),
    ];

    private async Task<long> StoreAsync(string shop, long firstId, IReadOnlyList<(double Score, decimal Total, bool? Fraud)> orders)
    {
        var shopId = await app.InstallShopAsync(shop);
        var now = app.Clock.GetUtcNow();
        for (var i = 0; i < orders.Count; i++)
        {
            var (score, total, fraud) = orders[i];
            var id = firstId + i;
            await app.ScalarAsync("INSERT INTO orders (shop_id, id, name, currency, total_price, created_at, updated_at) VALUES ($1, $2, $3, 'EUR', $4, $5, $5)",
                shopId, id, $"#{id}", total, now.AddDays(-1 - i));
            await app.ScalarAsync("""
                INSERT INTO risk_scores (shop_id, order_id, score, level, prior_weight, reasons, features, queued_at, scored_at)
                VALUES ($1, $2, $3, $4, 1, '[]', '{}', $5, $5)
                """, shopId, id, score, PluginApp.Risk.RiskThresholds.Default.Level(score), now.AddDays(-1 - i));
            if (fraud is { } f)
                await app.ScalarAsync("INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, $2, 'review', $3, $4)",
                    shopId, id, f, now.AddHours(-1));
        }
        return shopId;
    }

    private string Url(string shop) => $"{app.BaseUrl}/admin/risk?shop={shop}&embedded=1&id_token={app.Token(shop, Ada)}";

    private async Task<JsonElement> ApiAsync(string shop, string path)
    {
        var response = await app.Client.SendAsync(app.Api(HttpMethod.Get, path, shop, Ada));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private async Task<(double Medium, double High)> ThresholdsAsync(string shop)
    {
        var t = await ApiAsync(shop, "/api/admin/risk/thresholds");
        return (t.GetProperty("mediumFrom").GetDouble(), t.GetProperty("highFrom").GetDouble());
    }

    private async Task<IPage> OpenAsync(string shop, List<string> errors)
    {
        var page = await app.NewPageAsync();
        page.PageError += (_, e) => errors.Add(e);
        page.Console += (_, m) =>
        {
            // Not errors: the refused CDN (offline) and the 400 a refused field is, which Chromium logs as a failed load.
            if (m.Type == "error" && !m.Text.Contains("net::ERR_FAILED", StringComparison.Ordinal)
                && !m.Text.Contains("status of 400 (Bad Request)", StringComparison.Ordinal)) errors.Add(m.Text);
        };
        var response = await page.GotoAsync(Url(shop));
        Assert.Equal(200, response!.Status);
        return page;
    }

    [Fact]
    public async Task Preview_ShowsTheBacktestOfCurrentBesideProposed_AsTheApiCountsIt_SaveChangesThem_AndABadPairChangesNothing()
    {
        const string shop = "risk-settings-a.myshopify.com", other = "risk-settings-b.myshopify.com";
        await StoreAsync(shop, 7_400_001, Labelled);
        await StoreAsync(other, 7_410_001, [(0.95, 1000m, true), (0.95, 1000m, true), (0.95, 1000m, true)]);
        var errors = new List<string>();
        var page = await OpenAsync(shop, errors);
        Assert.Equal("Risk settings", (await page.Locator("h1").TextContentAsync())?.Trim());
        Assert.Equal(0, await page.Locator("#backtest").CountAsync());

        await page.FillAsync("#mediumFrom", "0.25");
        await page.FillAsync("#highFrom", "0.5");
        await page.ClickAsync("#preview");
        await Assertions.Expect(page.Locator("#backtest")).ToBeVisibleAsync();

        var api = await ApiAsync(shop, "/api/admin/risk/backtest?medium=0.25&high=0.5");
        foreach (var metric in new[] { "high", "medium", "flagged", "fraudCaught", "fraudMissed", "falsePositives", "revenueHeld" })
            foreach (var side in new[] { "current", "proposed" })
            {
                var shown = await page.Locator($"#backtest tr[data-metric={metric}] td[data-side={side}]").GetAttributeAsync("data-value");
                Assert.True(decimal.Parse(shown!, CultureInfo.InvariantCulture) == api.GetProperty(side).GetProperty(metric).GetDecimal(),
                    $"{metric} ({side}): the page shows {shown}, the API {api.GetProperty(side).GetProperty(metric)}");
            }
        // By hand: the defaults (0.1 / 0.4) flag six orders, three of them known legitimate; 0.25 / 0.5 flag four, one legitimate.
        var row = async (string metric) => (await page.Locator($"#backtest tr[data-metric={metric}]").InnerTextAsync()).Split('\t').Select(c => c.Trim()).ToArray();
        Assert.Equal(["Flagged in all (the review queue's load)", "6", "4"], await row("flagged"));
        Assert.Equal(["False positives (flagged, known legitimate)", "3", "1"], await row("falsePositives"));
        Assert.Equal(["Fraud caught (of 3 known)", "2", "2"], await row("fraudCaught"));
        Assert.Equal(["Revenue held for review", "EUR 330.00", "EUR 260.00"], await row("revenueHeld"));
        Assert.Equal((0.1, 0.4), await ThresholdsAsync(shop)); // a preview saves nothing
        await Admin.AdminFixture.ScreenshotAsync(page, "risk-settings-preview");

        await page.ClickAsync("#save-thresholds");
        await Assertions.Expect(page.Locator("#thresholds-title + p")).ToContainTextAsync("Now: MEDIUM from 0.25, HIGH from 0.5", new() { Timeout = 10000 });
        Assert.Equal((0.25, 0.5), await ThresholdsAsync(shop));

        await page.FillAsync("#mediumFrom", "0.6");
        await page.FillAsync("#highFrom", "0.3");
        await page.ClickAsync("#save-thresholds");
        await Assertions.Expect(page.Locator("[data-error-for=highFrom]")).ToContainTextAsync("must be above the medium threshold");
        await page.FillAsync("#mediumFrom", "abc");
        await page.ClickAsync("#save-thresholds");
        await Assertions.Expect(page.Locator("[data-error-for=mediumFrom]")).ToContainTextAsync("\"abc\" is not a number");
        Assert.Equal((0.25, 0.5), await ThresholdsAsync(shop));

        // The other shop: its own thresholds and orders, untouched and unseen.
        Assert.Equal((0.1, 0.4), await ThresholdsAsync(other));
        Assert.Equal(8, (await ApiAsync(shop, "/api/admin/risk/backtest")).GetProperty("current").GetProperty("orders").GetInt32());
        Assert.Equal(3, (await ApiAsync(other, "/api/admin/risk/backtest")).GetProperty("current").GetProperty("orders").GetInt32());
        var otherPage = await (await app.Client.GetAsync(Url(other)[app.BaseUrl!.Length..] + "&mediumFrom=0.25&highFrom=0.5")).Content.ReadAsStringAsync();
        Assert.Contains("Now: MEDIUM from 0.1, HIGH from 0.4", otherPage);
        Assert.Contains("the 3 orders scored so far", otherPage);
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }

    [Fact]
    public async Task HoldSettings_SaveOnThePage_ForThisShopOnly_AndABadCountIsRefusedBesideItsField()
    {
        const string shop = "risk-holds-a.myshopify.com", other = "risk-holds-b.myshopify.com";
        await app.InstallShopAsync(shop);
        await app.InstallShopAsync(other);
        var errors = new List<string>();
        var page = await OpenAsync(shop, errors);
        Assert.False(await page.IsCheckedAsync("#holdHigh")); // off by default
        Assert.Equal("5", await page.InputValueAsync("#valuedMinOrders"));
        Assert.Equal("1000", await page.InputValueAsync("#valuedMinSpend"));

        await page.FillAsync("#valuedMinOrders", "2.5");
        await page.ClickAsync("#holds-form button[type=submit]");
        await Assertions.Expect(page.Locator("[data-error-for=valuedMinOrders]")).ToContainTextAsync("\"2.5\" is not a whole number");
        Assert.False((await ApiAsync(shop, "/api/admin/risk/holds")).GetProperty("holdHigh").GetBoolean());

        await page.CheckAsync("#holdHigh");
        await page.FillAsync("#valuedMinOrders", "8");
        await page.ClickAsync("#holds-form button[type=submit]");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!(await ApiAsync(shop, "/api/admin/risk/holds")).GetProperty("holdHigh").GetBoolean() && DateTime.UtcNow < deadline) await Task.Delay(100);
        var saved = await ApiAsync(shop, "/api/admin/risk/holds");
        Assert.True(saved.GetProperty("holdHigh").GetBoolean());
        Assert.Equal(8, saved.GetProperty("valuedMinOrders").GetInt32());
        Assert.Equal((0.1, 0.4), await ThresholdsAsync(shop)); // saving holds leaves the thresholds as they were
        var untouched = await ApiAsync(other, "/api/admin/risk/holds");
        Assert.False(untouched.GetProperty("holdHigh").GetBoolean());
        Assert.Equal(5, untouched.GetProperty("valuedMinOrders").GetInt32());
        Assert.True(errors.Count == 0, "browser errors: " + string.Join(" | ", errors));
    }
}
