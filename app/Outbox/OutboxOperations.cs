using System.Text.Json;

namespace PluginApp.Outbox;

/// <summary>
/// How a call that may already have reached Shopify is recognised, so it is never applied twice: a read whose answer
/// says whether the effect is there.
/// </summary>
/// <param name="Document">The query.</param>
/// <param name="Variables">The query's variables, from the call's variables.</param>
/// <param name="AlreadyApplied">Given the query's data and the call's variables: is the effect already in Shopify?</param>
public sealed record OutboxCheck(string Document, Func<JsonElement, object> Variables, Func<JsonElement, JsonElement, bool> AlreadyApplied);

/// <summary>
/// A kind of Shopify call the outbox may send. Every kind is either idempotent at Shopify (adding a tag twice leaves one
/// tag; setting a metafield twice leaves one value) or carries a <see cref="OutboxCheck"/> that is run before any
/// resend. Features register their kinds with <see cref="OutboxExtensions.AddOutboxOperation"/>.
/// </summary>
/// <param name="Name">Stored with each call; also the mutation's payload field, where its userErrors are read.</param>
public sealed record OutboxOperation(string Name, string Document, OutboxCheck? Check)
{
    /// <summary>
    /// For a kind whose call a later decision in our own tables can make unwanted (a hold an approval since let go): SQL
    /// giving why a failed call must not be retried, or no row or null when it may. $1 the shop id, $2 the call's
    /// idempotency key. The Operations page's retry runs it before putting the call back in line.
    /// </summary>
    public string? RetryRefusal { get; init; }

    /// <summary>tagsAdd: idempotent (a tag already there stays one tag).</summary>
    public static readonly OutboxOperation TagsAdd = new("tagsAdd",
        "mutation AddTags($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }", null);

    /// <summary>tagsRemove: idempotent.</summary>
    public static readonly OutboxOperation TagsRemove = new("tagsRemove",
        "mutation RemoveTags($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } } }", null);

    /// <summary>metafieldsSet: idempotent (the same value set twice is one value).</summary>
    public static readonly OutboxOperation MetafieldsSet = new("metafieldsSet",
        "mutation SetMetafields($metafields: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $metafields) { metafields { id } userErrors { field message code } } }", null);

    /// <summary>metafieldsDelete: idempotent (a metafield already gone is answered null, not an error).</summary>
    public static readonly OutboxOperation MetafieldsDelete = new("metafieldsDelete",
        "mutation DeleteMetafields($metafields: [MetafieldIdentifierInput!]!) { metafieldsDelete(metafields: $metafields) { deletedMetafields { key } userErrors { field message } } }", null);

    /// <summary>
    /// orderRiskAssessmentCreate is not idempotent: each call adds an assessment. Before a resend the order's assessments
    /// are read, and one with the same level and facts means the earlier attempt landed. Each of ours says in its last fact
    /// when it was scored or decided, so an earlier assessment that said the same (the order back at HIGH after MEDIUM) is
    /// not taken for it.
    /// </summary>
    public static readonly OutboxOperation OrderRiskAssessmentCreate = new("orderRiskAssessmentCreate",
        """
        mutation CreateRiskAssessment($input: OrderRiskAssessmentCreateInput!) {
          orderRiskAssessmentCreate(orderRiskAssessmentInput: $input) { orderRiskAssessment { riskLevel } userErrors { field message } }
        }
        """,
        new OutboxCheck("""
            query RiskAssessments($id: ID!) {
              order(id: $id) { risk { assessments { riskLevel provider { title } facts { description sentiment } } } }
            }
            """, v => new { id = v.GetProperty("input").GetProperty("orderId").GetString() }, SameAssessmentExists));

    private static bool SameAssessmentExists(JsonElement data, JsonElement variables)
    {
        var input = variables.GetProperty("input");
        var level = input.GetProperty("riskLevel").GetString();
        var facts = input.TryGetProperty("facts", out var f) ? f.EnumerateArray().Select(x => x.GetProperty("description").GetString()).ToList() : [];
        if (!data.TryGetProperty("order", out var order) || order.ValueKind != JsonValueKind.Object
            || !order.TryGetProperty("risk", out var risk) || risk.ValueKind != JsonValueKind.Object) return false;
        return risk.GetProperty("assessments").EnumerateArray().Any(a =>
            a.GetProperty("riskLevel").GetString() == level
            && a.GetProperty("facts").EnumerateArray().Select(x => x.GetProperty("description").GetString()).SequenceEqual(facts));
    }
}
