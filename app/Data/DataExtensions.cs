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
    /// <summary>Statements each pooled connection keeps prepared, unless the connection string says otherwise.</summary>
    public const int DefaultMaxAutoPrepare = 200;

    public static IHostApplicationBuilder AddData(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptionsValidator>();
        builder.Services.AddSingleton(sp =>
        {
            var cs = sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.Postgres;
            var source = new NpgsqlDataSourceBuilder(cs);
            var named = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = cs };
            // Why prepared by default: the same few hundred statements run for every webhook, score and answer; prepared on
            // each pooled connection after a few uses, PostgreSQL parses them once instead of on every call. A connection
            // string that names Max Auto Prepare (0 turns it off) keeps its own value.
            if (!named.ContainsKey("Max Auto Prepare") && !named.ContainsKey("MaxAutoPrepare"))
                source.ConnectionStringBuilder.MaxAutoPrepare = DefaultMaxAutoPrepare;
            // Why still planned on every call, whatever is prepared: one plan for every shop would be made for whichever shop
            // came first (or for tables still empty after a deploy); a big store and a small one need different plans.
            // Webhook ingestion, whose statements are key lookups, opts into reused plans (IngestBatcher).
            if (source.ConnectionStringBuilder.Options?.Contains("plan_cache_mode", StringComparison.Ordinal) != true)
                source.ConnectionStringBuilder.Options = $"{source.ConnectionStringBuilder.Options} -c plan_cache_mode=force_custom_plan".Trim();
            // Why PostgreSQL's JIT off: the app's statements are many and short, and the few whose estimates pass its threshold
            // (order risk's features and store days, over a large store) were compiled again on every call: 5-7 ms each, 2.2 s
            // of a 20,000-order ingest pass (pg_stat_statements, 5 Dec 2026), for statements that run in a few ms without it.
            if (source.ConnectionStringBuilder.Options?.Contains("jit=", StringComparison.OrdinalIgnoreCase) != true)
                source.ConnectionStringBuilder.Options = $"{source.ConnectionStringBuilder.Options} -c jit=off".Trim();
            return source.Build();
        });
        builder.Services.AddScoped<ShopScope>();
        builder.Services.AddDbContext<AppDbContext>((sp, o) => o.UseNpgsql(sp.GetRequiredService<NpgsqlDataSource>()));
        builder.Services.AddSingleton<DatabaseMigrator>();
        builder.Services.AddSingleton<TableStatistics>();
        builder.Services.AddHostedService<MigrationHostedService>();
        builder.Services.AddExceptionHandler<DatabaseUnavailable>();
        builder.Services.AddHostedService<ChangeNotifications>();
        return builder;
    }
}
