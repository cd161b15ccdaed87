using System.Text.Json.Nodes;
using WireMock;
using WireMock.ResponseBuilders;
using WireMock.Types;
using WireMock.Util;

namespace ShopifyStandIn;

/// <summary>
/// What the stand-in answers one request with: a status and JSON body, optionally slow, or a broken connection. It is turned
/// into a WireMock response, so stateful answers and WireMock's own mappings share one mechanism.
/// </summary>
public sealed record StandInAnswer(int Status, JsonNode? Body = null, IReadOnlyDictionary<string, string>? Headers = null,
    TimeSpan? Delay = null, FaultType? Fault = null)
{
    public static StandInAnswer Json(object body, int status = 200) =>
        new(status, body as JsonNode ?? System.Text.Json.JsonSerializer.SerializeToNode(body));

    public static StandInAnswer StatusCode(int status, IReadOnlyDictionary<string, string>? headers = null) => new(status, null, headers);

    /// <summary>The connection is closed with no answer (after the effect, if the caller applied one first).</summary>
    public static StandInAnswer DropConnection() => new(200, null, null, null, FaultType.EMPTY_RESPONSE);

    internal async Task<IResponseMessage> ToResponseAsync()
    {
        if (Delay is { } d) await Task.Delay(d);
        var message = new ResponseMessage { StatusCode = Status };
        if (Fault is { } fault)
        {
            message.FaultType = fault;
            message.FaultPercentage = 1.0;
        }
        if (Body is not null)
        {
            message.BodyData = new BodyData { DetectedBodyType = BodyType.String, BodyAsString = Body.ToJsonString() };
            message.AddHeader("Content-Type", "application/json");
        }
        foreach (var (k, v) in Headers ?? new Dictionary<string, string>()) message.AddHeader(k, v);
        return message;
    }
}
