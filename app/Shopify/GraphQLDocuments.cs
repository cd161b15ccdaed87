using System.Collections.Concurrent;

namespace PluginApp.Shopify;

/// <summary>GraphQL documents kept as .graphql files next to the code that uses them, embedded in the app.</summary>
public static class GraphQLDocuments
{
    private static readonly ConcurrentDictionary<string, string> Cache = new();

    /// <param name="path">Path below app/, e.g. "Backfill/Queries/products.graphql".</param>
    public static string Load(string path) => Cache.GetOrAdd(path, p =>
    {
        var name = "PluginApp." + p.Replace('/', '.');
        using var stream = typeof(GraphQLDocuments).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"GraphQL document {p} is not embedded (resource {name}).");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });
}
