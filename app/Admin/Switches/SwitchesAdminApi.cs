using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Data;

namespace PluginApp.Admin.Switches;

/// <summary>The merchant's switches per AI feature and the shopper notice, each change recorded.</summary>
public static class SwitchesAdminApi
{
    public static RouteGroupBuilder MapSwitchesAdmin(this RouteGroupBuilder api)
    {
        api.MapGet("/features", GetAsync);
        api.MapPut("/features/{feature}", PutAsync);
        api.MapGet("/features/history", HistoryAsync);
        api.MapPut("/shopper-notice", PutNoticeAsync);
        return api;
    }

    public sealed record SwitchBody(bool Enabled, string? WhenOff, string? Reason = null);
    public sealed record NoticeBody(string? Text);
    public sealed record NoticeView(string? Text);

    private static async Task<Ok<List<FeatureSwitch>>> GetAsync(AiFeatureSwitches switches, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await switches.GetAsync(scope.ShopId, ct));

    private static async Task<Ok<List<FeatureSwitchChange>>> HistoryAsync(AiFeatureSwitches switches, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await switches.HistoryAsync(scope.ShopId, ct));

    private static async Task<Results<Ok<FeatureSwitch>, ValidationProblem>> PutAsync(string feature, SwitchBody body, AiFeatures features,
        AiFeatureSwitches switches, ShopScope scope, HttpContext http, IServiceProvider services, CancellationToken ct)
    {
        var problems = switches.Problems(feature, body.WhenOff);
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        var f = features.Find(feature)!;
        var whenOff = body.WhenOff ?? f.OffChoices[0];
        var reason = string.IsNullOrWhiteSpace(body.Reason) ? null : body.Reason.Trim();
        if (reason?.Length > 500) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["reason"] = ["at most 500 characters"] });
        await switches.SaveAsync(scope.ShopId, feature, body.Enabled, whenOff, AdminUser.Of(http), reason, ct);
        switches.Changed(services, scope.ShopId); // this instance at once; the others on NOTIFY
        if (body.Enabled) f.WhenSwitchedOn?.Invoke(services, scope.ShopId);
        else if (f.WhenSwitchedOff is { } switchedOff) await switchedOff(services, scope.ShopId, ct);
        if (f.Blocks is not null) BlockVisibilityJob.Enqueue(services, scope.ShopId, feature);
        return TypedResults.Ok(new FeatureSwitch(feature, body.Enabled, whenOff));
    }

    private static async Task<Results<Ok<NoticeView>, ValidationProblem>> PutNoticeAsync(NoticeBody body, ShopperNotices notices, AiFeatures features,
        ShopScope scope, HttpContext http, IServiceProvider services, CancellationToken ct)
    {
        if (body.Text?.Trim().Length > ShopperNotices.MaxLength)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["text"] = [$"at most {ShopperNotices.MaxLength} characters; this has {body.Text.Trim().Length}"] });
        await notices.SaveAsync(scope.ShopId, body.Text, AdminUser.Of(http), ct);
        foreach (var f in features.All) f.OnChanged?.Invoke(services, scope.ShopId);
        return TypedResults.Ok(new NoticeView(string.IsNullOrWhiteSpace(body.Text) ? null : body.Text.Trim()));
    }
}

/// <summary>Who made a change: the staff user of the session token ("sub"), or the demo.</summary>
public static class AdminUser
{
    public static string? Of(HttpContext http) =>
        http.User.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)?.Value is { Length: > 0 } id ? $"staff user {id}" : null;
}
