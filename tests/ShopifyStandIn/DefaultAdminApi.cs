using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace ShopifyStandIn;

/// <summary>One GraphQL request as the stand-in received it.</summary>
public sealed record GraphQLCall(string Shop, string AccessToken, string Query, JsonObject Variables, string BaseUrl)
{
    public bool Mentions(string name) => Query.Contains(name, StringComparison.Ordinal);
}

/// <summary>
/// Enough of the Admin GraphQL API for the app's jobs: bulk queries answered from JSONL files the
/// caller registers per root field (products, customers, orders), and mutations accepted and recorded.
/// </summary>
public sealed class DefaultAdminApi
{
    private readonly ConcurrentDictionary<string, string> _jsonlByRoot = new();
    private readonly ConcurrentDictionary<string, (string Root, int Polls)> _operations = new();
    private readonly ConcurrentQueue<GraphQLCall> _mutations = new();
    private int _next;

    public IReadOnlyCollection<GraphQLCall> Mutations => _mutations;

    /// <summary>Polls a bulk operation answers RUNNING before it answers COMPLETED.</summary>
    public int PollsBeforeComplete { get; set; } = 1;

    /// <summary>Serve this JSONL file as the result of bulk queries over the given root field.</summary>
    public void ServeBulk(string rootField, string jsonlPath) => _jsonlByRoot[rootField] = jsonlPath;

    /// <param name="key">The numeric tail of the operation's GID, as it appears in the result URL.</param>
    public string? BulkResult(string key) =>
        _operations.TryGetValue($"gid://shopify/BulkOperation/{key}", out var op) && _jsonlByRoot.TryGetValue(op.Root, out var p) ? p : null;

    public IResult Answer(GraphQLCall call)
    {
        if (call.Mentions("bulkOperationRunQuery"))
        {
            var inner = call.Variables["query"]?.GetValue<string>() ?? call.Query;
            var root = new[] { "products", "customers", "orders" }.FirstOrDefault(r => inner.Contains(r + " ", StringComparison.Ordinal) || inner.Contains(r + "(", StringComparison.Ordinal) || inner.Contains(r + "{", StringComparison.Ordinal)) ?? "unknown";
            var id = $"gid://shopify/BulkOperation/{Interlocked.Increment(ref _next)}";
            _operations[id] = (root, 0);
            return Data(new JsonObject
            {
                ["bulkOperationRunQuery"] = new JsonObject
                {
                    ["bulkOperation"] = new JsonObject { ["id"] = id, ["status"] = "CREATED" },
                    ["userErrors"] = new JsonArray(),
                },
            });
        }
        if (call.Mentions("BulkOperation") && call.Variables["id"]?.GetValue<string>() is { } opId && _operations.TryGetValue(opId, out var op))
        {
            _operations[opId] = (op.Root, op.Polls + 1);
            var done = op.Polls >= PollsBeforeComplete;
            var path = _jsonlByRoot.GetValueOrDefault(op.Root);
            var count = done && path is not null ? File.ReadLines(path).LongCount() : 0;
            var key = opId[(opId.LastIndexOf('/') + 1)..];
            return Data(new JsonObject
            {
                ["node"] = new JsonObject
                {
                    ["id"] = opId,
                    ["status"] = done ? "COMPLETED" : "RUNNING",
                    ["errorCode"] = null,
                    ["objectCount"] = count.ToString(),
                    ["url"] = done && path is not null ? $"{call.BaseUrl}/bulk/{key}.jsonl" : null,
                    ["partialDataUrl"] = null,
                },
            });
        }
        if (call.Query.TrimStart().StartsWith("mutation", StringComparison.Ordinal))
        {
            _mutations.Enqueue(call);
            var field = MutationField(call.Query);
            return Data(new JsonObject { [field] = new JsonObject { ["userErrors"] = new JsonArray() } });
        }
        return Data(new JsonObject());
    }

    /// <summary>The first field selected by a mutation document, e.g. "tagsAdd".</summary>
    public static string MutationField(string query)
    {
        var body = query[(query.IndexOf('{') + 1)..].TrimStart();
        var end = body.IndexOfAny(['(', ' ', '{', '\n']);
        return end < 0 ? body : body[..end];
    }

    /// <summary>A GraphQL answer with a throttle status of a plenty-full bucket.</summary>
    public static IResult Data(JsonObject data, double available = 1990) => Results.Json(new JsonObject
    {
        ["data"] = data,
        ["extensions"] = new JsonObject
        {
            ["cost"] = new JsonObject
            {
                ["requestedQueryCost"] = 10, ["actualQueryCost"] = 10,
                ["throttleStatus"] = new JsonObject { ["maximumAvailable"] = 2000.0, ["currentlyAvailable"] = available, ["restoreRate"] = 100.0 },
            },
        },
    });
}
