using PluginApp.Admin;
using PluginApp.Admin.Shell;
using PluginApp.Admin.Switches;
using PluginApp.Backfill;
using PluginApp.CartOffers;
using PluginApp.Churn;
using PluginApp.Compliance;
using PluginApp.Data;
using PluginApp.Demo;
using PluginApp.Experiments;
using PluginApp.Governance;
using PluginApp.Health;
using PluginApp.Hosting;
using PluginApp.Install;
using PluginApp.Intent;
using PluginApp.Jobs;
using PluginApp.Operations;
using PluginApp.Outbox;
using PluginApp.Recommendations;
using PluginApp.Risk;
using PluginApp.StoreData;
using PluginApp.Stripe;
using PluginApp.Training;
using PluginApp.Webhooks;

var builder = WebApplication.CreateBuilder(args);
// No route needs more than a webhook's 1 MiB; unauthenticated routes read even less (each checks its own limit).
builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = PluginApp.Webhooks.WebhookEndpoints.MaxBodyBytes + 1024);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddProblemDetails();
builder.Services.AddTrustedProxies();
builder.AddData();
builder.Services.AddCompliance();
builder.Services.AddStore();
builder.AddInstall();
builder.Services.AddWebhooks();
builder.AddAdminShell();
builder.Services.AddOutbox();
builder.Services.AddBackfill();
builder.Services.AddTraining();
builder.Services.AddExperiments();
builder.Services.AddRecommendations();
builder.Services.AddRisk();
builder.Services.AddReviewQueue();
builder.Services.AddStripe();
builder.Services.AddChurn();
builder.Services.AddCartOffers();
builder.Services.AddIntent();
builder.Services.AddGovernance();
builder.AddScheduling();
builder.AddOperations();
builder.AddDemo();

var app = builder.Build();
if (args is ["keys", ..]) return await PluginApp.Install.KeyRing.KeyRingCommands.RunAsync(app.Services, args);
app.UseTrustedProxies();
app.UseExceptionHandler();
app.UseAuthentication();
app.UseAuthorization();
app.MapHealth();
app.MapWebhooks();
app.MapStripeWebhooks();
app.MapOAuth();
app.MapAdminShell();
app.MapAdminApi()
    .MapWebhooksAdmin()
    .MapBackfillAdmin()
    .MapOutboxAdmin()
    .MapPrivacyAdmin()
    .MapModelsAdmin()
    .MapSwitchesAdmin()
    .MapRiskAdmin()
    .MapRecommendationsAdmin()
    .MapReviewQueue()
    .MapStripeAdmin()
    .MapChurnAdmin()
    .MapExperimentsAdmin()
    .MapCartOffersAdmin()
    .MapGovernanceAdmin();
app.MapProxy();
app.MapDemoStorefront(app.Environment);
app.MapJobsDashboard();
app.MapOperatorMetrics();
await app.RunAsync();
return 0;

public partial class Program;
