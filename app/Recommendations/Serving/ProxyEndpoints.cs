using Microsoft.AspNetCore.Http.HttpResults;
using System.Globalization;
using System.Net;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Install;
using PluginApp.Shopify;

namespace PluginApp.Recommendations;

/// <summary>A feature's storefront routes under the app proxy (registered with <see cref="ProxyEndpoints.AddProxyRoutes"/>).</summary>
public sealed record ProxyRoutes(string Feature, Action<RouteGroupBuilder> Map);

/// <summary>
/// The storefront side, reached through Shopify's app proxy (/apps/pluginapp/* on the shop's domain).
/// Every request carries Shopify's signature; unsigned, stale or foreign requests are refused before any work. Features
/// add their routes to the verified group through <see cref="AddProxyRoutes"/>; inside them <see cref="ShopIdOf"/> and
/// <see cref="ShopOf"/> give the shop the signature vouched for.
/// </summary>
public static class ProxyEndpoints
{
    public static IServiceCollection AddProxyRoutes(this IServiceCollection services, string feature, Action<RouteGroupBuilder> map) =>
        services.AddSingleton(new ProxyRoutes(feature, map));

    public static long ShopIdOf(HttpContext http) => (long)http.Items[ShopIdItem]!;

    public static string ShopOf(HttpContext http) => (string)http.Items[ShopItem]!;

    /// <summary>Largest event body a storefront sends (one event is a few hundred bytes).</summary>
    public const int MaxEventBytes = 4096;
    private const string ShopIdItem = "proxy.shop_id";
    private const string ShopItem = "proxy.shop";
    private const string AddressItem = "proxy.shopper_address";

    /// <summary>The shopper's address the request was limited by (<see cref="ShopperAddress"/>), read once per request.</summary>
    public static string ShopperAddressOf(HttpContext http) => (string)http.Items[AddressItem]!;
    private static readonly string[] Placements = ["product", "cart"];
    private static readonly string[] EventTypes = ["impression", "click", "add_to_cart"];

    public static IEndpointRouteBuilder MapProxy(this IEndpointRouteBuilder app)
    {
        var proxy = app.MapGroup("/proxy").AddEndpointFilter(VerifyAsync);
        proxy.MapGet("/recommendations", RecommendAsync);
        proxy.MapPost("/events", RecordEventAsync).DisableAntiforgery();
        foreach (var routes in app.ServiceProvider.GetServices<ProxyRoutes>()) routes.Map(proxy);
        return app;
    }

    /// <summary>
    /// The shopper's address as Shopify's proxy reports it: the last X-Forwarded-For entry, the one Shopify appends, once our
    /// own proxies' entries are peeled off (<c>TrustedProxies</c>); the connection's address when there is none. Why not the
    /// connection's address, as until 5 Dec 2026: behind Shopify's proxy that is Shopify's, so every anonymous shopper of a
    /// store shared one shopper's limit (120 a minute), and a busy store's blocks went blank. Entries a shopper sends
    /// herself come before Shopify's and are not read. A caller that bypasses Shopify with a signed query can name any
    /// address for the signature's 90 seconds; the store's own budget still bounds it.
    /// </summary>
    private static string ShopperAddress(HttpContext http)
    {
        var forwarded = http.Request.Headers["X-Forwarded-For"];
        var last = forwarded.Count > 0 ? forwarded[^1] : null;
        var entry = last is null ? default : last.AsSpan(last.LastIndexOf(',') + 1).Trim();
        return entry.Length is > 0 and <= 64 && System.Net.IPAddress.TryParse(entry, out var address)
            ? address.ToString() : http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
    }

    /// <summary>
    /// Signature and timestamp first, so an unsigned request costs nothing and counts against nobody; then the per-shop
    /// budget and the per-shopper limit, keyed on what Shopify's proxy vouches for: the shop, the logged-in customer, and
    /// otherwise the shopper's address as Shopify's proxy reports it (<see cref="ShopperAddress"/>).
    /// </summary>
    private static async ValueTask<object?> VerifyAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var q = http.Request.Query;
        var services = http.RequestServices;
        var options = services.GetRequiredService<IOptions<ShopifyOptions>>().Value;
        if (q["shop"].Count != 1 || q["signature"].Count != 1 || q["timestamp"].Count != 1 || !ShopDomain.TryNormalize(q["shop"], out var shop))
            return TypedResults.Unauthorized();
        if (!services.GetRequiredService<ShopifyHmac>().VerifyProxyQuery(q)) return TypedResults.Unauthorized();
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        if (!long.TryParse(q["timestamp"], NumberStyles.None, CultureInfo.InvariantCulture, out var ts)
            || (now - DateTimeOffset.FromUnixTimeSeconds(ts)).Duration() > options.ClockSkew)
            return TypedResults.Unauthorized();
        var address = ShopperAddress(http);
        http.Items[AddressItem] = address;
        var shopper = CustomerId(q["logged_in_customer_id"]) is { } customer
            ? "c:" + customer.ToString(CultureInfo.InvariantCulture)
            : "ip:" + address;
        if (!services.GetRequiredService<ProxyLimiters>().TryAcquire(shop, shopper))
        {
            http.Response.Headers.RetryAfter = "60";
            return TypedResults.Problem(title: "Too many requests", detail: "try again in a minute", statusCode: StatusCodes.Status429TooManyRequests);
        }
        var shopId = await services.GetRequiredService<ShopDirectory>().InstalledShopIdAsync(shop, http.RequestAborted);
        if (shopId is null) return TypedResults.Json(new { items = Array.Empty<object>(), path = "not_installed" }); // neutral: the block shows nothing
        http.Items[ShopIdItem] = shopId.Value;
        http.Items[ShopItem] = shop;
        http.Response.Headers.CacheControl = "no-store";
        return await next(context);
    }

    private static async Task<Results<ProxyJson.Buffered<RecommendationResponse>, ProblemHttpResult>> RecommendAsync(HttpContext http, RecommendationService service, string? placement, long? product_id,
        string? variant_ids, int? limit, string? visitor_id, string? logged_in_customer_id, string? np, int? spare, CancellationToken ct)
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
            Math.Clamp(limit ?? 4, 1, 12), PluginApp.Experiments.Assignment.VisitorHash(shop, visitor_id), Shopper(logged_in_customer_id, np),
            Preview: InEditor(np), ClientIp: ShopperAddressOf(http), Spare: Math.Clamp(spare ?? 0, 0, 1), Editor: InEditor(np));
        return ProxyJson.Answer(await service.RecommendAsync(request, ct));
    }

    public sealed record EventBody(
        [property: JsonPropertyName("type")] string? Type,
        [property: JsonPropertyName("request_id")] string? RequestId,
        [property: JsonPropertyName("visitor_id")] string? VisitorId,
        [property: JsonPropertyName("product_id")] long? ProductId,
        [property: JsonPropertyName("variant_id")] long? VariantId,
        [property: JsonPropertyName("placement")] string? Placement,
        [property: JsonPropertyName("position")] int? Position,
        [property: JsonPropertyName("token")] string? Token);

    /// <summary>
    /// An impression, click or add-to-cart of an item we served: the item's token must prove the answer was given to this
    /// visitor of this shop within the event window. Each served item counts each kind of event once. An impression is
    /// also the moment the visitor actually saw their arm of the upsell experiment: their exposure, written with the event
    /// (the arm is the visitor's assignment, as the answer was served).
    /// </summary>
    private static async Task<Results<Accepted, ProblemHttpResult, StatusCodeHttpResult>> RecordEventAsync(HttpContext http, NpgsqlDataSource db, DecisionTokens tokens,
        PluginApp.Experiments.ExperimentStore experiments, CatalogCache catalogs, TimeProvider clock,
        string? logged_in_customer_id, CancellationToken ct)
    {
        if (http.Request.ContentLength > MaxEventBytes) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);
        var buffer = new byte[MaxEventBytes + 1];
        var read = 0;
        int n;
        while (read < buffer.Length && (n = await http.Request.Body.ReadAsync(buffer.AsMemory(read), ct)) > 0) read += n;
        if (read > MaxEventBytes) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);
        EventBody? e;
        try { e = System.Text.Json.JsonSerializer.Deserialize<EventBody>(buffer.AsSpan(0, read)); }
        catch (System.Text.Json.JsonException) { return Problem("the body is not valid JSON"); }
        if (e is null || !EventTypes.Contains(e.Type)) return Problem($"type must be one of {string.Join(", ", EventTypes)}");
        if (e.ProductId is null or <= 0) return Problem("product_id is required");
        if (string.IsNullOrEmpty(e.RequestId) || e.RequestId.Length > 64 || e.VisitorId is { Length: > 128 }) return Problem("request_id is required, and request_id and visitor_id are at most 64 and 128 characters");
        if (e.Placement is not null && !Placements.Contains(e.Placement)) return Problem("placement must be product or cart");
        if (e.Position is < 0 or > 100) return Problem("position must be between 0 and 100");
        var shop = (string)http.Items[ShopItem]!;
        var visitor = PluginApp.Experiments.Assignment.VisitorHash(shop, e.VisitorId);
        var customer = CustomerId(logged_in_customer_id);
        // An answer given as a guest's (np=1: she had not agreed to analytics then) carries a guest's token; her events after
        // she agrees on the same page come logged in. They count, as the guest's the answer was (until 6 Dec 2026 each was
        // refused, 403, and the page's impressions, clicks and exposure were lost).
        if (!tokens.Verify(e.Token, shop, e.RequestId, visitor, customer, e.ProductId.Value))
        {
            if (customer is null || !tokens.Verify(e.Token, shop, e.RequestId, visitor, null, e.ProductId.Value))
                return TypedResults.Problem(title: "Event refused", detail: "the event does not refer to an item served to this visitor recently", statusCode: 403);
            customer = null;
        }
        var shopId = (long)http.Items[ShopIdItem]!;
        var now = clock.GetUtcNow();
        var insert = new NpgsqlBatchCommand("""
            INSERT INTO recommendation_events (shop_id, event_type, request_id, visitor_hash, customer_id, product_id, variant_id, placement, position, occurred_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (shop_id, request_id, product_id, event_type) DO NOTHING
            """)
        {
            Parameters =
            {
                new() { Value = shopId }, new() { Value = e.Type! }, Text(e.RequestId), Text(visitor),
                new NpgsqlParameter { Value = (object?)customer ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint },
                new() { Value = e.ProductId.Value },
                new NpgsqlParameter { Value = (object?)e.VariantId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint },
                Text(e.Placement),
                new NpgsqlParameter { Value = (object?)e.Position ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer },
                new() { Value = now },
            },
        };
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var batch = new NpgsqlBatch(conn) { BatchCommands = { insert } };
        if (e.Type == "impression" && PluginApp.Experiments.Assignment.Unit(visitor, customer) is { } unit)
        {
            var (arm, running) = await experiments.AssignAsync(shopId, shop, UpsellExperiment.Key, UpsellExperiment.AssignmentKey(visitor, customer), ct);
            // Why not while upsells are switched off: every arm is served bestsellers then, and until 5 Dec 2026 the model arm's
            // visitors of those days, and their orders, counted as the model's, pulling its measured lift toward nothing.
            // Nor for an answer served before the experiment's settings last changed (started, its shares moved): it was served
            // under the old ones (the model to everyone while stopped), not the arm the visitor is now counted in. Until 7 Dec
            // 2026 such a visitor was exposed in the arm she hashes to now, and the holdout counted visitors the model answered.
            // Why the token's time: the decision log is written after the answer, so it may not hold the answer yet.
            if (running && (await catalogs.GetAsync(shopId, ct)).Enabled
                && DecisionTokens.IssuedAt(e.Token!) >= (await experiments.GetAsync(shopId, UpsellExperiment.Key, ct)).StandingSince)
                batch.BatchCommands.Add(PluginApp.Experiments.ExperimentExposures.Command([new PluginApp.Experiments.Exposure(shopId, UpsellExperiment.Key, unit, arm, customer, now)]));
        }
        await batch.ExecuteNonQueryAsync(ct);
        return TypedResults.Accepted((string?)null);
    }

    /// <summary>The logged-in customer the proxy's signed query names, or null.</summary>
    public static long? CustomerId(string? s) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0 ? id : null;

    /// <summary>
    /// The customer a block's request is answered for: the one Shopify's proxy says is logged in, unless the block says
    /// (<c>np=1</c>) that she declined analytics in the store's consent banner (Shopify's Customer Privacy API), when she is
    /// answered as a guest, so no decision ties her carts, views or page's id to her account. Until 6 Dec 2026 every
    /// answer named her.
    /// </summary>
    public static long? Shopper(string? loggedInCustomerId, string? np) => np is "1" or "2" ? null : CustomerId(loggedInCustomerId);

    /// <summary>
    /// Whether the block asks from the theme editor (<c>np=2</c>: Shopify.designMode), where the merchant previews her own
    /// pages: answered as the admin's preview is, with nothing logged and no code handed out. Until 8 Dec 2026 each redraw
    /// as she edited was a shopper's visit in the decision log, and the cart block handed her real discount codes. A
    /// shopper who sends it herself only gets an answer that counts for nothing.
    /// </summary>
    public static bool InEditor(string? np) => np == "2";

    private static NpgsqlParameter Text(string? s) => new() { Value = (object?)s ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text };

    public static ProblemHttpResult Problem(string detail) => TypedResults.Problem(title: "Bad request", detail: detail, statusCode: 400);
}

/// <summary>snake_case JSON for the storefront script.</summary>
public static class ProxyJson
{
    /// <remarks>Why a generated serializer for the upsell answer: written on every storefront request, through reflection's
    /// converters it was a tenth of the app's CPU under load. Other types fall back to reflection, same names.</remarks>
    public static readonly System.Text.Json.JsonSerializerOptions Options = new(System.Text.Json.JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
        TypeInfoResolver = System.Text.Json.Serialization.Metadata.JsonTypeInfoResolver.Combine(
            ProxyJsonContext.Default, new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver()),
    };

    /// <summary>A storefront answer in these options' JSON, with its Content-Length (<see cref="Buffered{T}"/>).</summary>
    public static Buffered<T> Answer<T>(T value) => new(value, (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T)));

    /// <summary>
    /// A JSON answer serialized whole before it is written, so it goes out with its Content-Length in one send. Why: a
    /// streamed JSON answer goes out chunked, and its closing chunk in a second send after the endpoint returns; for the
    /// storefront's small answers that was a second system call and a chunked read on Shopify's side for each request.
    /// </summary>
    public sealed class Buffered<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) : IResult, IStatusCodeHttpResult, IValueHttpResult<T>, IContentTypeHttpResult
    {
        [ThreadStatic] private static System.Buffers.ArrayBufferWriter<byte>? _buffer;
        [ThreadStatic] private static System.Text.Json.Utf8JsonWriter? _writer;

        public T Value { get; } = value;
        public int? StatusCode => StatusCodes.Status200OK;
        public string ContentType => "application/json; charset=utf-8";

        public Task ExecuteAsync(HttpContext http)
        {
            // Why one buffer per thread: serialized and copied to the response without an await between, so no other request shares it.
            var buffer = _buffer ??= new System.Buffers.ArrayBufferWriter<byte>(4096);
            buffer.ResetWrittenCount();
            var writer = _writer ??= new System.Text.Json.Utf8JsonWriter(buffer);
            writer.Reset(buffer);
            System.Text.Json.JsonSerializer.Serialize(writer, Value, type);
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.ContentType = ContentType;
            http.Response.ContentLength = buffer.WrittenCount;
            System.Buffers.BuffersExtensions.Write(http.Response.BodyWriter, buffer.WrittenSpan);
            if (buffer.Capacity > 64 * 1024) _buffer = null; // an unusually large answer is not kept
            return Task.CompletedTask;
        }
    }
}

[JsonSourceGenerationOptions(System.Text.Json.JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RecommendationResponse))]
internal sealed partial class ProxyJsonContext : JsonSerializerContext;

/// <summary>
/// The app proxy's budgets: a token bucket per shop, so one shop's traffic (or scraping) cannot starve the others, and a
/// fixed window per shop and shopper.
/// </summary>
public sealed class ProxyLimiters(IOptions<RecommendationOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _shops = PartitionedRateLimiter.Create<string, string>(shop =>
        RateLimitPartition.GetTokenBucketLimiter(shop, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = options.Value.PerShopPerSecond, TokensPerPeriod = options.Value.PerShopPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1), QueueLimit = 0, AutoReplenishment = true,
        }));

    private readonly PartitionedRateLimiter<string> _shoppers = PartitionedRateLimiter.Create<string, string>(key =>
        RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = options.Value.PerClientPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0,
        }));

    public bool TryAcquire(string shop, string shopper)
    {
        using var shopper_ = _shoppers.AttemptAcquire($"{shop}|{shopper}");
        if (!shopper_.IsAcquired) return false;
        using var lease = _shops.AttemptAcquire(shop);
        return lease.IsAcquired;
    }

    public void Dispose()
    {
        _shops.Dispose();
        _shoppers.Dispose();
    }
}
