using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PluginApp.Data;
using PluginApp.Shopify;
using PluginApp.Tests.Infrastructure;
using PluginApp.StoreData;

namespace PluginApp.Tests.Platform;

public sealed class PlatformTests(AppFixture app) : IClassFixture<AppFixture>
{
    private static string RepoFile(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PluginApp.sln"))) dir = dir.Parent;
        return File.ReadAllText(Path.Combine(dir!.FullName, name));
    }

    [Fact]
    public async Task NoRouteLooksOnDiskPerRequest_WhileTheAdminsAssetsAreServed()
    {
        // Why: outside a published build, static assets add a fallback route whose constraint stats wwwroot/<path> for every
        // GET the routes match (a system call per storefront request and per health check, seen under load); the assets
        // are served from the build's manifest all the same.
        var routes = app.Factory.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints
            .OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>().Select(e => e.RoutePattern.RawText ?? "").ToList();
        Assert.DoesNotContain(routes, r => r.Contains(":file}", StringComparison.Ordinal));
        var css = routes.First(r => r.StartsWith("admin/", StringComparison.Ordinal) && r.EndsWith(".css", StringComparison.Ordinal));
        var response = await app.Client.GetAsync("/" + css);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/css", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Health_ProcessAndReadiness_Answer200()
    {
        Assert.Equal(HttpStatusCode.OK, (await app.Client.GetAsync("/healthz")).StatusCode);
        var ready = await app.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Contains("applied", await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Readyz_DatabaseUnreachable_Answers503()
    {
        await using var factory = app.CreateFactory("Host=127.0.0.1;Port=1;Username=x;Database=x;Timeout=2", b =>
            b.ConfigureServices(s => s.RemoveAll<Microsoft.Extensions.Hosting.IHostedService>()));
        var response = await factory.CreateClient().GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public async Task AppConnections_KeepARepeatedStatementPrepared_StillPlannedForEachCall_WithoutJit_UnlessTheConnectionStringSaysOtherwise()
    {
        const string repeated = "SELECT count(*) FROM shops WHERE id = $1";
        static async Task<(long Prepared, string PlanMode)> RunAsync(NpgsqlDataSource source)
        {
            await using var conn = await source.OpenConnectionAsync();
            for (var i = 0; i < 6; i++)
            {
                await using var cmd = new NpgsqlCommand(repeated, conn);
                cmd.Parameters.AddWithValue((long)i);
                await cmd.ExecuteScalarAsync();
            }
            await using var check = new NpgsqlCommand("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", conn);
            check.Parameters.AddWithValue(repeated);
            var prepared = (long)(await check.ExecuteScalarAsync())!;
            await using var mode = new NpgsqlCommand("SHOW plan_cache_mode", conn);
            return (prepared, (string)(await mode.ExecuteScalarAsync())!);
        }

        Assert.Equal((1L, "force_custom_plan"), await RunAsync(app.Factory.Services.GetRequiredService<NpgsqlDataSource>()));

        // The operator's own settings win: preparing off, or statements left to PostgreSQL's own choice of plan.
        await using var off = app.CreateFactory(app.Database.ConnectionString + ";Max Auto Prepare=0", b =>
            b.ConfigureServices(s => s.RemoveAll<Microsoft.Extensions.Hosting.IHostedService>()));
        Assert.Equal((0L, "force_custom_plan"), await RunAsync(off.Services.GetRequiredService<NpgsqlDataSource>()));
        await using var auto = app.CreateFactory(app.Database.ConnectionString + ";Options=-c plan_cache_mode=auto", b =>
            b.ConfigureServices(s => s.RemoveAll<Microsoft.Extensions.Hosting.IHostedService>()));
        Assert.Equal((1L, "auto"), await RunAsync(auto.Services.GetRequiredService<NpgsqlDataSource>()));

        // PostgreSQL's JIT off, which compiled the feature builder again on every call, unless the operator says otherwise.
        static async Task<string> Jit(NpgsqlDataSource source)
        {
            await using var cmd = source.CreateCommand("SHOW jit");
            return (string)(await cmd.ExecuteScalarAsync())!;
        }
        Assert.Equal("off", await Jit(app.Factory.Services.GetRequiredService<NpgsqlDataSource>()));
        await using var jit = app.CreateFactory(app.Database.ConnectionString + ";Options=-c JIT=on", b =>
            b.ConfigureServices(s => s.RemoveAll<Microsoft.Extensions.Hosting.IHostedService>()));
        Assert.Equal("on", await Jit(jit.Services.GetRequiredService<NpgsqlDataSource>()));
    }

    [Fact]
    public void AppToml_PinsTheSameApiVersionAsTheCode()
    {
        var toml = RepoFile("shopify.app.toml");
        Assert.Matches(new Regex($"api_version\\s*=\\s*\"{ShopifyApiVersion.Pinned}\""), toml);
    }

    [Fact]
    public void AppToml_AsksForTheScopesTheAppIsConfiguredFor_AndTheStandInGrantsThem()
    {
        var toml = RepoFile("shopify.app.toml");
        var asked = Regex.Match(toml, "^scopes\\s*=\\s*\"([^\"]*)\"", RegexOptions.Multiline).Groups[1].Value;
        Assert.Equal(asked, app.Factory.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PluginApp.Shopify.ShopifyOptions>>().Value.Scopes);
        Assert.Equal(asked, app.Shopify.GrantedScopes);
        // The one optional scope: the history import's orders past 60 days.
        Assert.Matches(new Regex($"^optional_scopes\\s*=\\s*\\[\"{PluginApp.Backfill.BackfillOptions.ReadAllOrders}\"\\]", RegexOptions.Multiline), toml);
    }

    /// <summary>
    /// Shopify requires write_app_proxy of an app that configures an app proxy; without it the storefront's blocks, which
    /// call the app through the proxy, have nothing to call. Until 6 Dec 2026 the app configured the proxy without asking
    /// for the scope. A shop installed before sees it in the admin's notice of missing permissions, with what it is for.
    /// </summary>
    [Fact]
    public void AppToml_ThatConfiguresAnAppProxy_AsksForWriteAppProxy_AndSaysWhatItIsFor()
    {
        var toml = RepoFile("shopify.app.toml");
        Assert.Matches(new Regex(@"^\[app_proxy\]", RegexOptions.Multiline), toml);
        var asked = Regex.Match(toml, "^scopes\\s*=\\s*\"([^\"]*)\"", RegexOptions.Multiline).Groups[1].Value.Split(',');
        Assert.Contains("write_app_proxy", asked);
        Assert.Contains(app.Factory.Services.GetServices<PluginApp.Install.ScopeUse>(), u => u.Scope == "write_app_proxy" && u.Use.Contains("app proxy"));
    }

    /// <summary>
    /// The addresses Shopify builds from shopify.app.toml reach the app: a relative webhook uri or app proxy url is appended
    /// to application_url (trailing slash removed), and the admin opens application_url itself. Until 6 Dec 2026
    /// application_url ended in /admin, so the proxy's calls went to /admin/proxy and the webhooks to /admin/webhooks, which
    /// the app does not serve: every block stayed empty and no webhook arrived.
    /// </summary>
    [Fact]
    public async Task AppToml_TheAddressesShopifyBuildsFromIt_ReachTheProxyTheWebhooksAndTheAdmin()
    {
        var toml = RepoFile("shopify.app.toml");
        var root = new Uri(Regex.Match(toml, "^application_url\\s*=\\s*\"([^\"]+)\"", RegexOptions.Multiline).Groups[1].Value);
        string Resolve(string url) => Uri.TryCreate(url, UriKind.Absolute, out var full) ? full.AbsolutePath
            : new Uri(root.GetLeftPart(UriPartial.Path).TrimEnd('/') + url).AbsolutePath;
        var proxy = Resolve(Regex.Match(toml, "\\[app_proxy\\]\\s*url\\s*=\\s*\"([^\"]+)\"").Groups[1].Value);
        var hooks = Regex.Matches(toml, "^\\s*uri\\s*=\\s*\"([^\"]+)\"", RegexOptions.Multiline).Select(m => Resolve(m.Groups[1].Value)).Distinct().ToList();
        Assert.NotEmpty(hooks);
        const string shop = "platform-toml.myshopify.com";
        await app.InstallShopAsync(shop);

        var answer = await app.Client.GetAsync(PluginApp.Tests.Recommendations.StoreSeed.Signed(proxy + "/recommendations", shop, "placement=product&product_id=1", app.Clock.GetUtcNow()));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("application/json", answer.Content.Headers.ContentType?.MediaType);
        foreach (var hook in hooks)
        {
            var id = Guid.NewGuid().ToString();
            Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/create", shop, """{"id":7001,"email":"toml@example.com"}""", deliveryId: id, path: hook)).StatusCode);
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM webhook_deliveries WHERE delivery_id = $1", id));
        }
        using var admin = app.Factory.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        const string embedding = "?embedded=1&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvcGxhdGZvcm0tdG9tbA&shop=platform-toml.myshopify.com";
        var landing = await admin.GetAsync(root.AbsolutePath + embedding);
        var at = landing.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found ? landing.Headers.Location!.OriginalString : root.AbsolutePath + embedding;
        Assert.Equal("/admin" + embedding, at);
    }

    [Fact]
    public void AppToml_SubscribesToExactlyTheTopicsTheAppHandles_IncludingThoseFeaturesRegister()
    {
        var toml = RepoFile("shopify.app.toml");
        var subscribed = Regex.Matches(toml, @"^\s*(?:compliance_)?topics\s*=\s*\[([^\]]*)\]", RegexOptions.Multiline)
            .SelectMany(m => Regex.Matches(m.Groups[1].Value, "\"([^\"]+)\"").Select(t => t.Groups[1].Value)).Order().ToList();
        var handled = app.Factory.Services.GetRequiredService<PluginApp.Webhooks.WebhookTopicTable>().Subscribed.Order().ToList();

        Assert.Equal(handled, subscribed);
        Assert.Contains("disputes/create", handled); // registered by app/Risk, not in the core table
        Assert.DoesNotContain("disputes/create", PluginApp.Webhooks.WebhookTopics.Core.Keys);
    }

    [Fact]
    public async Task Start_WithATopicRegisteredTwice_FailsNamingTheTopic()
    {
        var e = await app.StartRefusalAsync(b => b.ConfigureServices(s =>
            PluginApp.Webhooks.WebhookTopicExtensions.AddWebhookTopic(s, "orders/create", p => p.GetRawText(), (_, _) => { })));
        Assert.Contains("orders/create is already handled", e.ToString());
    }

    [Fact]
    public async Task Start_WithoutClientSecret_FailsNamingTheSetting()
    {
        var e = await app.StartRefusalAsync(b => b.UseSetting("Shopify:ClientSecret", ""));
        Assert.True(e.ToString().Contains("Shopify:ClientSecret", StringComparison.Ordinal), e.ToString());
    }

    [Fact]
    public async Task Migrate_FromFourInstancesAtOnce_AppliesEachScriptOnce()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var source = NpgsqlDataSource.Create(db.ConnectionString);
        var sut = new DatabaseMigrator(source, NullLogger<DatabaseMigrator>.Instance);

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => sut.MigrateAsync(CancellationToken.None)));

        Assert.True(await sut.IsUpToDateAsync(CancellationToken.None));
        await using var cmd = source.CreateCommand("SELECT count(*) FROM schema_migrations");
        Assert.Equal((long)DatabaseMigrator.Scripts.Count, (long)(await cmd.ExecuteScalarAsync())!);
    }
}
