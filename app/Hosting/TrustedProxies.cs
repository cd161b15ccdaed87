using System.Net;
using IPNetwork = System.Net.IPNetwork;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace PluginApp.Hosting;

/// <summary>
/// The proxies in front of the app whose X-Forwarded-For we believe (the load balancer). Only their entries are peeled
/// off; the client address is the first one a trusted proxy did not add. With none configured, X-Forwarded-For is
/// ignored and the client is the connection's address: a shopper cannot pick the address they are rate-limited by.
/// </summary>
public sealed class TrustedProxyOptions
{
    public const string Section = "TrustedProxies";

    /// <summary>Addresses or CIDR networks of our own proxies, e.g. "10.0.0.0/8".</summary>
    public List<string> Networks { get; set; } = [];

    /// <summary>How many X-Forwarded-For entries to peel at most (one per trusted hop).</summary>
    public int ForwardLimit { get; set; } = 1;
}

public sealed class TrustedProxyOptionsValidator : IValidateOptions<TrustedProxyOptions>
{
    public ValidateOptionsResult Validate(string? name, TrustedProxyOptions o)
    {
        var f = o.Networks.Where(n => !IPNetwork.TryParse(n, out _) && !IPAddress.TryParse(n, out _))
            .Select(n => $"TrustedProxies:Networks holds '{n}', which is neither an address nor a CIDR network.").ToList();
        if (o.ForwardLimit is < 1 or > 10) f.Add($"TrustedProxies:ForwardLimit {o.ForwardLimit} must be between 1 and 10.");
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}

public static class TrustedProxyExtensions
{
    public static IServiceCollection AddTrustedProxies(this IServiceCollection services)
    {
        services.AddOptions<TrustedProxyOptions>().BindConfiguration(TrustedProxyOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TrustedProxyOptions>, TrustedProxyOptionsValidator>();
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<TrustedProxyOptions>>((f, trusted) =>
        {
            f.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // Why clear: ASP.NET trusts loopback by default, and a sidecar or tunnel on loopback would forward anything.
            // (UseTrustedProxies skips the middleware when the lists stay empty, since empty means "trust all" to it.)
            f.KnownIPNetworks.Clear();
            f.KnownProxies.Clear();
            f.ForwardLimit = trusted.Value.ForwardLimit;
            foreach (var n in trusted.Value.Networks)
                if (IPAddress.TryParse(n, out var address)) f.KnownProxies.Add(address);
                else f.KnownIPNetworks.Add(IPNetwork.Parse(n));
        });
        return services;
    }

    /// <summary>
    /// Applies X-Forwarded-For only when proxies are configured. Why not always: ASP.NET's forwarded-headers middleware with
    /// no known proxy and no known network trusts every sender, which is the hole this class exists to close.
    /// </summary>
    public static WebApplication UseTrustedProxies(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<TrustedProxyOptions>>().Value.Networks.Count > 0) app.UseForwardedHeaders();
        return app;
    }
}
