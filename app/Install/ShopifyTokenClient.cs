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

    /// <summary>
    /// Every failure to get a grant is a <see cref="TokenEndpointException"/>: the endpoint's refusal with its status, and
    /// also an endpoint not reached, not answering in time or answering what is not a grant (502, 504). Why: the callers
    /// answer all of them alike (the merchant's page asks again, the install says to start again, a queued call waits
    /// untried), and until 7 Dec 2026 these escaped as a 500 to the merchant, and cost a queued call one of its attempts.
    /// </summary>
    private async Task<TokenGrant> PostAsync(string shop, Dictionary<string, string> body, CancellationToken ct)
    {
        try { return await SendAsync(shop, body, ct); }
        catch (HttpRequestException e)
        {
            throw new TokenEndpointException(HttpStatusCode.BadGateway, $"Shopify's token endpoint for {shop} could not be reached: {e.Message}");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TokenEndpointException(HttpStatusCode.GatewayTimeout, $"Shopify's token endpoint for {shop} did not answer in time.");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new TokenEndpointException(HttpStatusCode.BadGateway, $"Shopify's token endpoint for {shop} answered what is not a grant: {e.Message}");
        }
    }

    private async Task<TokenGrant> SendAsync(string shop, Dictionary<string, string> body, CancellationToken ct)
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
