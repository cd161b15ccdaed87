using System.Diagnostics;
using System.Text.Json.Nodes;

namespace PluginApp.Tests.Storefront;

/// <summary>Renders an app block of theme-extension/ from its real .liquid file (scripts/theme/render-block.mjs, liquidjs).</summary>
public static class ThemeBlockRenderer
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ThemeExtensionDir => Path.Combine(RepoRoot, "theme-extension");

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PluginApp.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("PluginApp.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The page (HTML) showing <paramref name="block"/> with <paramref name="context"/> (settings, product, template).</summary>
    public static async Task<string> RenderPageAsync(string block, JsonObject context)
    {
        var tools = Path.Combine(RepoRoot, "scripts", "theme");
        if (!Directory.Exists(Path.Combine(tools, "node_modules", "liquidjs")))
            throw new InvalidOperationException(
                $"liquidjs is not installed in {tools}/node_modules: run `npm ci --prefix scripts/theme` (scripts/test.sh does).");
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepoRoot,
        };
        start.ArgumentList.Add(Path.Combine(tools, "render-block.mjs"));
        start.ArgumentList.Add(block);
        start.ArgumentList.Add(context.ToJsonString());
        using var node = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await node.WaitForExitAsync(timeout.Token);
        if (node.ExitCode != 0) throw new InvalidOperationException($"render-block.mjs {block} failed ({node.ExitCode}): {await stderr}");
        return await stdout;
    }
}
