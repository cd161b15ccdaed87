using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Hangfire.Storage;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PluginApp.Admin;
using PluginApp.Compliance;
using PluginApp.Tests.Infrastructure;
using PluginApp.Training;

namespace PluginApp.Tests.Platform;

/// <summary>A model kind a feature could add: learns nothing, scores the shop's order count, so the test sees what it was given.</summary>
public sealed class ProbeTrainer(NpgsqlDataSource db) : IModelTrainer
{
    public const string Kind = "probe";

    public static readonly ModelKind Registration = new(Kind, "Probe", "Orders", typeof(ProbeTrainer), Purpose: "Tests the registration point.",
        Inputs: "The shop's orders.", ShownWhere: "Nowhere.", Fallback: "None.")
    {
        // A kind must say its risk: left unassessed it counts as critical and the app refuses to start without its controls.
        Risk = new AiRisk(1, 1, "Decides nothing anyone sees.", "It counts orders.", "Immediate: the test reads it."),
        OnActivated = (_, shopId) =>
        {
            if (shopId == Volatile.Read(ref FailActivationFor)) throw new InvalidOperationException("the probe's activation fails on purpose");
        },
    };

    /// <summary>The shop whose model's activation step throws (a failure after the model is stored).</summary>
    public static long FailActivationFor = -1;

    public async Task<TrainedModel> TrainAsync(long shopId, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("SELECT count(*) FROM orders WHERE shop_id = $1");
        cmd.Parameters.AddWithValue(shopId);
        var orders = (long)(await cmd.ExecuteScalarAsync(ct))!;
        return new TrainedModel([1, 2, 3], new { }, new { Orders = (double)orders }, orders, null, null);
    }
}

/// <summary>The app with one more feature plugged in through every registration point: a model kind, an admin page, a personal-data table.</summary>
public sealed class RegistrationFixture : AppFixture
{
    protected override void ConfigureMainInstance(IWebHostBuilder builder) => builder.ConfigureServices(s => s
        .AddModelKind(ProbeTrainer.Registration)
        .AddAdminPage("/admin/probe", "Probe page", 50)
        .AddPersonalData(new PersonalDataTable("probe_personal", ["customer_id", "email"],
            "DELETE FROM probe_personal WHERE shop_id = $1 AND customer_id = $2",
            Export: "SELECT coalesce(jsonb_agg(to_jsonb(p) - 'shop_id'), '[]') FROM probe_personal p WHERE p.shop_id = $1 AND p.customer_id = $2")));

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await using var cmd = Db.CreateCommand("""
            CREATE TABLE probe_personal (shop_id bigint NOT NULL, customer_id bigint NOT NULL, email text NOT NULL);
            CREATE TABLE probe_undeclared (shop_id bigint NOT NULL, email text NOT NULL);
            """);
        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>Each registration point calls what a feature registers through it, and nothing needs editing in a shared hub.</summary>
public sealed class RegistrationPointTests(RegistrationFixture app) : IClassFixture<RegistrationFixture>
{
    [Fact]
    public async Task RegisteredModelKind_IsTrainedOnDemand_ScheduledNightly_AndListedWithTheOthers()
    {
        const string shop = "probe-kind.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        foreach (var id in new[] { 5101, 5102, 5103 })
            await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(id).ToJsonString());
        var train = new HttpRequestMessage(HttpMethod.Post, "/api/admin/models/train?kind=probe");
        train.Headers.Authorization = app.AdminGet("/", shop).Headers.Authorization;

        Assert.Equal(HttpStatusCode.Accepted, (await app.Client.SendAsync(train)).StatusCode);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM models WHERE shop_id = $1 AND kind = 'probe' AND status = 'active'", shopId) == 0)
            await Task.Delay(200);
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND kind = 'probe' AND state = 'completed' AND rows = 3", shopId));
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND kind <> 'probe'", shopId));
        var listed = await (await app.Client.SendAsync(app.AdminGet("/api/admin/models", shop))).Content.ReadFromJsonAsync<JsonElement>();
        var probe = Assert.Single(listed.EnumerateArray(), m => m.GetProperty("kind").GetString() == "probe");
        Assert.Equal(3, probe.GetProperty("metrics").GetProperty("Orders").GetDouble());

        app.Factory.Services.GetRequiredService<TrainingScheduler>().OnInstalled(shop, "UTC");
        using var storage = app.Factory.Services.GetRequiredService<Hangfire.JobStorage>().GetConnection();
        Assert.Equal(2, storage.GetRecurringJobs([TrainingScheduler.NightlyId(shop, "probe"), TrainingScheduler.NightlyId(shop, "recommender")]).Count(j => !j.Removed));
    }

    [Fact]
    public async Task TrainedModel_IsNeverActiveWhileItsTrainingRunStillSaysRunning()
    {
        const string shop = "probe-run.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        foreach (var id in new[] { 5201, 5202 })
            await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(id).ToJsonString());
        const string activeModels = "SELECT count(*) FROM models WHERE shop_id = $1 AND kind = 'probe' AND status = 'active'";

        // The trainer waits on a lock of the orders table, so its run can be held by a lock on the run's row.
        await using var ordersLock = await app.Db.OpenConnectionAsync();
        await using var ordersTx = await ordersLock.BeginTransactionAsync();
        await Exec(ordersLock, ordersTx, "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE");
        var train = new HttpRequestMessage(HttpMethod.Post, "/api/admin/models/train?kind=probe");
        train.Headers.Authorization = app.AdminGet("/", shop).Headers.Authorization;
        Assert.Equal(HttpStatusCode.Accepted, (await app.Client.SendAsync(train)).StatusCode);
        const string runningRun = "SELECT id FROM training_runs WHERE shop_id = $1 AND kind = 'probe' AND state = 'running'";
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && await app.ScalarAsync(runningRun, shopId) is null) await Task.Delay(50);
        await using var runLock = await app.Db.OpenConnectionAsync();
        await using var runTx = await runLock.BeginTransactionAsync();
        await Exec(runLock, runTx, runningRun + " FOR UPDATE", shopId);
        await ordersTx.CommitAsync();

        // Whatever writes the run's outcome now waits on this test: the model must not be active before it.
        while (DateTime.UtcNow < deadline && await app.ScalarAsync("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                   runLock.ProcessID) is 0L)
            await Task.Delay(50);
        Assert.True(DateTime.UtcNow < deadline, "nothing came to write the training run's outcome");
        Assert.Equal(0, await app.CountAsync(activeModels, shopId));

        await runTx.CommitAsync();
        while (DateTime.UtcNow < deadline && await app.CountAsync(activeModels, shopId) == 0) await Task.Delay(50);
        Assert.Equal(1, await app.CountAsync(activeModels, shopId));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND kind = 'probe' AND state = 'completed' AND rows = 2", shopId));
    }

    [Fact]
    public async Task TrainingRun_StoppedByShutdownOrLeftByADeadProcess_DoesNotStayRunning()
    {
        const string shop = "probe-stopped.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(5301).ToJsonString());
        // A run some earlier process started and never ended (it died mid-training).
        await app.ScalarAsync("INSERT INTO training_runs (shop_id, kind, trigger, state, started_at) VALUES ($1, 'probe', 'nightly', 'running', now() - interval '1 hour')", shopId);
        var training = app.Factory.Services.GetRequiredService<TrainingService>();
        const string states = "SELECT string_agg(state || ': ' || coalesce(error, ''), ' | ' ORDER BY id) FROM training_runs WHERE shop_id = $1 AND kind = 'probe'";

        // This app shuts down while it trains: the trainer waits on a lock of the orders table when the stop comes.
        await using (var ordersLock = await app.Db.OpenConnectionAsync())
        await using (var ordersTx = await ordersLock.BeginTransactionAsync())
        {
            await Exec(ordersLock, ordersTx, "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE");
            using var stopping = new CancellationTokenSource();
            var run = training.TrainAsync(shop, ProbeTrainer.Kind, "manual", stopping.Token);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND kind = 'probe'", shopId) < 2)
                await Task.Delay(50);
            stopping.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        }
        Assert.Equal("failed: ended without an outcome: the process running it stopped (found when a later run of this kind ended)"
                     + " | failed: stopped before it finished: the app shut down or the job was cancelled", await app.ScalarAsync(states, shopId));

        // The job runs again, completes, and the admin lists no run as still going.
        await training.TrainAsync(shop, ProbeTrainer.Kind, "manual", CancellationToken.None);
        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM training_runs WHERE shop_id = $1 AND state = 'running'", shopId));
        Assert.EndsWith(" | completed: ", (string)(await app.ScalarAsync(states, shopId))!);
    }

    [Fact]
    public async Task TrainedModel_WhoseActivationStepFailsAfterItIsStored_KeepsItsRunCompletedAndIsNotTrainedAgain()
    {
        const string shop = "probe-activation.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.SendWebhookAsync("orders/create", shop, ShopifyPayloads.Order(5401).ToJsonString());
        Volatile.Write(ref ProbeTrainer.FailActivationFor, shopId);
        try
        {
            var (version, activated) = await app.Factory.Services.GetRequiredService<TrainingService>().TrainAsync(shop, ProbeTrainer.Kind, "manual", CancellationToken.None);
            Assert.True(activated);
            Assert.Equal("completed", await app.ScalarAsync("SELECT string_agg(state, ',') FROM training_runs WHERE shop_id = $1 AND kind = 'probe'", shopId));
            Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM models WHERE shop_id = $1 AND kind = 'probe' AND status = 'active' AND version = $2", shopId, version));
        }
        finally
        {
            Volatile.Write(ref ProbeTrainer.FailActivationFor, -1);
        }
    }

    private static async Task Exec(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var a in args) cmd.Parameters.AddWithValue(a);
        await cmd.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task RegisteredAdminPage_IsInTheNavigation_AfterTheOverview()
    {
        const string shop = "probe-nav.myshopify.com";
        await app.InstallShopAsync(shop);

        var page = await (await app.Client.GetAsync($"/admin?shop={shop}&embedded=1&id_token={app.SessionToken(shop)}")).Content.ReadAsStringAsync();

        var nav = page[page.IndexOf("<nav", StringComparison.Ordinal)..page.IndexOf("</nav>", StringComparison.Ordinal)];
        // The link keeps the shop and the embedding, never the one-minute token.
        var link = $"<a href=\"/admin/probe?shop={shop}&amp;embedded=1\">Probe page</a>";
        Assert.Contains(link, nav);
        Assert.True(nav.IndexOf("Overview", StringComparison.Ordinal) < nav.IndexOf("Probe page", StringComparison.Ordinal));
        Assert.Contains(link, page[page.IndexOf("<ui-nav-menu>", StringComparison.Ordinal)..]);
    }

    [Fact]
    public async Task RegisteredPersonalDataTable_IsErasedByCustomersRedact_OnlyForThatCustomer()
    {
        const string shop = "probe-erase.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.ScalarAsync("INSERT INTO probe_personal VALUES ($1, 7301, 'gone@example.com'), ($1, 7302, 'stays@example.com')", shopId);
        var redact = new JsonObject { ["shop_id"] = 1, ["shop_domain"] = shop, ["orders_to_redact"] = new JsonArray(),
            ["customer"] = new JsonObject { ["id"] = 7301, ["email"] = "gone@example.com" } };

        Assert.Equal(HttpStatusCode.OK, (await app.SendWebhookAsync("customers/redact", shop, redact.ToJsonString())).StatusCode);

        Assert.Equal(0, await app.CountAsync("SELECT count(*) FROM probe_personal WHERE customer_id = 7301"));
        Assert.Equal(1, await app.CountAsync("SELECT count(*) FROM probe_personal WHERE customer_id = 7302"));
    }

    [Fact]
    public async Task PersonalColumnNobodyDeclared_IsCaughtByTheSchemaAudit()
    {
        var undeclared = await PersonalDataAudit.UndeclaredAsync(app.Db, app.Factory.Services.GetRequiredService<PersonalDataCatalog>());

        Assert.Equal(["probe_undeclared.email"], undeclared.Select(c => $"{c.Table}.{c.Column}"));
    }
}
