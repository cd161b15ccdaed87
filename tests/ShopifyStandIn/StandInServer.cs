using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using WireMock;
using WireMock.Matchers;
using WireMock.RequestBuilders;
using WireMock.ResponseBuilders;
using WireMock.Server;
using WireMock.Settings;

namespace ShopifyStandIn;

/// <summary>One request the stand-in received.</summary>
public sealed record RecordedRequest(string Shop, string Path, JsonObject Body, DateTimeOffset At);

/// <summary>
/// Plays https://{shop}/admin/... on 127.0.0.1 with WireMock.Net. The app reaches it through
/// Shopify:ShopUrlTemplate = "{BaseUrl}/shops/{shop}". The default mappings (priority 100) are stateful: the token
/// endpoint, Admin GraphQL with bulk operations and recorded mutations. A test that needs a failure (429 with Retry-After,
/// 5xx, a slow answer, a dropped connection) adds its own WireMock mapping on <see cref="Mock"/> with a higher priority, e.g.
/// <c>Mock.Given(StandInServer.GraphQLRequest(shop)).AtPriority(1).RespondWith(Response.Create().WithStatusCode(503))</c>.
/// </summary>
public sealed partial class StandInServer : IAsyncDisposable
{
    private const int DefaultPriority = 100;
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _tokenCounter;

    /// <summary>The WireMock server itself, for tests that add mappings of their own.</summary>
    public WireMockServer Mock { get; }

    /// <summary>Answers Admin GraphQL instead of <see cref="Admin"/> when set (return null to fall back to it).</summary>
    public Func<GraphQLCall, StandInAnswer?>? GraphQL { get; set; }

    /// <summary>The default Admin API: bulk operations served from JSONL, mutations recorded and applied.</summary>
    public DefaultAdminApi Admin { get; } = new();

    /// <summary>Answers the token endpoint; by default a fresh expiring offline token pair per call.</summary>
    public Func<string, JsonObject, StandInAnswer>? TokenEndpoint { get; set; }

    public string ClientSecret { get; }
    public string BaseUrl { get; }
    public string ShopUrlTemplate => BaseUrl + "/shops/{shop}";
    public IReadOnlyCollection<RecordedRequest> Requests => _requests;

    /// <summary>Fires when the stand-in running on its own is asked to stop.</summary>
    public CancellationToken Stopping => _stopping.Token;

    private StandInServer(string clientSecret, int port)
    {
        ClientSecret = clientSecret;
        Mock = WireMockServer.Start(new WireMockServerSettings
        {
            Urls = [$"http://127.0.0.1:{port}"], StartAdminInterface = false, MaxRequestLogCount = 1000,
            PreWireMockMiddlewareInit = app => ((IApplicationBuilder)app).Use(ServeBulkFileAsync),
        });
        BaseUrl = Mock.Url!.TrimEnd('/');

        Mock.Given(Request.Create().WithPath(new RegexMatcher(@"^/shops/[^/]+/admin/oauth/access_token$")).UsingPost())
            .AtPriority(DefaultPriority)
            .RespondWith(Response.Create().WithCallback(req => Token(req).ToResponseAsync()));
        Mock.Given(GraphQLRequest())
            .AtPriority(DefaultPriority)
            .RespondWith(Response.Create().WithCallback(req => GraphQLAnswer(req).ToResponseAsync()));
    }

    /// <summary>
    /// A finished bulk operation's file (GET /bulk/{key}.jsonl, the operation's url), streamed in 64 KB writes as a storage
    /// server sends it, ahead of WireMock's mappings. Why not a mapping: WireMock writes a body in one write, and Kestrel
    /// copied the whole file (230 MB in the backfill benchmark) into its output buffers before the first byte left, then
    /// held them while the app read: 3-3.6 s of CPU on the benchmark's two cores during one backfill; streamed, 0.2-0.3 s to a
    /// reader at full speed, 1.3 s at the app's pace. Shopify's files come from its storage, whose work is not on the app's
    /// machine. A test cannot replace these downloads with a mapping of its own.
    /// </summary>
    private async Task ServeBulkFileAsync(HttpContext context, Func<Task> next)
    {
        if (!HttpMethods.IsGet(context.Request.Method) || BulkKey().Match(context.Request.Path.Value ?? "") is not { Success: true } match)
        {
            await next();
            return;
        }
        if (Admin.BulkResult(match.Groups[1].Value) is not { } bytes)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        context.Response.ContentType = "application/jsonl";
        context.Response.ContentLength = bytes.Length;
        for (var at = 0; at < bytes.Length; at += 1 << 16)
            await context.Response.Body.WriteAsync(bytes.AsMemory(at, Math.Min(1 << 16, bytes.Length - at)), context.RequestAborted);
    }

    /// <summary>Matches Admin GraphQL requests, of one shop or of any.</summary>
    public static IRequestBuilder GraphQLRequest(string? shop = null) => Request.Create()
        .WithPath(new RegexMatcher(shop is null ? @"^/shops/[^/]+/admin/api/[^/]+/graphql\.json$" : $@"^/shops/{Regex.Escape(shop)}/admin/api/[^/]+/graphql\.json$"))
        .UsingPost();

    public static Task<StandInServer> StartAsync(string clientSecret, int port = 0) => Task.FromResult(new StandInServer(clientSecret, port));

    /// <summary>An expiring offline token (1 h) with a rotating refresh token (90 days), as Shopify issues them.</summary>
    public StandInAnswer DefaultGrant(string shop, JsonObject body)
    {
        var n = Interlocked.Increment(ref _tokenCounter);
        if (body["grant_type"]?.GetValue<string>() == "urn:ietf:params:oauth:grant-type:token-exchange"
            && string.IsNullOrEmpty(body["subject_token"]?.GetValue<string>()))
            return StandInAnswer.Json(new { error = "invalid_subject_token" }, 400);
        Had(shop, $"shpat_{shop}_{n}");
        return StandInAnswer.Json(new
        {
            access_token = $"shpat_{shop}_{n}",
            scope = GrantedScopes,
            expires_in = 3600,
            refresh_token = $"shprt_{shop}_{n}",
            refresh_token_expires_in = 7776000,
        });
    }

    /// <summary>
    /// The scopes a token grant says the merchant approved: by default every scope the app's shopify.app.toml asks for
    /// (a test of the platform facts checks they are equal), so a demo store shows no missing-permission notice.
    /// </summary>
    public string GrantedScopes { get; set; } =
        "read_orders,write_orders,read_products,read_inventory,write_customers,write_discounts,write_merchant_managed_fulfillment_orders,read_shopify_payments_disputes,write_app_proxy";

    public void Stop() => _stopping.Cancel();

    /// <summary>
    /// The next <paramref name="times"/> requests that match get <paramref name="response"/> (a WireMock response: a status,
    /// a Retry-After, a delay, a fault); later ones fall through to the default mappings. Built on WireMock scenarios.
    /// </summary>
    public void Next(IRequestBuilder request, IResponseBuilder response, int times = 1)
    {
        var scenario = Guid.NewGuid().ToString("N");
        for (var i = 0; i < times; i++)
        {
            var mapping = Mock.Given(request).InScenario(scenario);
            if (i > 0) mapping = mapping.WhenStateIs($"served-{i}");
            mapping.WillSetStateTo($"served-{i + 1}").AtPriority(1).RespondWith(response);
        }
    }

    private StandInAnswer Token(IRequestMessage req)
    {
        var shop = ShopOf(req.Path);
        var body = JsonNode.Parse(req.Body ?? "{}")!.AsObject();
        _requests.Enqueue(new RecordedRequest(shop, "/admin/oauth/access_token", body, DateTimeOffset.UtcNow));
        if (body["client_secret"]?.GetValue<string>() != ClientSecret) return StandInAnswer.Json(new { error = "invalid_client" }, 401);
        return TokenEndpoint?.Invoke(shop, body) ?? DefaultGrant(shop, body);
    }

    /// <summary>
    /// The app was uninstalled from the shop: as Shopify does, every token the shop had (issued here, seeded by a test's
    /// install, or seen in a call) is refused from now on (401); a token it had not had (a new install's) works, and
    /// <see cref="Installed"/> lifts it.
    /// </summary>
    public void Uninstalled(string shop)
    {
        var had = _tokensOf.GetOrAdd(shop, _ => new());
        lock (had) _revoked[shop] = [.. had, $"shpat_{shop}_seed"];
    }

    /// <summary>The shop installed again (its tokens written by the test, not issued here): its tokens work again.</summary>
    public void Installed(string shop) => _revoked.TryRemove(shop, out _);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HashSet<string>> _tokensOf = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, HashSet<string>> _revoked = new();

    private void Had(string shop, string token)
    {
        var had = _tokensOf.GetOrAdd(shop, _ => new());
        lock (had) had.Add(token);
    }

    private StandInAnswer GraphQLAnswer(IRequestMessage req)
    {
        var shop = ShopOf(req.Path);
        var body = JsonNode.Parse(req.Body ?? "{}")!.AsObject();
        var path = req.Path[req.Path.IndexOf("/admin/", StringComparison.Ordinal)..];
        _requests.Enqueue(new RecordedRequest(shop, path, body, DateTimeOffset.UtcNow));
        var token = req.Headers is { } h && h.TryGetValue("X-Shopify-Access-Token", out var t) ? t.ToString() : "";
        Had(shop, token);
        if (_revoked.TryGetValue(shop, out var revoked) && revoked.Contains(token)) return StandInAnswer.Json(new { errors = "[API] Invalid API key or access token (unrecognized login or wrong password)" }, 401);
        var call = new GraphQLCall(shop, token, body["query"]?.GetValue<string>() ?? "", body["variables"] as JsonObject ?? new JsonObject(), BaseUrl);
        return GraphQL?.Invoke(call) ?? Admin.Answer(call);
    }

    private static string ShopOf(string path) => path.Split('/')[2];

    [GeneratedRegex(@"^/bulk/([0-9]+)\.jsonl$")]
    private static partial Regex BulkKey();

    public ValueTask DisposeAsync()
    {
        Mock.Stop();
        Mock.Dispose();
        _stopping.Dispose();
        return ValueTask.CompletedTask;
    }
}
