using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using PluginApp.Install;
using PluginApp.Shopify;

namespace PluginApp.Demo;

/// <summary>
/// The Demo environment: a demo store installed at start against the stand-in Admin API, and an admin that
/// opens without Shopify's session token. Nothing here is registered in any other environment.
/// </summary>
public static class DemoExtensions
{
    public const string EnvironmentName = "Demo";
    public const string Shop = "demo-store.myshopify.com";
    public const string BypassScheme = "DemoBypass";

    public static bool IsDemo(this IHostEnvironment env) => env.IsEnvironment(EnvironmentName);

    public static IHostApplicationBuilder AddDemo(this IHostApplicationBuilder builder)
    {
        if (!builder.Environment.IsDemo()) return builder;
        builder.Services.AddAuthentication().AddScheme<AuthenticationSchemeOptions, DemoBypassHandler>(BypassScheme, null);
        // Why replace the policy rather than add a switch: outside Demo this code never runs, so no setting can open the admin.
        builder.Services.PostConfigure<Microsoft.AspNetCore.Authorization.AuthorizationOptions>(o => o.AddPolicy(InstallExtensions.AdminPolicy, p =>
            p.AddAuthenticationSchemes(SessionTokenAuthenticationHandler.SchemeName, BypassScheme).RequireAuthenticatedUser()));
        builder.Services.AddSingleton<DemoClock>();
        builder.Services.AddSingleton<DemoCart>();
        builder.Services.Replace(ServiceDescriptor.Singleton<TimeProvider>(sp => sp.GetRequiredService<DemoClock>()));
        builder.Services.AddHostedService<DemoInstaller>();
        builder.Services.AddOptions<DemoOptions>().BindConfiguration(DemoOptions.Section);
        builder.Services.AddHttpClient("demo-proxy");
        return builder;
    }

    /// <summary>Every request is the demo store's staff. Registered only in the Demo environment.</summary>
    private sealed class DemoBypassHandler(IOptionsMonitor<AuthenticationSchemeOptions> o, ILoggerFactory l, UrlEncoder e)
        : AuthenticationHandler<AuthenticationSchemeOptions>(o, l, e)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var identity = new ClaimsIdentity([new Claim(SessionTokenAuthenticationHandler.ShopClaim, Shop)], BypassScheme);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), BypassScheme)));
        }
    }

    /// <summary>Installs the demo store by token exchange with the stand-in, as an embedded first load would.</summary>
    private sealed class DemoInstaller(ShopifyTokenClient tokens, ShopInstaller installer, IOptions<ShopifyOptions> options,
        TimeProvider clock, ILogger<DemoInstaller> logger) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken ct)
        {
            for (var attempt = 1; !ct.IsCancellationRequested; attempt++)
            {
                try
                {
                    var grant = await tokens.ExchangeSessionTokenAsync(Shop, SelfSignedSessionToken(), ct);
                    await installer.InstallAsync(Shop, grant, ct);
                    logger.LogInformation("Demo store {Shop} installed", Shop);
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or TokenEndpointException && attempt < 30)
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), clock, ct);
                }
            }
        }

        private string SelfSignedSessionToken() =>
            ShopifySigner.SessionToken(options.Value.ClientSecret, Shop, options.Value.ClientId, clock.GetUtcNow(), userId: "1");
    }
}
