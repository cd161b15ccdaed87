namespace PluginApp.Tests.Infrastructure;

/// <summary>What Shopify signs, signed the way Shopify signs it, for tests: the app's one signer.</summary>
public static class ShopifySigning
{
    public static string SessionToken(string secret, string shop, string audience, DateTimeOffset now,
        TimeSpan? expiresIn = null, string? dest = null, string? iss = null, string alg = "HS256", bool withNbf = true) =>
        PluginApp.Shopify.ShopifySigner.SessionToken(secret, shop, audience, now, expiresIn, dest, iss, alg, withNbf);

    /// <summary>The query Shopify sends to /auth/callback, with its hex HMAC.</summary>
    public static string OAuthCallbackQuery(string secret, IDictionary<string, string> parameters) =>
        PluginApp.Shopify.ShopifySigner.AdminQuery(secret, parameters);

    public static string WebhookHmac(string secret, byte[] body) => PluginApp.Shopify.ShopifySigner.Webhook(secret, body);
}
