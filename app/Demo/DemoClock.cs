using Microsoft.AspNetCore.Http.HttpResults;

namespace PluginApp.Demo;

/// <summary>
/// The demo app's clock: the system's, or, while the demo's simulated shoppers play the store's last two weeks
/// (scripts/replay.sh --shopper-days), set back to the moment each shopper visits, so the admin shows days of traffic.
/// Registered, and settable at PUT /demo/clock, only in the Demo environment.
/// </summary>
public sealed class DemoClock : TimeProvider
{
    private long _offsetTicks;

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow().AddTicks(Interlocked.Read(ref _offsetTicks));

    /// <summary>Makes "now" <paramref name="at"/> (the clock runs on from there), or the system's time again when null.</summary>
    public void Set(DateTimeOffset? at) =>
        Interlocked.Exchange(ref _offsetTicks, at is { } t ? (t - base.GetUtcNow()).Ticks : 0);

    public sealed record ClockBody(DateTimeOffset? At);

    public sealed record ClockView(DateTimeOffset Now, bool Simulated);

    internal static IEndpointRouteBuilder MapDemoClock(IEndpointRouteBuilder app)
    {
        app.MapPut("/demo/clock", Results<Ok<ClockView>, BadRequest<string>> (ClockBody body, DemoClock clock) =>
        {
            // The simulated shoppers only ever go back in time; a clock in the future would expire every token.
            if (body.At > clock.SystemNow()) return TypedResults.BadRequest("the demo clock can only be set to the past");
            clock.Set(body.At);
            return TypedResults.Ok(new ClockView(clock.GetUtcNow(), body.At is not null));
        });
        return app;
    }

    private DateTimeOffset SystemNow() => base.GetUtcNow();
}
