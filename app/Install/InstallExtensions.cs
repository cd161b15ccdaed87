using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Shopify;

namespace PluginApp.Install;

public static class InstallExtensions
{
    /// <summary>The authorization policy of every /admin and /api/admin route: an App Bridge session token.</summary>
    public const string AdminPolicy = "ShopifyAdmin";

    public static IHostApplicationBuilder AddInstall(this IHostApplicationBuilder builder)
    {
        var s = builder.Services;
        s.AddOptions<ShopifyOptions>().BindConfiguration(ShopifyOptions.Section).ValidateOnStart();
        s.AddSingleton<IValidateOptions<ShopifyOptions>, ShopifyOptionsValidator>();
        s.AddSingleton<ShopifyHmac>();
        s.AddDataProtection().SetApplicationName("PluginApp");
        s.AddOptions<KeyManagementOptions>().Configure<NpgsqlDataSource>((o, ds) => o.XmlRepository = new PostgresXmlRepository(ds));
        s.AddHttpClient<ShopifyTokenClient>(c => c.Timeout = TimeSpan.FromSeconds(15));
        s.AddSingleton<OfflineTokenStore>();
        s.AddTransient<ShopInstaller>();
        s.AddSingleton<ShopDirectory>();
        s.AddHttpClient<AdminGraphQLClient>((sp, c) => c.Timeout = sp.GetRequiredService<IOptions<ShopifyOptions>>().Value.AdminApiTimeout);
        s.AddSingleton<SessionTokenValidator>();
        s.AddScoped<ShopSessionFilter>();
        s.AddAuthentication(SessionTokenAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, SessionTokenAuthenticationHandler>(SessionTokenAuthenticationHandler.SchemeName, null);
        s.AddAuthorization(o => o.AddPolicy(AdminPolicy, p =>
            p.AddAuthenticationSchemes(SessionTokenAuthenticationHandler.SchemeName).RequireAuthenticatedUser()));
        return builder;
    }
}
