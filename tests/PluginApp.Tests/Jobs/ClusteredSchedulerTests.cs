using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Hangfire;
using Hangfire.Server;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Jobs;

/// <summary>Records each run with the server that ran it; a job that ran twice shows up as two rows.</summary>
public sealed class RecordingJob
{
    public async Task RunAsync(string connectionString, int n, PerformContext? context, CancellationToken ct)
    {
        await Task.Delay(50, ct); // long enough for another instance to take the same job if fetching were broken
        await using var db = NpgsqlDataSource.Create(connectionString);
        await using var cmd = db.CreateCommand("INSERT INTO job_runs (n, server_id) VALUES ($1, $2)");
        cmd.Parameters.AddWithValue(n);
        cmd.Parameters.AddWithValue(context!.ServerId);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}

public sealed class ClusteredSchedulerTests(AppFixture app) : IClassFixture<AppFixture>
{
    [Fact]
    public async Task TwoInstancesOnOneDatabase_ShareTheJobsAndRunEachExactlyOnce()
    {
        await using (var cmd = app.Db.CreateCommand("CREATE TABLE job_runs (n int NOT NULL, server_id text NOT NULL)"))
            await cmd.ExecuteNonQueryAsync();
        await using var second = app.CreateFactory(app.Database.ConnectionString);
        _ = second.Services; // starts the second instance and its job server
        var jobs = app.Factory.Services.GetRequiredService<IBackgroundJobClient>();
        const int count = 40;

        for (var i = 0; i < count; i++) jobs.Enqueue<RecordingJob>(j => j.RunAsync(app.Database.ConnectionString, i, null, CancellationToken.None));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM job_runs") < count) await Task.Delay(200);
        await Task.Delay(1000); // a duplicate run would land now

        Assert.Equal(count, await app.CountAsync("SELECT count(*) FROM job_runs"));
        Assert.Equal(count, await app.CountAsync("SELECT count(DISTINCT n) FROM job_runs"));
        Assert.Equal(2, await app.CountAsync("SELECT count(DISTINCT server_id) FROM job_runs"));
    }

    [Fact]
    public async Task Dashboard_RefusesAnonymousRequests_AndAnyoneWhenNoTokenIsConfigured()
    {
        const string token = "operators-only-0123456789abcdef0123456789";
        await using var configured = app.CreateFactory(app.Database.ConnectionString, b =>
        {
            b.UseSetting("Scheduling:Enabled", "false");
            b.UseSetting("Scheduling:DashboardToken", token);
        });
        using var client = configured.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://localhost") });

        var anonymous = await client.GetAsync("/ops/jobs");
        var forged = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/ops/jobs")
            { Headers = { Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ops:wrong-token"))) } });
        var operatorCall = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/ops/jobs")
            { Headers = { Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"ops:{token}"))) } });
        var unconfigured = await app.Client.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/ops/jobs")
            { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", token) } });

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains("Basic", anonymous.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        Assert.Equal(HttpStatusCode.OK, operatorCall.StatusCode);
        Assert.Contains("Hangfire", await operatorCall.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, unconfigured.StatusCode);
    }
}
