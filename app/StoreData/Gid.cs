using System.Globalization;
using PluginApp.StoreData;

namespace PluginApp.StoreData;

/// <summary>Shopify global ids ("gid://shopify/Order/123") and the numeric ids REST payloads use for the same objects.</summary>
public static class Gid
{
    /// <summary>The global id of a <paramref name="type"/> ("Order", "Customer") with REST id <paramref name="id"/>.</summary>
    public static string Of(string type, long id) => $"gid://shopify/{type}/{id.ToString(CultureInfo.InvariantCulture)}";

    public static long Id(string gid) => Id(gid.AsSpan());

    /// <summary>The REST id of a global id, "?" and what follows it ignored; a <see cref="MalformedPayloadException"/> when it is none.</summary>
    public static long Id(ReadOnlySpan<char> gid)
    {
        var slash = gid.LastIndexOf('/');
        var tail = gid[(slash + 1)..];
        var q = tail.IndexOf('?');
        if (q >= 0) tail = tail[..q];
        return slash > 0 && gid.StartsWith("gid://shopify/", StringComparison.Ordinal)
               && long.TryParse(tail, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw new MalformedPayloadException($"'{gid}' is not a Shopify global id");
    }
}
