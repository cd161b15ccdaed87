using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Demo;

public sealed class DemoBypassTests(AppFixture app) : IClassFixture<AppFixture>
{
    private static HttpClient Client(WebApplicationFactory<Program> f) =>
        f.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost"), HandleCookies = false });

    [Fact]
    public async Task DemoEnvironment_InstallsTheDemoStoreAndOpensTheAdminWithoutASessionToken()
    {
        await using var demo = app.CreateFactory(app.Database.ConnectionString, b => b.UseEnvironment("Demo"));
        using var client = Client(demo);

        HttpResponseMessage response;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        do
        {
            response = await client.GetAsync("/api/admin/shop");
            if (response.StatusCode == HttpStatusCode.OK) break;
            await Task.Delay(200);
        } while (DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("demo-store.myshopify.com", await response.Content.ReadAsStringAsync());
        Assert.Contains(app.Shopify.Requests, r => r.Shop == "demo-store.myshopify.com" && r.Path == "/admin/oauth/access_token");
    }

    [Theory]
    [InlineData("Production")]
    [InlineData("Development")]
    [InlineData("Testing")]
    public async Task OtherEnvironments_EvenWithDemoSettings_RequireTheSessionToken(string environment)
    {
        await using var other = app.CreateFactory(app.Database.ConnectionString, b =>
        {
            b.UseEnvironment(environment);
            b.UseSetting("Demo:Enabled", "true");
            b.UseSetting("Demo:Bypass", "true");
        });
        using var client = Client(other);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/admin/shop")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/admin")).StatusCode);
    }
}
