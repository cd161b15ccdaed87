using System.Globalization;
using System.Text.Encodings.Web;
using Npgsql;

namespace PluginApp.Demo;

/// <summary>
/// The demo store's product pages, where the upsell block's links lead: the product (title, price, image or a
/// placeholder) above the product block for it. The page is the template scripts/demo.sh renders once from the block's
/// Liquid (scripts/theme/render-block.mjs with scripts/theme/demo-product-page.json, whose values are the placeholders
/// below), filled here per product: no Node at request time, one rendering path for the block.
/// </summary>
public static class DemoProductPage
{
    // The placeholders of scripts/theme/demo-product-page.json.
    public const string IdPlaceholder = "__PA_PRODUCT_ID__";
    public const string TitlePlaceholder = "__PA_PRODUCT_TITLE__";
    public const string PricePlaceholder = "__PA_PRODUCT_PRICE__";
    public const string ImagePlaceholder = "__PA_PRODUCT_IMAGE__";

    /// <summary>A product without an image: the block's own placeholder glyph (pluginapp-upsells.css) on a light grey square.</summary>
    public const string NoImage = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='-8 -8 40 40' fill='none' stroke='%23999' " +
        "stroke-width='1.2' stroke-linejoin='round'%3E%3Crect x='-8' y='-8' width='40' height='40' fill='%23ececec' stroke='none'/%3E" +
        "%3Cpath d='M5 8h14l-1.2 12H6.2z'/%3E%3Cpath d='M9 8V6.5a3 3 0 0 1 6 0V8'/%3E%3C/svg%3E";

    public sealed record Product(long Id, string Title, string? ImageUrl, decimal? Price, string? Currency);

    /// <summary>The demo store's product whose handle is <paramref name="handle"/> (or, lacking a handle, whose id it is, as the block links it).</summary>
    public static async Task<Product?> FindAsync(NpgsqlDataSource db, string handle, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand($"""
            SELECT p.id, p.title, p.image_url, v.price,
                   {StoreData.ShopCurrency.Of("s.id")}
            FROM shops s
            JOIN products p ON p.shop_id = s.id
            LEFT JOIN LATERAL (SELECT price FROM variants WHERE shop_id = p.shop_id AND product_id = p.id ORDER BY id LIMIT 1) v ON true
            WHERE s.domain = $1 AND p.deleted_at IS NULL AND (p.handle = $2 OR (p.handle IS NULL AND p.id::text = $2))
            ORDER BY p.id LIMIT 1
            """);
        cmd.Parameters.AddWithValue(DemoExtensions.Shop);
        cmd.Parameters.AddWithValue(handle);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        return new Product(r.GetInt64(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetDecimal(3),
            r.IsDBNull(4) ? null : r.GetString(4));
    }

    /// <summary>The handle of the demo store's most ordered product: the one people buy together with others.</summary>
    public static async Task<string?> MostOrderedHandleAsync(NpgsqlDataSource db, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            SELECT coalesce(p.handle, p.id::text)
            FROM order_lines l JOIN products p ON p.shop_id = l.shop_id AND p.id = l.product_id
            WHERE l.shop_id = (SELECT id FROM shops WHERE domain = $1) AND p.deleted_at IS NULL
            GROUP BY p.id, p.handle ORDER BY count(*) DESC, p.id LIMIT 1
            """);
        cmd.Parameters.AddWithValue(DemoExtensions.Shop);
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    /// <summary>The template with <paramref name="product"/> in it; every value HTML-encoded (text and attributes alike).</summary>
    public static string Fill(string template, Product product)
    {
        var encode = HtmlEncoder.Default;
        var price = product.Price is { } p
            ? string.Create(CultureInfo.InvariantCulture, $"{p:0.00}{(product.Currency is { } c ? " " + c : "")}")
            : "";
        // Why only http(s): the image is data from the store, and a src is where a javascript: or data: URL would do harm.
        var image = Uri.TryCreate(product.ImageUrl, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttps || url.Scheme == Uri.UriSchemeHttp)
            ? url.AbsoluteUri
            : NoImage;
        return template
            .Replace(IdPlaceholder, product.Id.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace(TitlePlaceholder, encode.Encode(product.Title), StringComparison.Ordinal)
            .Replace(PricePlaceholder, encode.Encode(price), StringComparison.Ordinal)
            .Replace(ImagePlaceholder, encode.Encode(image), StringComparison.Ordinal);
    }
}
