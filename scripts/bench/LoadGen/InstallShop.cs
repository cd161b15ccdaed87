using PluginApp.Shopify;

namespace LoadGen;

/// <summary>
/// Installs a shop as an embedded first load of its admin does: a session token signed with the client secret (the one
/// <see cref="ShopifySigner"/>) on an admin API call, which the app exchanges with Shopify (here the stand-in) for an
/// offline token before it installs the shop and queues its backfill.
/// </summary>
internal static class InstallShop
{
    public static async Task<int> RunAsync(Args opts)
    {
        var (url, shop) = (opts.Get("url").TrimEnd('/'), opts.Get("shop"));
        var token = ShopifySigner.SessionToken(opts.Get("secret"), shop, opts.Get("client-id"), DateTimeOffset.UtcNow, userId: "1");
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, url + "/api/admin/backfill");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        if (response.IsSuccessStatusCode) return 0;
        Console.Error.WriteLine($"installing {shop} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return 1;
    }
}
