using System.Globalization;
using System.Net;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Install;
using PluginApp.Shopify;

namespace PluginApp.Recommendations;

/// <summary>
/// The storefront side, reached through Shopify's app proxy (/apps/pluginapp/* on the shop's domain).
/// Every request carries Shopify's signature; unsigned, stale or foreign requests are refused before any work.
/// </summary>
public static class ProxyEndpoints
{
    public const string RateLimitPolicy = "app-proxy";
    private const string ShopIdItem = "proxy.shop_id";
    private const string ShopItem = "proxy.shop";
    private static readonly string[] Placements = ["product", "cart"];
    private static readonly string[] EventTypes = ["impression", "click", "add_to_cart"];

    public static IEndpointRouteBuilder MapProxy(this IEndpointRouteBuilder app)
    {
        var proxy = app.MapGroup("/proxy").AddEndpointFilter(VerifyAsync).RequireRateLimiting(RateLimitPolicy);
        proxy.MapGet("/recommendations", RecommendAsync);
        proxy.MapPost("/events", RecordEventAsync).DisableAntiforgery();
        return app;
    }

    /// <summary>Per shop and client address (Shopify forwards the shopper's in X-Forwarded-For).</summary>
    public static RateLimitPartition<string> Partition(HttpContext http, RecommendationOptions o)
    {
        var client = http.Request.Headers["X-Forwarded-For"].ToString().Split(',')[0].Trim();
        if (client.Length == 0) client = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var shop = http.Request.Query["shop"].ToString();
        return RateLimitPartition.GetFixedWindowLimiter($"{shop}|{client}", _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = o.PerClientPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0,
        });
    }

    private static async ValueTask<object?> VerifyAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var q = http.Request.Query;
        var services = http.RequestServices;
        var options = services.GetRequiredService<IOptions<ShopifyOptions>>().Value;
        if (q["shop"].Count != 1 || q["signature"].Count != 1 || q["timestamp"].Count != 1 || !ShopDomain.TryNormalize(q["shop"], out var shop))
            return Results.Unauthorized();
        if (!services.GetRequiredService<ShopifyHmac>().VerifyProxyQuery(q)) return Results.Unauthorized();
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        if (!long.TryParse(q["timestamp"], NumberStyles.None, CultureInfo.InvariantCulture, out var ts)
            || (now - DateTimeOffset.FromUnixTimeSeconds(ts)).Duration() > options.ClockSkew)
            return Results.Unauthorized();
        if (!services.GetRequiredService<ShopLimiter>().TryAcquire(shop)) return Results.StatusCode(StatusCodes.Status429TooManyRequests);
        var shopId = await services.GetRequiredService<ShopDirectory>().InstalledShopIdAsync(shop, http.RequestAborted);
        if (shopId is null) return Results.Json(new { items = Array.Empty<object>(), path = "not_installed" }); // neutral: the block shows nothing
        http.Items[ShopIdItem] = shopId.Value;
        http.Items[ShopItem] = shop;
        http.Response.Headers.CacheControl = "no-store";
        return await next(context);
    }

    private static async Task<IResult> RecommendAsync(HttpContext http, RecommendationService service, string? placement, long? product_id,
        string? variant_ids, int? limit, string? visitor_id, string? logged_in_customer_id, CancellationToken ct)
    {
        placement ??= product_id is null ? "cart" : "product";
        if (!Placements.Contains(placement)) return Problem($"placement must be one of {string.Join(", ", Placements)}");
        if (placement == "product" && product_id is null or <= 0) return Problem("product_id is required on a product page");
        var variants = new List<long>();
        foreach (var part in (variant_ids ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v <= 0) return Problem($"variant_ids holds '{part}', not an id");
            variants.Add(v);
        }
        if (variants.Count > 100) return Problem("variant_ids holds more than 100 ids");
        if (visitor_id?.Length > 128) return Problem("visitor_id is longer than 128 characters");
        var shop = (string)http.Items[ShopItem]!;
        var request = new RecommendationRequest((long)http.Items[ShopIdItem]!, shop, placement, product_id, variants.ToArray(),
            Math.Clamp(limit ?? 4, 1, 12), Experiments.VisitorHash(shop, visitor_id), CustomerId(logged_in_customer_id));
        return Results.Json(await service.RecommendAsync(request, ct), ProxyJson.Options);
    }

    public sealed record EventBody(
        [property: JsonPropertyName("type")] string? Type,
        [property: JsonPropertyName("request_id")] string? RequestId,
        [property: JsonPropertyName("visitor_id")] string? VisitorId,
        [property: JsonPropertyName("product_id")] long? ProductId,
        [property: JsonPropertyName("variant_id")] long? VariantId,
        [property: JsonPropertyName("placement")] string? Placement,
        [property: JsonPropertyName("position")] int? Position);

    private static async Task<IResult> RecordEventAsync(HttpContext http, NpgsqlDataSource db, TimeProvider clock, string? logged_in_customer_id,
        CancellationToken ct)
    {
        EventBody? e;
        try { e = await http.Request.ReadFromJsonAsync<EventBody>(ct); }
        catch (System.Text.Json.JsonException) { return Problem("the body is not valid JSON"); }
        if (e is null || !EventTypes.Contains(e.Type)) return Problem($"type must be one of {string.Join(", ", EventTypes)}");
        if (e.ProductId is null or <= 0) return Problem("product_id is required");
        if (e.RequestId is { Length: > 64 } || e.VisitorId is { Length: > 128 }) return Problem("request_id or visitor_id is too long");
        if (e.Placement is not null && !Placements.Contains(e.Placement)) return Problem("placement must be product or cart");
        if (e.Position is < 0 or > 100) return Problem("position must be between 0 and 100");
        var shop = (string)http.Items[ShopItem]!;
        await using var cmd = db.CreateCommand("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, variant_id, placement, position, occurred_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """);
        cmd.Parameters.AddWithValue((long)http.Items[ShopIdItem]!);
        cmd.Parameters.AddWithValue(e.Type!);
        cmd.Parameters.Add(Text(e.RequestId));
        cmd.Parameters.Add(Text(Experiments.VisitorHash(shop, e.VisitorId)));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)CustomerId(logged_in_customer_id) ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
        cmd.Parameters.AddWithValue(e.ProductId.Value);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)e.VariantId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
        cmd.Parameters.Add(Text(e.Placement));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)e.Position ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
        cmd.Parameters.AddWithValue(clock.GetUtcNow());
        await cmd.ExecuteNonQueryAsync(ct);
        return Results.StatusCode((int)HttpStatusCode.Accepted);
    }

    private static long? CustomerId(string? s) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0 ? id : null;

    private static NpgsqlParameter Text(string? s) => new() { Value = (object?)s ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text };

    private static IResult Problem(string detail) => Results.Problem(title: "Bad request", detail: detail, statusCode: 400);
}

/// <summary>snake_case JSON for the storefront script.</summary>
public static class ProxyJson
{
    public static readonly System.Text.Json.JsonSerializerOptions Options = new(System.Text.Json.JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
    };
}

/// <summary>A token bucket per shop, so one shop's traffic (or scraping) cannot starve the others.</summary>
public sealed class ShopLimiter(IOptions<RecommendationOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter = PartitionedRateLimiter.Create<string, string>(shop =>
        RateLimitPartition.GetTokenBucketLimiter(shop, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.Value.PerShopPerSecond, TokensPerPeriod = options.Value.PerShopPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1), QueueLimit = 0, AutoReplenishment = true,
        }));

    public bool TryAcquire(string shop)
    {
        using var lease = _limiter.AttemptAcquire(shop);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
