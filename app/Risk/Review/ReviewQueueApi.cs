using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using PluginApp.Admin.Switches;
using PluginApp.Data;

namespace PluginApp.Risk.Review;

/// <summary>
/// The review queue's JSON under /api/admin/review (routes in <see cref="ReviewQueueExtensions.MapReviewQueue"/>): the queue,
/// one order's review, its lock, and decisions. It runs in the admin API's group (session token, the shop's scope); an order that is not the shop's scored order is a 404, another
/// reviewer's live lock a 409 that says whose it is and until when.
/// </summary>
public static class ReviewQueueApi
{
    public const int PageSize = 100;

    /// <param name="Cancel">With decision "fraud": also cancel the order in Shopify, with the refund ("original" or "none"),
    /// restock and customer notification chosen.</param>
    /// <param name="Seen">How many approve and fraud decisions the reviewer's page showed (the review page sends it): when
    /// another was recorded since, the decision is refused with 409 and says whose it was.</param>
    /// <param name="Level">The order's risk level the reviewer's page showed (the review page sends it): when the order was
    /// scored at another since, an approval or fraud verdict is refused with 409 and says the level now.</param>
    /// <param name="Known">The fraud label from outside the queue the reviewer's page showed ("" for none; the review page
    /// sends it): when another came or went since, an approval or fraud verdict is refused with 409 and says so.</param>
    public sealed record DecisionBody(string? Decision, string? Note, bool? Cancel = null, string? Refund = null, bool? Restock = null,
        bool? NotifyCustomer = null, int? Seen = null, string? Level = null, string? Known = null);

    public sealed record DecisionView(string Decision, string? Note, string By, DateTimeOffset At, CancelChoice? Cancel);

    public static readonly string[] Refunds = ["original", "none"];

    /// <summary>Who is reviewing: the session's staff user, or (the demo, which has none) one unnamed reviewer.</summary>
    public static string Reviewer(HttpContext http) => AdminUser.Of(http) ?? "an unnamed staff user";

    /// <summary>"Being reviewed by staff user 42 until 14:05 UTC".</summary>
    public static string BeingReviewed(ReviewLock held) => $"Being reviewed by {held.Holder} until {Clock(held.ExpiresAt)}";

    public static string Clock(DateTimeOffset at) => at.UtcDateTime.ToString("HH:mm", CultureInfo.InvariantCulture) + " UTC";

    internal static async Task<Ok<ReviewQueue>> QueueAsync(ReviewStore store, ShopScope scope, CancellationToken ct) =>
        TypedResults.Ok(await store.QueueAsync(scope.ShopId, PageSize, ct));

    internal static async Task<Results<Ok<ReviewDetail>, ProblemHttpResult>> OrderAsync(long id, ReviewStore store, ShopScope scope, CancellationToken ct) =>
        await store.DetailAsync(scope.ShopId, id, ct) is { } detail ? TypedResults.Ok(detail) : NotFound(id);

    internal static async Task<Results<Ok<ReviewLock>, ProblemHttpResult>> LockAsync(long id, ReviewStore store, ShopScope scope, HttpContext http,
        CancellationToken ct) =>
        await store.TakeLockAsync(scope.ShopId, id, Reviewer(http), ct) switch
        {
            null => NotFound(id),
            { Mine: true } taken => TypedResults.Ok(taken.Lock),
            var other => Locked(other.Lock),
        };

    internal static async Task<NoContent> ReleaseAsync(long id, ReviewStore store, ShopScope scope, HttpContext http,
        CancellationToken ct)
    {
        await store.ReleaseAsync(scope.ShopId, Reviewer(http), id, ct);
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<DecisionView>, ValidationProblem, ProblemHttpResult>> DecideAsync(long id, DecisionBody body, ReviewStore store,
        ShopScope scope, HttpContext http, TimeProvider clock, CancellationToken ct)
    {
        var note = string.IsNullOrWhiteSpace(body.Note) ? null : body.Note.Trim();
        var problems = Problems(body.Decision, note);
        foreach (var (field, messages) in CancelProblems(body)) problems[field] = messages;
        if (problems.Count > 0) return TypedResults.ValidationProblem(problems);
        var by = Reviewer(http);
        var cancel = body.Cancel == true ? new CancelChoice(body.Refund == "original", body.Restock == true, body.NotifyCustomer == true) : null;
        return await store.DecideAsync(scope.ShopId, id, body.Decision!, note, by, ct, cancel, body.Seen, body.Level, body.Known) switch
        {
            null => NotFound(id),
            { LabelsChanged: true } changed => TypedResults.Problem(title: "Labelled meanwhile",
                detail: (changed.KnownNow is { } known ? $"Since this page was opened, this order was labelled: {RiskScorer.KnownFraudFact(known)}. "
                            : "Since this page was opened, the fraud label it showed has gone (a dispute won, say). ")
                        + "Nothing was recorded. Reload the page to see it before deciding.",
                statusCode: StatusCodes.Status409Conflict),
            { ScoredAs: { } level } => TypedResults.Problem(title: "Scored again meanwhile",
                detail: $"This order was scored again since this page was opened: it is {level} now, not {body.Level}. Nothing was recorded. " +
                        "Reload the page to see its new reasons before deciding.",
                statusCode: StatusCodes.Status409Conflict),
            { DecidedSince: { } since } => TypedResults.Problem(title: "Decided meanwhile",
                detail: $"{ReviewQueueModel.Decision(since.Decision)} by {since.By ?? "someone"} at {Clock(since.At)} since this page was opened. Reload the page to see it before deciding again.",
                statusCode: StatusCodes.Status409Conflict),
            { CancelAsked: { } asked } => TypedResults.Problem(title: "Cancellation already asked",
                detail: $"{asked.By ?? "Someone"} asked Shopify at {Clock(asked.At)} to cancel this order ({ReviewQueueModel.Options(asked.Choice)}), and it " +
                        $"{(asked.Sent ? "was sent" : "is on its way")}. An order is cancelled once, so other options cannot be carried out; nothing was recorded. " +
                        "Mark fraud with the same options, or without cancelling.",
                statusCode: StatusCodes.Status409Conflict),
            { Mine: true } => TypedResults.Ok(new DecisionView(body.Decision!, note, by, clock.GetUtcNow(), cancel)),
            var other => Locked(other.Lock),
        };
    }

    /// <summary>What is wrong with a decision, by field (empty when nothing is).</summary>
    public static Dictionary<string, string[]> Problems(string? decision, string? note)
    {
        var problems = new Dictionary<string, string[]>();
        if (decision is null || !ReviewStore.Decisions.Contains(decision))
            problems["decision"] = [$"decision must be one of {string.Join(", ", ReviewStore.Decisions)}; it was {(decision is null ? "missing" : $"\"{decision}\"")}"];
        if (note?.Length > ReviewStore.NoteMaxLength)
            problems["note"] = [$"at most {ReviewStore.NoteMaxLength} characters; this has {note.Length}"];
        else if (decision == "note" && note is null)
            problems["note"] = ["write the note to record"];
        return problems;
    }

    /// <summary>A cancellation only goes with Mark fraud, and says how to refund.</summary>
    public static Dictionary<string, string[]> CancelProblems(DecisionBody body)
    {
        var problems = new Dictionary<string, string[]>();
        if (body.Cancel != true) return problems;
        if (body.Decision != "fraud")
            problems["cancel"] = ["only an order marked as fraud can be cancelled from here: choose Mark fraud, or untick the cancellation"];
        if (body.Refund is null || !Refunds.Contains(body.Refund))
            problems["refund"] = [$"refund must be one of {string.Join(", ", Refunds)}; it was {(body.Refund is null ? "missing" : $"\"{body.Refund}\"")}"];
        return problems;
    }

    // Why the same words whatever the reason: an order of another shop must look exactly like one that does not exist.
    private static ProblemHttpResult NotFound(long id) =>
        TypedResults.Problem(title: "Not found", detail: $"This shop has no scored order {id}.", statusCode: StatusCodes.Status404NotFound);

    private static ProblemHttpResult Locked(ReviewLock held) =>
        TypedResults.Problem(title: "Being reviewed", detail: BeingReviewed(held) + ".", statusCode: StatusCodes.Status409Conflict);
}
