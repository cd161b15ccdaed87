using Microsoft.AspNetCore.Http.HttpResults;
using System.Net.Sockets;
using Microsoft.AspNetCore.Diagnostics;
using Npgsql;
using PluginApp.StoreData;

namespace PluginApp.Data;

/// <summary>
/// When PostgreSQL cannot be reached, every request is answered 503 with Retry-After (Shopify retries webhooks, App Bridge
/// retries fetches) and one short line is logged per ten seconds, instead of a 500 and a stack trace per request.
/// </summary>
public sealed class DatabaseUnavailable(TimeProvider clock, ILogger<DatabaseUnavailable> logger) : IExceptionHandler
{
    public const int RetryAfterSeconds = 10;
    private long _lastLogged;

    public static bool Is(Exception e) => e switch
    {
        NpgsqlException { IsTransient: true } => true,
        NpgsqlException { InnerException: SocketException or TimeoutException or IOException } => true,
        PostgresException p => p.SqlState is "57P01" or "57P02" or "57P03" or "53300" or "08006" or "08001",
        _ => false,
    };

    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken ct)
    {
        if (!Is(exception)) return false;
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        var last = Interlocked.Read(ref _lastLogged);
        if (now - last >= 10 && Interlocked.CompareExchange(ref _lastLogged, now, last) == last)
            logger.LogWarning("The database is unavailable ({Message}); answering 503 with Retry-After", exception.Message);
        http.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await TypedResults.Problem(title: "Service unavailable", detail: "The database cannot be reached; try again shortly.",
            statusCode: StatusCodes.Status503ServiceUnavailable).ExecuteAsync(http);
        return true;
    }
}
