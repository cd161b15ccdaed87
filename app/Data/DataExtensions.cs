using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;
using PluginApp.StoreData;

namespace PluginApp.Data;

public sealed class DatabaseOptions
{
    public const string Section = "ConnectionStrings";
    public string Postgres { get; set; } = "";
}

public sealed class DatabaseOptionsValidator : IValidateOptions<DatabaseOptions>
{
    public ValidateOptionsResult Validate(string? name, DatabaseOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.Postgres))
            return ValidateOptionsResult.Fail("ConnectionStrings:Postgres is required (an Npgsql connection string).");
        try { _ = new NpgsqlConnectionStringBuilder(o.Postgres); }
        catch (ArgumentException e) { return ValidateOptionsResult.Fail($"ConnectionStrings:Postgres is not a valid connection string: {e.Message}"); }
        return ValidateOptionsResult.Success;
    }
}

public static class DataExtensions
{
    public static IHostApplicationBuilder AddData(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptionsValidator>();
        builder.Services.AddSingleton(sp =>
        {
            var cs = sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.Postgres;
            return new NpgsqlDataSourceBuilder(cs).Build();
        });
        builder.Services.AddScoped<ShopScope>();
        builder.Services.AddDbContext<AppDbContext>((sp, o) => o.UseNpgsql(sp.GetRequiredService<NpgsqlDataSource>()));
        builder.Services.AddSingleton<DatabaseMigrator>();
        builder.Services.AddHostedService<MigrationHostedService>();
        builder.Services.AddExceptionHandler<DatabaseUnavailable>();
        builder.Services.AddHostedService<ChangeNotifications>();
        return builder;
    }
}
