using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using PluginApp.Shopify;

namespace PluginApp.Install;

/// <summary>What Shopify's token endpoint granted. Expiring offline tokens carry a refresh token.</summary>
public sealed record TokenGrant(
    [property: JsonPropertyName("access_token")] string AccessToken,
    [property: JsonPropertyName("scope")] string? Scope,
    [property: JsonPropertyName("expires_in")] int? ExpiresIn,
    [property: JsonPropertyName("refresh_token")] string? RefreshToken,
    [property: JsonPropertyName("refresh_token_expires_in")] int? RefreshTokenExpiresIn);

public sealed class TokenEndpointException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
}

/// <summary>POST https://{shop}/admin/oauth/access_token: code grant, token exchange and refresh.</summary>
public sealed class ShopifyTokenClient(HttpClient http, IOptions<ShopifyOptions> options)
{
    public Task<TokenGrant> ExchangeCodeAsync(string shop, string code, CancellationToken ct) =>
        PostAsync(shop, new Dictionary<string, string>
        {
            ["client_id"] = options.Value.ClientId,
            ["client_secret"] = options.Value.ClientSecret,
            ["code"] = code,
            ["expiring"] = "1",
        }, ct);

    public Task<TokenGrant> ExchangeSessionTokenAsync(string shop, string sessionToken, CancellationToken ct) =>
        PostAsync(shop, new Dictionary<string, string>
        {
            ["client_id"] = options.Value.ClientId,
            ["client_secret"] = options.Value.ClientSecret,
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:token-exchange",
            ["subject_token"] = sessionToken,
            ["subject_token_type"] = "urn:ietf:params:oauth:token-type:id_token",
            ["requested_token_type"] = "urn:shopify:params:oauth:token-type:offline-access-token",
            ["expiring"] = "1",
        }, ct);

    public Task<TokenGrant> RefreshAsync(string shop, string refreshToken, CancellationToken ct) =>
        PostAsync(shop, new Dictionary<string, string>
        {
            ["client_id"] = options.Value.ClientId,
            ["client_secret"] = options.Value.ClientSecret,
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = refreshToken,
        }, ct);

    private async Task<TokenGrant> PostAsync(string shop, Dictionary<string, string> body, CancellationToken ct)
    {
        var uri = new Uri(options.Value.ShopBaseUri(shop), "admin/oauth/access_token");
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = JsonContent.Create(body) };
        request.Headers.Accept.ParseAdd("application/json");
        using var response = await http.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            throw new TokenEndpointException(response.StatusCode,
                $"Shopify's token endpoint for {shop} answered {(int)response.StatusCode}: {Truncate(text, 200)}");
        }
        var grant = await response.Content.ReadFromJsonAsync<TokenGrant>(ct);
        if (grant is null || string.IsNullOrEmpty(grant.AccessToken))
            throw new TokenEndpointException(response.StatusCode, $"Shopify's token endpoint for {shop} returned no access_token.");
        return grant;
    }

    private static string Truncate(string s, int n) => s.Length <= n ? s : s[..n] + "...";
}
