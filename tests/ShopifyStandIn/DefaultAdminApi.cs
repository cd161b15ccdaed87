using System.Collections.Concurrent;
using System.Text.Json.Nodes;

namespace ShopifyStandIn;

/// <summary>One GraphQL request as the stand-in received it.</summary>
public sealed record GraphQLCall(string Shop, string AccessToken, string Query, JsonObject Variables, string BaseUrl)
{
    public bool Mentions(string name) => Query.Contains(name, StringComparison.Ordinal);
}

/// <summary>
/// Enough of the Admin GraphQL API for the app's jobs: bulk queries answered from JSONL files the caller registers per root
/// field (products, customers, orders); mutations recorded and applied (tags, risk assessments), so a test can see how many
/// times an effect really happened; orders' risk assessments readable back; orderCancel marks the order cancelled (its
/// cancelledAt readable back); an order's fulfillment orders (one OPEN one by default) take and release holds.
/// </summary>
public sealed class DefaultAdminApi
{
    private readonly ConcurrentDictionary<string, BulkFile> _jsonlByRoot = new();
    private readonly ConcurrentDictionary<string, (string Root, int Polls)> _operations = new();
    private readonly ConcurrentQueue<GraphQLCall> _mutations = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<JsonObject>> _assessments = new();
    private readonly ConcurrentDictionary<(string Shop, string Field), int> _dropsAfterApplying = new();
    private readonly ConcurrentDictionary<(string Shop, string Field), int> _dropsBeforeApplying = new();
    private int _next;

    public IReadOnlyCollection<GraphQLCall> Mutations => _mutations;

    /// <summary>Polls a bulk operation answers RUNNING before it answers COMPLETED.</summary>
    public int PollsBeforeComplete { get; set; } = 1;

    private readonly ConcurrentDictionary<string, bool> _held = new();

    /// <summary>Bulk operations over this root field stay RUNNING until <see cref="ReleaseBulk"/> (a test decides when Shopify finishes).</summary>
    public void HoldBulk(string rootField) => _held[rootField] = true;

    public void ReleaseBulk(string rootField) => _held.TryRemove(rootField, out _);

    /// <summary>How many bulk operations were started over this root field.</summary>
    public int BulkOperationsStarted(string rootField) => _operations.Values.Count(o => o.Root == rootField);

    /// <summary>Serve this JSONL file as the result of bulk queries over the given root field. Read now, as Shopify has its
    /// file and object count ready when the operation completes (why: the benchmarks time the app's backfill, and reading a
    /// 230 MB file in the stand-in at each poll and download ran inside that time on the same cores).</summary>
    public void ServeBulk(string rootField, string jsonlPath) => _jsonlByRoot[rootField] = BulkFile.Read(jsonlPath);

    /// <summary>The next <paramref name="times"/> calls of this mutation for the shop take effect, then the connection drops unanswered.</summary>
    public void DropAfterApplying(string shop, string mutationField, int times = 1) => _dropsAfterApplying[(shop, mutationField)] = times;

    /// <summary>The next <paramref name="times"/> calls of this mutation for the shop are lost on the way: the connection drops
    /// unanswered and nothing is applied (the app cannot tell this from <see cref="DropAfterApplying"/>).</summary>
    public void DropBeforeApplying(string shop, string mutationField, int times = 1) => _dropsBeforeApplying[(shop, mutationField)] = times;

    /// <summary>Risk assessments applied to an order (its GID), in the order they were created.</summary>
    public IReadOnlyList<JsonObject> RiskAssessments(string orderGid) => _assessments.TryGetValue(orderGid, out var q) ? q.ToList() : [];

    /// <param name="key">The numeric tail of the operation's GID, as it appears in the result URL.</param>
    public byte[]? BulkResult(string key) =>
        _operations.TryGetValue($"gid://shopify/BulkOperation/{key}", out var op) && _jsonlByRoot.TryGetValue(op.Root, out var f) ? f.Current().Bytes : null;

    /// <summary>
    /// A served JSONL file as read, read again if it was written since. An orders' file may carry each refund's
    /// <c>refundLineItems</c> (the replay's files and the tests' do): that is the store's data the stand-in answers a
    /// refund's lines from (<see cref="RefundLines"/>), as Shopify's bulk export itself never gives them (it refuses a
    /// connection inside a list, <see cref="ConnectionInList"/>).
    /// </summary>
    private sealed record BulkFile(string Path, DateTime WrittenAt, byte[] Bytes, long Lines, IReadOnlyDictionary<string, JsonArray> RefundLines)
    {
        public static BulkFile Read(string path)
        {
            var written = File.GetLastWriteTimeUtc(path);
            var bytes = File.ReadAllBytes(path);
            var refunds = new Dictionary<string, JsonArray>(StringComparer.Ordinal);
            var marker = "\"refundLineItems\""u8;
            for (var rest = bytes.AsSpan(); rest.Length > 0;)
            {
                var end = rest.IndexOf((byte)'\n');
                var line = end < 0 ? rest : rest[..end];
                if (line.IndexOf(marker) >= 0 && JsonNode.Parse(line) is JsonObject order && order["refunds"] is JsonArray list)
                    foreach (var refund in list.OfType<JsonObject>())
                        if (refund["id"]?.GetValue<string>() is { } id && refund["refundLineItems"]?["nodes"] is JsonArray nodes) refunds[id] = nodes;
                rest = end < 0 ? [] : rest[(end + 1)..];
            }
            return new(path, written, bytes, bytes.AsSpan().Count((byte)'\n') + (bytes.Length > 0 && bytes[^1] != (byte)'\n' ? 1 : 0), refunds);
        }

        public BulkFile Current() => File.GetLastWriteTimeUtc(Path) == WrittenAt && new FileInfo(Path).Length == Bytes.Length ? this : Read(Path);
    }

    /// <summary>
    /// A fulfillment order as the stand-in keeps it: its status and holds (id, handle, reason, and whether the app made it:
    /// false for another app's or staff's), in the order they were applied.
    /// </summary>
    public sealed class StandInFulfillmentOrder(string id, string status)
    {
        public string Id { get; } = id;
        public string Status { get; set; } = status;
        public List<(string Id, string? Handle, string? Reason, bool ByThisApp)> Holds { get; } = [];
    }

    private readonly ConcurrentDictionary<string, SortedSet<string>> _tags = new();
    private readonly ConcurrentDictionary<(string Owner, string Namespace, string Key), (string Type, string Value)> _metafields = new();

    /// <summary>A resource's tags (its GID) as tagsAdd and tagsRemove left them, sorted.</summary>
    public IReadOnlyList<string> Tags(string gid)
    {
        if (!_tags.TryGetValue(gid, out var set)) return [];
        lock (set) return set.ToList();
    }

    /// <summary>Gives a resource tags of its own, as a merchant would have (the app must leave them alone).</summary>
    public void SetTags(string gid, params string[] tags) => _tags[gid] = new SortedSet<string>(tags, StringComparer.Ordinal);

    /// <summary>Drops a resource's metafields, as Shopify drops an app installation's when the app is uninstalled.</summary>
    public void ForgetMetafields(string ownerGid)
    {
        foreach (var key in _metafields.Keys.Where(k => k.Owner == ownerGid).ToList()) _metafields.TryRemove(key, out _);
    }

    /// <summary>A resource's metafields set through metafieldsSet: (namespace.key) -> value.</summary>
    public IReadOnlyDictionary<string, string> Metafields(string ownerGid) =>
        _metafields.Where(m => m.Key.Owner == ownerGid).ToDictionary(m => $"{m.Key.Namespace}.{m.Key.Key}", m => m.Value.Value);

    private readonly ConcurrentDictionary<string, JsonObject> _discounts = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The basic code discounts created with discountCodeBasicCreate, by code (case-insensitive, as Shopify's codes).</summary>
    public IReadOnlyDictionary<string, JsonObject> DiscountCodes => _discounts;

    private readonly object _ordersLock = new();
    private readonly Dictionary<string, List<StandInFulfillmentOrder>> _fulfillmentOrders = new();
    private readonly Dictionary<string, string> _cancelledAt = new();
    private int _nextHold;

    private readonly ConcurrentDictionary<string, string[]> _collections = new();

    /// <summary>A collection's products (GIDs), as <c>collection(id:) { products }</c> answers them; an unknown collection is null.</summary>
    public void SetCollection(string collectionGid, params string[] productGids) => _collections[collectionGid] = productGids;

    /// <summary>How many products a page of a collection's products holds (Shopify's first: 250 at most).</summary>
    public int CollectionPageSize { get; set; } = 250;

    private StandInAnswer CollectionProducts(string id, string? after)
    {
        if (!_collections.TryGetValue(id, out var products)) return Data(new JsonObject { ["collection"] = null });
        var from = after is null ? 0 : int.Parse(after, System.Globalization.CultureInfo.InvariantCulture);
        var page = products.Skip(from).Take(CollectionPageSize).ToArray();
        var next = from + page.Length;
        return Data(new JsonObject
        {
            ["collection"] = new JsonObject
            {
                ["products"] = new JsonObject
                {
                    ["nodes"] = new JsonArray(page.Select(p => (JsonNode)new JsonObject { ["id"] = p }).ToArray()),
                    ["pageInfo"] = new JsonObject { ["hasNextPage"] = next < products.Length, ["endCursor"] = next.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                },
            },
        });
    }

    /// <summary>Gives the order (its GID) these fulfillment orders (id, status) in place of its default one.</summary>
    public void SetFulfillmentOrders(string orderGid, params (string Id, string Status)[] fulfillmentOrders)
    {
        lock (_ordersLock) _fulfillmentOrders[orderGid] = fulfillmentOrders.Select(f => new StandInFulfillmentOrder(f.Id, f.Status)).ToList();
    }

    /// <summary>The order's fulfillment orders: as set, or one OPEN one, gid://shopify/FulfillmentOrder/{the order's number}.</summary>
    public IReadOnlyList<StandInFulfillmentOrder> FulfillmentOrders(string orderGid)
    {
        lock (_ordersLock) return FulfillmentOrdersLocked(orderGid).ToList();
    }

    private List<StandInFulfillmentOrder> FulfillmentOrdersLocked(string orderGid)
    {
        if (!_fulfillmentOrders.TryGetValue(orderGid, out var list))
            _fulfillmentOrders[orderGid] = list = [new StandInFulfillmentOrder("gid://shopify/FulfillmentOrder/" + orderGid[(orderGid.LastIndexOf('/') + 1)..], "OPEN")];
        return list;
    }

    private StandInFulfillmentOrder? FulfillmentOrderLocked(string id) =>
        _fulfillmentOrders.Values.SelectMany(l => l).FirstOrDefault(f => f.Id == id)
        ?? (id.StartsWith("gid://shopify/FulfillmentOrder/", StringComparison.Ordinal)
            ? FulfillmentOrdersLocked("gid://shopify/Order/" + id[(id.LastIndexOf('/') + 1)..]).FirstOrDefault(f => f.Id == id) : null);

    /// <summary>When orderCancel cancelled the order (its GID), or null.</summary>
    public string? CancelledAt(string orderGid)
    {
        lock (_ordersLock) return _cancelledAt.GetValueOrDefault(orderGid);
    }

    /// <summary>The GID of the app's installation on the shop, as currentAppInstallation answers it.</summary>
    public static string AppInstallation(string shop) =>
        "gid://shopify/AppInstallation/" + BitConverter.ToUInt32(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(shop)));

    public StandInAnswer Answer(GraphQLCall call)
    {
        if (call.Mentions("bulkOperationRunQuery")) return StartBulk(call);
        if (call.Mentions("BulkOperation") && call.Variables["id"]?.GetValue<string>() is { } opId && _operations.TryGetValue(opId, out var op))
            return PollBulk(call, opId, op);
        if (call.Query.TrimStart().StartsWith("mutation", StringComparison.Ordinal))
        {
            var field = MutationField(call.Query);
            // orderCancel's refundMethod is OrderCancelRefundMethodInput! in the pinned version's reference example (2026-07): a
            // document declaring its variable nullable fails GraphQL validation, and nothing is applied.
            if (field == "orderCancel" && !System.Text.RegularExpressions.Regex.IsMatch(call.Query, @"\$refundMethod\s*:\s*OrderCancelRefundMethodInput\s*!"))
                return StandInAnswer.Json(new JsonObject
                {
                    ["errors"] = new JsonArray(new JsonObject
                    {
                        ["message"] = "Nullability mismatch on variable $refundMethod and argument refundMethod (OrderCancelRefundMethodInput / OrderCancelRefundMethodInput!)",
                        ["extensions"] = new JsonObject { ["code"] = "variableMismatch" },
                    }),
                });
            _mutations.Enqueue(call);
            if (_dropsBeforeApplying.TryGetValue((call.Shop, field), out var lost) && lost > 0)
            {
                _dropsBeforeApplying[(call.Shop, field)] = lost - 1;
                return StandInAnswer.DropConnection();
            }
            var payload = Apply(call, field);
            if (_dropsAfterApplying.TryGetValue((call.Shop, field), out var left) && left > 0)
            {
                _dropsAfterApplying[(call.Shop, field)] = left - 1;
                return StandInAnswer.DropConnection();
            }
            return Data(new JsonObject { [field] = payload });
        }
        if (call.Mentions("refundLineItems(") && call.Variables["ids"] is JsonArray refundIds) return RefundLines(call, refundIds);
        if (call.Mentions("collection(id:") && call.Variables["id"]?.GetValue<string>() is { } collectionId)
            return CollectionProducts(collectionId, call.Variables["after"]?.GetValue<string>());
        if (call.Mentions("fulfillmentOrders(") && call.Variables["id"]?.GetValue<string>() is { } ofOrder)
            lock (_ordersLock)
                return Data(new JsonObject
                {
                    ["order"] = new JsonObject { ["fulfillmentOrders"] = new JsonObject { ["nodes"] = new JsonArray(FulfillmentOrdersLocked(ofOrder).Select(fo => Node(fo, call)).ToArray()) } },
                });
        if (call.Mentions("fulfillmentOrder(") && call.Variables["id"]?.GetValue<string>() is { } foId)
            lock (_ordersLock)
                return Data(new JsonObject { ["fulfillmentOrder"] = FulfillmentOrderLocked(foId) is { } fo ? Node(fo, call) : null });
        // The app's installation on the shop, owner of the app's own metafields (the blocks' visibility): one per shop.
        if (call.Mentions("currentAppInstallation"))
        {
            var owner = AppInstallation(call.Shop);
            // metafields(namespace: "…"): the installation's metafields in the namespace asked, as Shopify filters them.
            var asked = System.Text.RegularExpressions.Regex.Match(call.Query, """metafields\([^)]*namespace:\s*"([^"]+)""").Groups[1].Value;
            var held = _metafields.Where(m => m.Key.Owner == owner && m.Key.Namespace == asked)
                .OrderBy(m => m.Key.Key, StringComparer.Ordinal)
                .Select(m => (JsonNode)new JsonObject { ["namespace"] = m.Key.Namespace, ["key"] = m.Key.Key, ["value"] = m.Value.Value }).ToArray();
            return Data(new JsonObject { ["currentAppInstallation"] = new JsonObject { ["id"] = owner, ["metafields"] = new JsonObject { ["nodes"] = new JsonArray(held) } } });
        }
        if (call.Mentions("codeDiscountNodeByCode") && call.Variables["code"]?.GetValue<string>() is { } byCode)
            return Data(new JsonObject
            {
                ["codeDiscountNodeByCode"] = _discounts.TryGetValue(byCode, out var found) ? new JsonObject { ["id"] = found["id"]?.DeepClone() } : null,
            });
        if (call.Mentions("cancelledAt") && call.Variables["id"]?.GetValue<string>() is { } cancelled)
            return Data(new JsonObject { ["order"] = new JsonObject { ["id"] = cancelled, ["cancelledAt"] = CancelledAt(cancelled) } });
        if (call.Mentions("risk") && call.Variables["id"]?.GetValue<string>() is { } orderId)
            return Data(new JsonObject
            {
                ["order"] = new JsonObject { ["risk"] = new JsonObject { ["assessments"] = new JsonArray(RiskAssessments(orderId).Select(a => (JsonNode)a.DeepClone()).ToArray()) } },
            });
        return Data(new JsonObject());
    }

    private JsonObject Apply(GraphQLCall call, string field)
    {
        if (field is "tagsAdd" or "tagsRemove" && call.Variables["id"]?.GetValue<string>() is { } tagged && call.Variables["tags"] is JsonArray tagList)
        {
            var set = _tags.GetOrAdd(tagged, _ => new SortedSet<string>(StringComparer.Ordinal));
            lock (set)
                foreach (var t in tagList.Select(t => t!.GetValue<string>()))
                    if (field == "tagsAdd") set.Add(t); else set.Remove(t);
            return new JsonObject { ["node"] = new JsonObject { ["id"] = tagged }, ["userErrors"] = new JsonArray() };
        }
        if (field == "metafieldsSet" && call.Variables["metafields"] is JsonArray metafields)
        {
            if (metafields.Count > 25) return new JsonObject { ["metafields"] = null, ["userErrors"] = Errors("Exceeded the maximum metafields input limit of 25.") };
            foreach (var m in metafields.OfType<JsonObject>())
                _metafields[(m["ownerId"]!.GetValue<string>(), m["namespace"]!.GetValue<string>(), m["key"]!.GetValue<string>())] =
                    (m["type"]!.GetValue<string>(), m["value"]!.GetValue<string>());
            return new JsonObject { ["metafields"] = new JsonArray(metafields.Select(_ => (JsonNode)new JsonObject { ["id"] = $"gid://shopify/Metafield/{Interlocked.Increment(ref _next)}" }).ToArray()), ["userErrors"] = new JsonArray() };
        }
        if (field == "metafieldsDelete" && call.Variables["metafields"] is JsonArray gone)
        {
            // As Shopify: one identifier per metafield asked for, null for one that does not exist.
            var deleted = gone.OfType<JsonObject>().Select(m =>
            {
                var id = (m["ownerId"]!.GetValue<string>(), m["namespace"]!.GetValue<string>(), m["key"]!.GetValue<string>());
                return _metafields.TryRemove(id, out _) ? (JsonNode)m.DeepClone() : null;
            }).ToArray();
            return new JsonObject { ["deletedMetafields"] = new JsonArray(deleted), ["userErrors"] = new JsonArray() };
        }
        if (field == "discountCodeBasicCreate" && call.Variables["d"] is JsonObject d && d["code"]?.GetValue<string>() is { } code)
        {
            // Shopify refuses a code that already exists in the shop.
            var node = new JsonObject { ["id"] = $"gid://shopify/DiscountCodeNode/{Interlocked.Increment(ref _next)}", ["input"] = d.DeepClone() };
            if (!_discounts.TryAdd(code, node))
                return new JsonObject { ["codeDiscountNode"] = null, ["userErrors"] = new JsonArray(new JsonObject { ["field"] = new JsonArray("basicCodeDiscount", "code"), ["message"] = "Code must be unique. Please try a different code.", ["code"] = "TAKEN" }) };
            return new JsonObject { ["codeDiscountNode"] = new JsonObject { ["id"] = node["id"]!.DeepClone() }, ["userErrors"] = new JsonArray() };
        }
        if (field == "orderRiskAssessmentCreate" && call.Variables["input"] is JsonObject input)
        {
            var assessment = new JsonObject
            {
                ["riskLevel"] = input["riskLevel"]?.DeepClone(),
                ["provider"] = new JsonObject { ["title"] = "PluginApp" },
                // Shopify keeps a fact's first 256 characters.
                ["facts"] = new JsonArray((input["facts"] as JsonArray ?? []).OfType<JsonObject>().Select(f => (JsonNode)new JsonObject
                {
                    ["description"] = f["description"]?.GetValue<string>() is { } d ? FirstCharacters(d, 256) : null,
                    ["sentiment"] = f["sentiment"]?.DeepClone(),
                }).ToArray()),
            };
            _assessments.GetOrAdd(input["orderId"]!.GetValue<string>(), _ => new()).Enqueue(assessment);
            return new JsonObject { ["orderRiskAssessment"] = new JsonObject { ["riskLevel"] = input["riskLevel"]?.DeepClone() }, ["userErrors"] = new JsonArray() };
        }
        if (field == "orderCancel" && call.Variables["orderId"]?.GetValue<string>() is { } order)
            lock (_ordersLock)
            {
                if (_cancelledAt.ContainsKey(order))
                    return new JsonObject { ["job"] = null, ["orderCancelUserErrors"] = Errors("Order has already been cancelled") };
                _cancelledAt[order] = DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
                foreach (var fo in FulfillmentOrdersLocked(order)) fo.Status = "CANCELLED";
                return new JsonObject { ["job"] = new JsonObject { ["id"] = $"gid://shopify/Job/{Guid.NewGuid()}", ["done"] = false }, ["orderCancelUserErrors"] = new JsonArray() };
            }
        if (field == "fulfillmentOrderHold" && call.Variables["id"]?.GetValue<string>() is { } holdOn && call.Variables["fulfillmentHold"] is JsonObject hold)
            lock (_ordersLock)
            {
                if (FulfillmentOrderLocked(holdOn) is not { } fo) return new JsonObject { ["userErrors"] = Errors("Fulfillment order does not exist.") };
                if (fo.Status is "CLOSED" or "CANCELLED") return new JsonObject { ["userErrors"] = Errors("The fulfillment order cannot be put on hold.") };
                // Why no refusal of a repeated handle: Shopify's is undocumented, and a test must see a second hold if one is sent.
                var id = $"gid://shopify/FulfillmentHold/{Interlocked.Increment(ref _nextHold)}";
                fo.Holds.Add((id, hold["handle"]?.GetValue<string>(), hold["reason"]?.GetValue<string>(), true));
                fo.Status = "ON_HOLD";
                return new JsonObject { ["fulfillmentHold"] = new JsonObject { ["id"] = id, ["handle"] = hold["handle"]?.DeepClone() }, ["userErrors"] = new JsonArray() };
            }
        if (field == "fulfillmentOrderReleaseHold" && call.Variables["id"]?.GetValue<string>() is { } releaseOn)
            lock (_ordersLock)
            {
                if (FulfillmentOrderLocked(releaseOn) is not { } fo) return new JsonObject { ["userErrors"] = Errors("Fulfillment order does not exist.") };
                var ids = call.Variables["holdIds"] is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToHashSet() : null;
                var released = fo.Holds.RemoveAll(h => ids is null || ids.Contains(h.Id));
                if (released == 0) return new JsonObject { ["userErrors"] = Errors("The fulfillment order is not on hold.") };
                if (fo.Holds.Count == 0 && fo.Status == "ON_HOLD") fo.Status = "OPEN";
                return new JsonObject { ["fulfillmentOrder"] = new JsonObject { ["id"] = fo.Id, ["status"] = fo.Status }, ["userErrors"] = new JsonArray() };
            }
        return new JsonObject { ["userErrors"] = new JsonArray() };
    }

    /// <summary>A string's first <paramref name="n"/> characters, counted as Unicode code points.</summary>
    private static string FirstCharacters(string s, int n) => string.Concat(s.EnumerateRunes().Take(n).Select(r => r.ToString()));

    private static JsonArray Errors(string message) => new(new JsonObject { ["field"] = null, ["message"] = message });

    /// <summary>A fulfillment order as a query reads it; whether the app made each hold only when the query selects it, as GraphQL answers.</summary>
    private static JsonNode Node(StandInFulfillmentOrder fo, GraphQLCall call) => new JsonObject
    {
        ["id"] = fo.Id,
        ["status"] = fo.Status,
        ["fulfillmentHolds"] = new JsonArray(fo.Holds.Select(h =>
        {
            var node = new JsonObject { ["id"] = h.Id, ["handle"] = h.Handle, ["reason"] = h.Reason };
            if (call.Mentions("heldByRequestingApp")) node["heldByRequestingApp"] = h.ByThisApp;
            return (JsonNode)node;
        }).ToArray()),
    };

    /// <summary>List fields (not connections) of the objects the app reads in bulk: an order's refunds, fulfillments and transactions.</summary>
    private static readonly string[] ListFields = ["refunds", "fulfillments", "transactions"];

    /// <summary>
    /// The first connection selected inside a list field of a bulk query, or null: Shopify refuses such a query with
    /// "Queries that contain a connection field within a list field are not currently supported."
    /// </summary>
    public static string? ConnectionInList(string query)
    {
        foreach (var field in ListFields)
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(query, $@"\b{field}\s*(\([^)]*\))?\s*\{{"))
            {
                var depth = 0;
                var start = m.Index + m.Length - 1;
                var i = start;
                for (; i < query.Length; i++)
                {
                    if (query[i] == '{') depth++;
                    else if (query[i] == '}' && --depth == 0) break;
                }
                var block = query[start..Math.Min(i + 1, query.Length)];
                // A connection: a field whose selection holds nodes or edges, wherever in it (after pageInfo too).
                foreach (System.Text.RegularExpressions.Match inner in System.Text.RegularExpressions.Regex.Matches(block, @"\b(nodes|edges)\s*\{"))
                {
                    var depth2 = 0;
                    var i2 = inner.Index - 1;
                    for (; i2 > 0; i2--)
                    {
                        if (block[i2] == '}') depth2++;
                        else if (block[i2] == '{' && depth2-- == 0) break;
                    }
                    var owner = System.Text.RegularExpressions.Regex.Match(block[..i2], @"(\w+)\s*(\([^)]*\))?\s*$");
                    return $"{field}.{(owner.Success ? owner.Groups[1].Value : "?")}";
                }
            }
        return null;
    }

    private StandInAnswer StartBulk(GraphQLCall call)
    {
        var inner = call.Variables["query"]?.GetValue<string>() ?? call.Query;
        if (ConnectionInList(inner) is { } refused)
            return Data(new JsonObject
            {
                ["bulkOperationRunQuery"] = new JsonObject
                {
                    ["bulkOperation"] = null,
                    ["userErrors"] = new JsonArray(new JsonObject
                    {
                        ["field"] = new JsonArray("query"),
                        ["message"] = $"Queries that contain a connection field within a list field are not currently supported ({refused}).",
                    }),
                },
            });
        var root = new[] { "products", "customers", "orders" }.FirstOrDefault(r => inner.Contains(r + " ", StringComparison.Ordinal)
            || inner.Contains(r + "(", StringComparison.Ordinal) || inner.Contains(r + "{", StringComparison.Ordinal)) ?? "unknown";
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

    /// <summary>nodes(ids:) of refunds with a page of their line items (first, after: the index of the last line given), from
    /// the orders' file served; an id it does not hold is null, as Shopify answers an unknown node.</summary>
    private StandInAnswer RefundLines(GraphQLCall call, JsonArray ids)
    {
        var held = _jsonlByRoot.GetValueOrDefault("orders")?.Current().RefundLines;
        var first = call.Variables["first"]?.GetValue<int>() ?? 10;
        var from = call.Variables["after"]?.GetValue<string>() is { } after ? int.Parse(after, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var nodes = new JsonArray();
        foreach (var id in ids.Select(i => i?.GetValue<string>()))
        {
            if (id is null || held?.GetValueOrDefault(id) is not { } lines) { nodes.Add(null); continue; }
            var page = lines.Skip(from).Take(first).Select(l => l?.DeepClone()).ToArray();
            var end = from + page.Length;
            nodes.Add(new JsonObject
            {
                ["id"] = id,
                ["refundLineItems"] = new JsonObject
                {
                    ["nodes"] = new JsonArray(page),
                    ["pageInfo"] = new JsonObject { ["hasNextPage"] = end < lines.Count, ["endCursor"] = end.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                },
            });
        }
        return Data(new JsonObject { ["nodes"] = nodes });
    }

    private StandInAnswer PollBulk(GraphQLCall call, string opId, (string Root, int Polls) op)
    {
        _operations[opId] = (op.Root, op.Polls + 1);
        var done = !_held.ContainsKey(op.Root) && op.Polls >= PollsBeforeComplete;
        var file = _jsonlByRoot.GetValueOrDefault(op.Root);
        var count = done && file is not null ? file.Current().Lines : 0;
        var key = opId[(opId.LastIndexOf('/') + 1)..];
        return Data(new JsonObject
        {
            ["node"] = new JsonObject
            {
                ["id"] = opId,
                ["status"] = done ? "COMPLETED" : "RUNNING",
                ["errorCode"] = null,
                ["objectCount"] = count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["url"] = done && file is not null ? $"{call.BaseUrl}/bulk/{key}.jsonl" : null,
                ["partialDataUrl"] = null,
            },
        });
    }

    /// <summary>The first field selected by a mutation document, e.g. "tagsAdd".</summary>
    public static string MutationField(string query)
    {
        var body = query[(query.IndexOf('{') + 1)..].TrimStart();
        var end = body.IndexOfAny(['(', ' ', '{', '\n']);
        return end < 0 ? body : body[..end];
    }

    /// <summary>A GraphQL answer with a throttle status (a plenty-full bucket unless told otherwise).</summary>
    public static StandInAnswer Data(JsonObject data, double available = 1990, double restoreRate = 100) => StandInAnswer.Json(new JsonObject
    {
        ["data"] = data,
        ["extensions"] = new JsonObject
        {
            ["cost"] = new JsonObject
            {
                ["requestedQueryCost"] = 10, ["actualQueryCost"] = 10,
                ["throttleStatus"] = new JsonObject { ["maximumAvailable"] = 2000.0, ["currentlyAvailable"] = available, ["restoreRate"] = restoreRate },
            },
        },
    });
}
