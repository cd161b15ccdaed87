using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace PluginApp.Tests.Storefront;

/// <summary>
/// What a shopper sees for answers chosen by the test (the stand-in proxy answers /recommendations with them):
/// "Why am I seeing this?" with the merchant's notice or the locale's default, hostile notices, products without an
/// image, and an answer with nothing to show.
/// </summary>
public sealed partial class UpsellBlocksTests
{
    private const string WhySummary = ".pa-upsells__why summary";
    private const string WhyText = ".pa-upsells__why p";

    /// <summary>The explanation shoppers get when the merchant wrote none: the storefront locale's own text.</summary>
    private static string DefaultWhyText { get; } = LocaleString("upsells", "why_default");
    private static string WhyLabel { get; } = LocaleString("upsells", "why_label");

    [Fact]
    public async Task ProductBlock_AnswerWithNotice_ControlArrivesWithTheItemsAndKeyboardRevealsTheNotice()
    {
        const string notice = "We suggest these because customers who bought this mug often came back for them.\nPicked by our team, not by who you are.";
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        storefront.RecommendationsOverride = Answer(notice: notice, Item(0, Picture("mug")), Item(1, Picture("coaster")), Item(2, Picture("filter"))).ToJsonString();
        storefront.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            Assert.Equal("loading", await StateAsync(page));
            await NextFramesAsync(page);
            // Before the answer the control holds its row but is not there for anyone: not seen, not focusable.
            Assert.Equal(1, await page.Locator(WhySummary).CountAsync());
            Assert.False(await page.Locator(WhySummary).IsVisibleAsync(), "the control shows before the items");
            var before = await BoxesAsync(page);

            // Every DOM change is checked at the end of its task, before the browser can paint: cards and control together.
            await page.EvaluateAsync("""
                () => {
                  const root = document.querySelector('[data-pa-upsells]');
                  window.__paWhyWithCards = [];
                  new MutationObserver(() => {
                    const why = root.querySelector('.pa-upsells__why');
                    window.__paWhyWithCards.push({ cards: root.querySelectorAll('.pa-card[data-product-id]').length,
                      visible: !!why && getComputedStyle(why).visibility === 'visible' });
                  }).observe(root, { subtree: true, childList: true, attributes: true });
                }
                """);
            storefront.Gate.TrySetResult();
            await WaitForStateAsync(page, "ready");
            var checks = await page.EvaluateAsync<JsonElement>("() => window.__paWhyWithCards");
            Assert.Contains(checks.EnumerateArray(), c => c.GetProperty("cards").GetInt32() == 3);
            Assert.All(checks.EnumerateArray(), c => Assert.True(c.GetProperty("cards").GetInt32() > 0 == c.GetProperty("visible").GetBoolean(),
                $"the control and the cards were not shown together: {checks}"));
            Assert.True(await page.Locator(WhySummary).IsVisibleAsync(), "the control is not shown with the items");
            Assert.Equal(WhyLabel, (await page.Locator(WhySummary).TextContentAsync())?.Trim());
            Assert.False(await page.Locator(WhyText).IsVisibleAsync(), "the explanation shows before the shopper asks for it");

            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.pa-card img')].every((i) => i.complete)",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            await NextFramesAsync(page);
            await AssertNoLayoutShiftAsync(page);
            var ready = await BoxesAsync(page);
            AssertSameBox(before.Block, ready.Block, "the block");
            AssertSameBox(before.Below, ready.Below, "the content below the block");

            // Keyboard only: Tab reaches the control after the cards, Enter opens it, Space closes it.
            await StorefrontFixture.TabToAsync(page, WhySummary);
            await page.Keyboard.PressAsync("Enter");
            await page.WaitForFunctionAsync("() => document.querySelector('.pa-upsells__why').open", null, new PageWaitForFunctionOptions { Timeout = 2_000 });
            Assert.True(await page.Locator(WhyText).IsVisibleAsync(), "Enter did not reveal the explanation");
            Assert.Equal(notice, await page.Locator(WhyText).TextContentAsync());
            Assert.Equal(notice, await page.Locator(WhyText).InnerTextAsync()); // the merchant's line break is kept
            await NextFramesAsync(page);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells-why-open.png"), FullPage = true });
            // Opening pushed the content below down, and only as the shopper's own doing (not counted as layout shift).
            Assert.True((await BoxesAsync(page)).Below.Y > ready.Below.Y, "opening the explanation did not make room for it");
            await AssertNoLayoutShiftAsync(page);

            await page.Keyboard.PressAsync("Space");
            await page.WaitForFunctionAsync("() => !document.querySelector('.pa-upsells__why').open", null, new PageWaitForFunctionOptions { Timeout = 2_000 });
            Assert.False(await page.Locator(WhyText).IsVisibleAsync(), "Space did not close the explanation");
        }
        finally
        {
            storefront.Gate = null;
            storefront.RecommendationsOverride = null;
            await page.Context.CloseAsync();
        }
    }

    public static TheoryData<string, string> AnswersWithoutNotice => new()
    {
        { "cart-upsells", "absent" },
        { "product-upsells", "null" },
        { "product-upsells", "blank" },
    };

    [Theory]
    [MemberData(nameof(AnswersWithoutNotice))]
    public async Task Block_AnswerWithoutNotice_RevealsTheLocaleDefaultExplanation(string block, string notice)
    {
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        var answer = Answer(notice: null, Item(0, Picture("towel")), Item(1, null));
        if (notice == "null") answer["notice"] = null;
        if (notice == "blank") answer["notice"] = " \n ";
        storefront.RecommendationsOverride = answer.ToJsonString();
        var page = await sf.NewPageAsync();
        try
        {
            if (block == "cart-upsells")
            {
                storefront.SetCart((104, 1040, 1));
                var context = new JsonObject
                {
                    ["template"] = "cart",
                    ["settings"] = new JsonObject { ["product_count"] = Limit, ["layout"] = "carousel", ["show_add_button"] = true },
                };
                storefront.SetPage("/cart", await ThemeBlockRenderer.RenderPageAsync(block, context));
                await page.GotoAsync(storefront.BaseUrl + "/cart", new PageGotoOptions { WaitUntil = WaitUntilState.Load });
            }
            else await OpenProductPageAsync(page);
            await WaitForStateAsync(page, "ready");

            Assert.True(await page.Locator(WhySummary).IsVisibleAsync(), $"the {block} block shows items without the control");
            await page.ClickAsync(WhySummary);
            Assert.True(await page.Locator(WhyText).IsVisibleAsync(), "a click did not reveal the explanation");
            Assert.Equal(DefaultWhyText, await page.Locator(WhyText).TextContentAsync());
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath($"storefront-{block}-why-default-{notice}.png"), FullPage = true });
            await AssertNoLayoutShiftAsync(page);
        }
        finally
        {
            storefront.SetCart();
            storefront.RecommendationsOverride = null;
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task ProductBlock_HostileNotice_ShowsAsLiteralTextAndRunsNothing()
    {
        const string notice = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>\"Because\" & 'we' <b>said</b> so";
        sf.Storefront.Behaviour = ProxyBehaviour.Forward;
        sf.Storefront.RecommendationsOverride = Answer(notice, Item(0, Picture("mug")), Item(1, Picture("spoon"))).ToJsonString();
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            await WaitForStateAsync(page, "ready");
            await page.ClickAsync(WhySummary);
            await page.WaitForTimeoutAsync(300); // time for an injected image's error handler to run, were there one
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells-why-hostile.png"), FullPage = true });

            var shown = await page.EvaluateAsync<JsonElement>("""
                () => {
                  const p = document.querySelector('.pa-upsells__why p');
                  return { pwned: window.__pwned ?? null, text: p.textContent, elements: p.children.length,
                           injected: document.querySelectorAll('.pa-upsells img[src="x"], .pa-upsells script, .pa-upsells b').length };
                }
                """);
            Assert.Equal(JsonValueKind.Null, shown.GetProperty("pwned").ValueKind);
            Assert.Equal(notice, shown.GetProperty("text").GetString());
            Assert.Equal(0, shown.GetProperty("elements").GetInt32());
            Assert.Equal(0, shown.GetProperty("injected").GetInt32());
            Assert.Equal(notice, await page.Locator(WhyText).InnerTextAsync());
        }
        finally
        {
            sf.Storefront.RecommendationsOverride = null;
            await page.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task ProductBlock_ItemsWithoutImage_ShowAPlaceholderTheSizeOfAnImageAndNothingShifts()
    {
        var storefront = sf.Storefront;
        storefront.Behaviour = ProxyBehaviour.Forward;
        storefront.RecommendationsOverride = Answer(null, Item(0, Picture("mug")), Item(1, null), Item(2, Picture("teapot")), Item(3, null)).ToJsonString();
        storefront.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            await NextFramesAsync(page);
            var before = await BoxesAsync(page);
            storefront.Gate.TrySetResult();
            await WaitForStateAsync(page, "ready");
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.pa-card img')].every((i) => i.complete && i.naturalWidth > 0)",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
            await NextFramesAsync(page);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath("storefront-product-upsells-no-image.png"), FullPage = true });

            var cards = await page.EvalOnSelectorAllAsync<JsonElement>(".pa-card[data-product-id]", """
                (els) => els.map((e) => {
                  const media = e.querySelector('.pa-card__media'), title = e.querySelector('.pa-card__title');
                  const m = media.getBoundingClientRect(), img = media.querySelector('img');
                  const i = img && img.getBoundingClientRect();
                  return { img: !!img, children: media.childNodes.length, background: getComputedStyle(media).backgroundImage,
                           media: { x: m.x, y: m.y, width: m.width, height: m.height },
                           picture: i && { width: i.width, height: i.height }, titleY: title.getBoundingClientRect().y };
                })
                """);
            var list = cards.EnumerateArray().ToList();
            Assert.Equal([true, false, true, false], list.Select(c => c.GetProperty("img").GetBoolean()));
            var withImage = list[0];
            foreach (var card in list.Where(c => !c.GetProperty("img").GetBoolean()))
            {
                // Nothing broken or empty: no <img>, a drawn product glyph.
                Assert.Equal(0, card.GetProperty("children").GetInt32());
                Assert.Contains("data:image/svg+xml", card.GetProperty("background").GetString());
                // The same box as a picture's, on the same line, with titles level.
                Assert.Equal(withImage.GetProperty("media").GetProperty("width").GetDouble(), card.GetProperty("media").GetProperty("width").GetDouble(), 0.5);
                Assert.Equal(withImage.GetProperty("media").GetProperty("height").GetDouble(), card.GetProperty("media").GetProperty("height").GetDouble(), 0.5);
                Assert.Equal(withImage.GetProperty("picture").GetProperty("height").GetDouble(), card.GetProperty("media").GetProperty("height").GetDouble(), 0.5);
                Assert.Equal(withImage.GetProperty("media").GetProperty("y").GetDouble(), card.GetProperty("media").GetProperty("y").GetDouble(), 0.5);
                Assert.Equal(withImage.GetProperty("titleY").GetDouble(), card.GetProperty("titleY").GetDouble(), 0.5);
            }
            Assert.DoesNotContain("data:image/svg+xml", withImage.GetProperty("background").GetString());

            await AssertNoLayoutShiftAsync(page);
            var after = await BoxesAsync(page);
            AssertSameBox(before.Block, after.Block, "the block");
            AssertSameBox(before.Below, after.Below, "the content below the block");
        }
        finally
        {
            storefront.Gate = null;
            storefront.RecommendationsOverride = null;
            await page.Context.CloseAsync();
        }
    }

    [Theory]
    [InlineData("""{"request_id":"none","items":[],"notice":"We pick these for you."}""")]
    [InlineData("""{"request_id":"none"}""")]
    public async Task ProductBlock_AnswerWithNoItems_ShowsNothingNotEvenTheControl(string answer)
    {
        sf.Storefront.Behaviour = ProxyBehaviour.Forward;
        sf.Storefront.RecommendationsOverride = answer;
        var page = await sf.NewPageAsync();
        try
        {
            await OpenProductPageAsync(page);
            var before = await page.EvaluateAsync<JsonElement>("() => window.__paBefore");
            await WaitForStateAsync(page, "empty");
            await NextFramesAsync(page);

            var shown = await page.EvaluateAsync<JsonElement>("""
                () => {
                  const root = document.querySelector('[data-pa-upsells]');
                  return { visibility: getComputedStyle(root).visibility, children: root.children.length, text: root.textContent.trim(),
                           controls: document.querySelectorAll('.pa-upsells__why, details, summary').length };
                }
                """);
            Assert.Equal("hidden", shown.GetProperty("visibility").GetString());
            Assert.Equal(0, shown.GetProperty("children").GetInt32());
            Assert.Equal(0, shown.GetProperty("controls").GetInt32());
            Assert.Equal("", shown.GetProperty("text").GetString());
            Assert.False(await page.GetByText(WhyLabel).IsVisibleAsync());
            await AssertNoLayoutShiftAsync(page);
            AssertSameBox(Box.From(before.GetProperty("below")), (await BoxesAsync(page)).Below, "the content below the block");
        }
        finally
        {
            sf.Storefront.RecommendationsOverride = null;
            await page.Context.CloseAsync();
        }
    }

    private static JsonObject Answer(string? notice, params JsonObject[] items)
    {
        var answer = new JsonObject { ["request_id"] = "chosen-" + Guid.NewGuid().ToString("N"), ["items"] = new JsonArray(items) };
        if (notice is not null) answer["notice"] = notice;
        return answer;
    }

    private static JsonObject Item(int i, string? image) => new()
    {
        ["product_id"] = 9000 + i, ["variant_id"] = 90_000 + i, ["title"] = $"Chosen product {i + 1}", ["price"] = "12.50", ["currency"] = "USD",
        ["image"] = image, ["url"] = $"/products/chosen-{i + 1}", ["reason"] = "bought_together", ["rank"] = i + 1, ["token"] = "t",
    };

    /// <summary>A remote product picture; the fixture's browser answers it with a drawn image (no internet).</summary>
    private static string Picture(string name) => $"https://cdn.shopify.example/s/files/1/products/{name}.png";

    private static string LocaleString(string group, string key) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(ThemeBlockRenderer.ThemeExtensionDir, "locales", "en.default.json")))![group]![key]!.GetValue<string>();

    private async Task WaitForStateAsync(IPage page, string state)
    {
        try
        {
            await page.WaitForFunctionAsync($"() => document.querySelector('[data-pa-upsells]').getAttribute('data-pa-state') === '{state}'",
                null, new PageWaitForFunctionOptions { Timeout = 10_000 });
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the block stayed '{await StateAsync(page)}' instead of '{state}'; last proxied calls: {Describe(sf.Storefront.Calls.TakeLast(4))}");
        }
    }
}
