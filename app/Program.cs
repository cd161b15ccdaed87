using PluginApp.Admin;
using PluginApp.Backfill;
using PluginApp.Data;
using PluginApp.Demo;
using PluginApp.Health;
using PluginApp.Install;
using PluginApp.Jobs;
using PluginApp.Outbox;
using PluginApp.Recommendations;
using PluginApp.Webhooks;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddProblemDetails();
builder.AddData();
builder.AddInstall();
builder.Services.AddWebhooks();
builder.Services.AddOutbox();
builder.Services.AddBackfill();
builder.Services.AddRecommendations();
builder.AddScheduling(q =>
{
    q.AddOutboxJobs(builder.Configuration);
    q.AddRecommendationJobs(builder.Configuration);
});
builder.AddDemo();

var app = builder.Build();
app.UseExceptionHandler();
app.UseAuthentication();
app.UseAuthorization();
app.UseRateLimiter();
app.MapHealth();
app.MapWebhooks();
app.MapOAuth();
app.MapAdminPage();
app.MapAdminApi();
app.MapProxy();
app.MapRecommendationsAdmin();
app.MapDemoStorefront(app.Environment);
app.Run();

public partial class Program;
