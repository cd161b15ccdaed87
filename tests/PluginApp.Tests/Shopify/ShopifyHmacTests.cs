using System.Text;
using Microsoft.Extensions.Options;
using PluginApp.Shopify;

namespace PluginApp.Tests.Shopify;

/// <summary>The HMACs reuse a keyed instance per thread and key: interleaved secrets and messages must never mix.</summary>
public sealed class ShopifyHmacTests
{
    private static ShopifyHmac Hmac(string secret) =>
        new(Options.Create(new ShopifyOptions { ClientSecret = secret }), TimeProvider.System);

    [Fact]
    public void TwoAppsSecrets_UsedInTurnOnOneThread_EachAcceptsOnlyWhatItsOwnSecretSigned()
    {
        var (a, b) = (Hmac("first-secret"), Hmac("second-secret"));
        string[] bodies = ["", "{}", new string('x', 70), new string('y', 6_600)];
        var mac = new byte[ShopifyHmac.AppMacBytes];
        for (var round = 0; round < 3; round++)
            foreach (var text in bodies)
            {
                var body = Encoding.UTF8.GetBytes(text + round);
                Assert.True(a.VerifyWebhook(body, ShopifySigner.Webhook("first-secret", body)));
                Assert.False(b.VerifyWebhook(body, ShopifySigner.Webhook("first-secret", body)));
                Assert.True(b.VerifyWebhook(body, ShopifySigner.Webhook("second-secret", body)));
                Assert.False(a.VerifyWebhook(body.Append((byte)'!').ToArray(), ShopifySigner.Webhook("first-secret", body)));

                a.SignAppToken("decision-token/v1", body, mac);
                Assert.True(a.VerifyAppToken("decision-token/v1", body, mac));
                Assert.False(a.VerifyAppToken("another-purpose", body, mac));
                Assert.False(b.VerifyAppToken("decision-token/v1", body, mac));
            }
    }
}
