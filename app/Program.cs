using PluginApp.Admin;
using PluginApp.Data;
using PluginApp.Health;
using PluginApp.Install;
using PluginApp.Webhooks;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddProblemDetails();
builder.AddData();
builder.AddInstall();
builder.Services.AddWebhooks();

var app = builder.Build();
app.UseExceptionHandler();
app.UseAuthentication();
app.UseAuthorization();
app.MapHealth();
app.MapWebhooks();
app.MapOAuth();
app.MapAdminPage();
app.MapAdminApi();
app.Run();

public partial class Program;
