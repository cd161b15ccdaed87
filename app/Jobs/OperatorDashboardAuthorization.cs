using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Hangfire.Dashboard;

namespace PluginApp.Jobs;

/// <summary>
/// The jobs dashboard is for operators, not merchants: it asks for the configured token (HTTP Basic password or Bearer)
/// and refuses everyone when none is configured.
/// </summary>
public sealed class OperatorDashboardAuthorization(string? token) : IDashboardAuthorizationFilter
{
    public bool Authorize(DashboardContext context)
    {
        var http = context.GetHttpContext();
        if (token is not null && Presented(http.Request.Headers.Authorization.ToString()) is { } given
            && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(token))))
            return true;
        if (token is not null) http.Response.Headers.WWWAuthenticate = "Basic realm=\"PluginApp operators\", charset=\"UTF-8\"";
        return false;
    }

    private static string? Presented(string header)
    {
        if (!AuthenticationHeaderValue.TryParse(header, out var h) || h.Parameter is null) return null;
        if (h.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)) return h.Parameter;
        if (!h.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(h.Parameter));
            var colon = pair.IndexOf(':');
            return colon < 0 ? null : pair[(colon + 1)..];
        }
        catch (FormatException) { return null; }
    }
}
