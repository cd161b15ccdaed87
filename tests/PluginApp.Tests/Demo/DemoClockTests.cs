using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Demo;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Demo;

/// <summary>The demo's clock, which its simulated shoppers set back to their day: Demo only, and only into the past.</summary>
public sealed class DemoClockTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task DemoClock_SetBackForAShopper_ThenRestored_NeverIntoTheFuture_AndAbsentOutsideDemo()
    {
        await using var demo = app.CreateFactory(app.Database.ConnectionString, b => b.UseEnvironment("Demo"));
        using var client = demo.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost") });
        var clock = demo.Services.GetRequiredService<DemoClock>();
        var threeDaysAgo = DateTimeOffset.UtcNow.AddDays(-3);

        var set = await client.PutAsJsonAsync("/demo/clock", new { at = threeDaysAgo });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        Assert.True((await set.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("simulated").GetBoolean());
        Assert.InRange(clock.GetUtcNow(), threeDaysAgo, threeDaysAgo.AddMinutes(1)); // and it runs on from there

        var future = await client.PutAsJsonAsync("/demo/clock", new { at = DateTimeOffset.UtcNow.AddDays(1) });
        Assert.Equal(HttpStatusCode.BadRequest, future.StatusCode);
        Assert.InRange(clock.GetUtcNow(), threeDaysAgo, threeDaysAgo.AddMinutes(1));

        Assert.Equal(HttpStatusCode.OK, (await client.PutAsJsonAsync("/demo/clock", new { at = (DateTimeOffset?)null })).StatusCode);
        Assert.InRange(clock.GetUtcNow(), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));

        // Outside Demo there is no such endpoint (another route's path may answer 405) and the app's clock is untouched.
        var elsewhere = await app.Client.PutAsJsonAsync("/demo/clock", new { at = threeDaysAgo });
        Assert.Contains(elsewhere.StatusCode, new[] { HttpStatusCode.NotFound, HttpStatusCode.MethodNotAllowed });
        Assert.Null(app.Factory.Services.GetService<DemoClock>());
    }
}
