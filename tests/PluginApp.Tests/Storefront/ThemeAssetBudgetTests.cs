using System.IO.Compression;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PluginApp.Tests.Storefront;

/// <summary>
/// The blocks' assets within Theme Check's limits for theme app extensions (AssetSizeAppBlockJavaScript 10,000 B,
/// AssetSizeAppBlockCSS 100,000 B, both on the file as stored), so a test run catches what `shopify app deploy` would refuse.
/// </summary>
public sealed partial class ThemeAssetBudgetTests
{
    private const int JavaScriptLimit = 10_000;
    private const int StylesheetLimit = 100_000;

    [Theory]
    [InlineData("product-upsells")]
    [InlineData("cart-upsells")]
    [InlineData("cart-offers")]
    public void BlockAssets_AsStored_StayWithinThemeChecksLimits(string block)
    {
        var source = File.ReadAllText(Path.Combine(ThemeBlockRenderer.ThemeExtensionDir, "blocks", block + ".liquid"));
        var schema = JsonNode.Parse(SchemaPattern().Match(source).Groups[1].Value)!;
        var script = Asset(schema["javascript"]!.GetValue<string>());
        var stylesheet = Asset(schema["stylesheet"]!.GetValue<string>());

        Assert.True(script.Length <= JavaScriptLimit,
            $"{block}: its script is {script.Length} B ({Gzipped(script)} B gzipped), over Theme Check's {JavaScriptLimit} B");
        Assert.True(stylesheet.Length <= StylesheetLimit,
            $"{block}: its stylesheet is {stylesheet.Length} B ({Gzipped(stylesheet)} B gzipped), over Theme Check's {StylesheetLimit} B");
    }

    /// <summary>Every script the extension ships, gzipped as a CDN serves it, stays within the 10 KB the blocks share.</summary>
    [Fact]
    public void AllBlockScripts_Gzipped_StayWithinTenKilobytesTogether()
    {
        var scripts = Directory.GetFiles(Path.Combine(ThemeBlockRenderer.ThemeExtensionDir, "assets"), "*.js");
        Assert.True(scripts.Length >= 2, "the extension's scripts were not found");
        var total = scripts.Sum(f => Gzipped(File.ReadAllBytes(f)));
        Assert.True(total <= 10_240, $"the blocks' scripts are {total} B gzipped together ({string.Join(", ", scripts.Select(Path.GetFileName))}), over 10 KB");
    }

    private static byte[] Asset(string name) => File.ReadAllBytes(Path.Combine(ThemeBlockRenderer.ThemeExtensionDir, "assets", name));

    private static long Gzipped(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true)) gzip.Write(bytes);
        return output.Length;
    }

    [GeneratedRegex(@"{%-?\s*schema\s*-?%}([\s\S]*?){%-?\s*endschema\s*-?%}")]
    private static partial Regex SchemaPattern();
}
