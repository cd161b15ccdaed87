using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ShopifyStandIn;

/// <summary>One request the stand-in received.</summary>
public sealed record RecordedRequest(string Shop, string Path, JsonObject Body, DateTimeOffset At);

/// <summary>
/// Plays https://{shop}/admin/... on 127.0.0.1 with a random port. The app reaches it through
/// Shopify:ShopUrlTemplate = "{BaseUrl}/shops/{shop}". Real HTTP, real JSON, documented shapes.
/// </summary>
public sealed class StandInServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private int _tokenCounter;

    /// <summary>Answers Admin GraphQL; by default <see cref="DefaultAdminApi"/>.</summary>
    public Func<GraphQLCall, IResult>? GraphQL { get; set; }

    /// <summary>The default Admin API: bulk operations served from JSONL, mutations recorded and accepted.</summary>
    public DefaultAdminApi Admin { get; } = new();

    /// <summary>Answers the token endpoint; by default a fresh expiring offline token pair per call.</summary>
    public Func<string, JsonObject, IResult>? TokenEndpoint { get; set; }

    public string ClientSecret { get; }
    public string BaseUrl { get; private set; } = "";
    public string ShopUrlTemplate => BaseUrl + "/shops/{shop}";
    public IReadOnlyCollection<RecordedRequest> Requests => _requests;

    /// <summary>Fires when the stand-in is asked to stop (SIGTERM or Ctrl-C when it runs on its own).</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    private StandInServer(string clientSecret)
    {
        ClientSecret = clientSecret;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.MapPost("/shops/{shop}/admin/oauth/access_token", async (string shop, HttpRequest req) =>
        {
            var body = (await JsonNode.ParseAsync(req.Body))!.AsObject();
            _requests.Enqueue(new RecordedRequest(shop, "/admin/oauth/access_token", body, DateTimeOffset.UtcNow));
            if (body["client_secret"]?.GetValue<string>() != ClientSecret)
                return Results.Json(new { error = "invalid_client" }, statusCode: 401);
            return TokenEndpoint?.Invoke(shop, body) ?? DefaultGrant(shop, body);
        });
        _app.MapPost("/shops/{shop}/admin/api/{version}/graphql.json", async (string shop, string version, HttpRequest req) =>
        {
            var body = (await JsonNode.ParseAsync(req.Body))!.AsObject();
            _requests.Enqueue(new RecordedRequest(shop, $"/admin/api/{version}/graphql.json", body, DateTimeOffset.UtcNow));
            var call = new GraphQLCall(shop, req.Headers["X-Shopify-Access-Token"].ToString(), body["query"]?.GetValue<string>() ?? "",
                body["variables"] as JsonObject ?? new JsonObject(), BaseUrl);
            return GraphQL?.Invoke(call) ?? Admin.Answer(call);
        });
        _app.MapGet("/bulk/{id}.jsonl", (string id) => Admin.BulkResult(id) is { } path
            ? Results.File(path, "application/jsonl") : Results.NotFound());
    }

    public static async Task<StandInServer> StartAsync(string clientSecret)
    {
        var server = new StandInServer(clientSecret);
        await server._app.StartAsync();
        var addresses = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!;
        server.BaseUrl = addresses.Addresses.First().TrimEnd('/');
        return server;
    }

    /// <summary>An expiring offline token (1 h) with a rotating refresh token (90 days), as Shopify issues them.</summary>
    public IResult DefaultGrant(string shop, JsonObject body)
    {
        var n = Interlocked.Increment(ref _tokenCounter);
        if (body["grant_type"]?.GetValue<string>() == "urn:ietf:params:oauth:grant-type:token-exchange"
            && string.IsNullOrEmpty(body["subject_token"]?.GetValue<string>()))
            return Results.Json(new { error = "invalid_subject_token" }, statusCode: 400);
        return Results.Json(new
        {
            access_token = $"shpat_{shop}_{n}",
            scope = "read_orders,write_orders,read_products",
            expires_in = 3600,
            refresh_token = $"shprt_{shop}_{n}",
            refresh_token_expires_in = 7776000,
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
