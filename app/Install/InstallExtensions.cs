using PluginApp.StoreData;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.Install.KeyRing;
using PluginApp.Jobs;
using PluginApp.Shopify;
using PluginApp.Webhooks;

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
        s.AddOptions<KeyRingOptions>().BindConfiguration(KeyRingOptions.Section).ValidateOnStart();
        s.AddSingleton<IValidateOptions<KeyRingOptions>, KeyRingOptionsValidator>();
        // Why read here: Data Protection takes its certificates at registration. A bad path fails the KeyRingOptions validation
        // at start with a clear message; production refuses to start without one.
        KeyRingSetup.Configure(s, builder.Configuration.GetSection(KeyRingOptions.Section).Get<KeyRingOptions>() ?? new KeyRingOptions(), null);
        s.AddTransient<KeyRingCommands>();
        s.AddHttpClient<ShopifyTokenClient>(c => c.Timeout = TimeSpan.FromSeconds(15));
        s.AddSingleton<SecretProtector>();
        s.AddSingleton<OfflineTokenStore>();
        s.AddTransient<ShopInstaller>();
        s.AddRecurringJob<ShopInstaller>("install-setup", i => i.SweepAsync(CancellationToken.None), _ => "*/5 * * * *");
        s.AddSingleton<ShopLookup>();
        s.AddSingleton<ShopDirectory>();
        s.AddShopScopes();
        s.AddWebhookTopic(ShopSettings.UpdateTopic, ShopSettings.Parse, ShopSettings.Write);
        s.AddSingleton(sp =>
        {
            var shops = sp.GetRequiredService<ShopDirectory>();
            return new Data.ChangeSubscription(ShopDirectory.Channel, shops.Forget, shops.ForgetAll);
        });
        s.AddSingleton<AdminGraphQLClient.Pacing>();
        s.AddHttpClient<AdminGraphQLClient>((sp, c) => c.Timeout = sp.GetRequiredService<IOptions<ShopifyOptions>>().Value.AdminApiTimeout);
        s.AddSingleton<SessionTokenValidator>();
        s.AddScoped<ShopSession>();
        s.AddSingleton<ShopSession.SessionsNoted>();
        s.AddScoped<ShopSessionFilter>();
        s.AddScoped<ShopSessionPageFilter>();
        // Why no default scheme: with one, the authentication middleware ran the session-token handler on every request
        // (storefront, webhooks, health), parsing each storefront query for an id_token; the admin's policy names the
        // scheme, so only the requests it guards are authenticated.
        s.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, SessionTokenAuthenticationHandler>(SessionTokenAuthenticationHandler.SchemeName, null);
        s.AddAuthorization(o => o.AddPolicy(AdminPolicy, p =>
            p.AddAuthenticationSchemes(SessionTokenAuthenticationHandler.SchemeName).RequireAuthenticatedUser()));
        return builder;
    }
}
