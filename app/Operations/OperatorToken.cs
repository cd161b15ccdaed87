using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace PluginApp.Operations;

/// <summary>
/// The one check of the operators' token (<c>Scheduling:DashboardToken</c>), used by the jobs dashboard and the metrics
/// endpoint alike: the token as an HTTP Basic password (any user name) or a Bearer token, compared in constant time.
/// With no token configured everyone is refused.
/// </summary>
public static class OperatorToken
{
    public const string Challenge = "Basic realm=\"PluginApp operators\", charset=\"UTF-8\"";

    /// <summary>Whether the request presents <paramref name="token"/>; when it does not and a token is configured, asks for it.</summary>
    public static bool Authorize(HttpContext http, string? token)
    {
        if (IsPresented(http.Request, token)) return true;
        if (token is not null) http.Response.Headers.WWWAuthenticate = Challenge;
        return false;
    }

    public static bool IsPresented(HttpRequest request, string? token) =>
        token is not null && Presented(request.Headers.Authorization.ToString()) is { } given
        // Why hashes: FixedTimeEquals is constant-time only for equal lengths; the digests hide the token's length too.
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(token)));

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
