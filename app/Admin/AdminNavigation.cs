using Microsoft.Extensions.DependencyInjection.Extensions;

namespace PluginApp.Admin;

/// <summary>One entry of the embedded admin's navigation: a page a feature owns, its title, and where it sorts.</summary>
/// <param name="Path">The page's path under the app, e.g. "/admin/models".</param>
/// <param name="Order">Lower comes first; the overview is 0.</param>
public sealed record AdminPageEntry(string Path, string Title, int Order);

/// <summary>Every page features registered with <see cref="AdminNavigationExtensions.AddAdminPage"/>, in navigation order.</summary>
public sealed class AdminNavigation(IEnumerable<AdminPageEntry> pages)
{
    public IReadOnlyList<AdminPageEntry> Pages { get; } = pages.OrderBy(p => p.Order).ThenBy(p => p.Title, StringComparer.Ordinal).ToList();
}

public static class AdminNavigationExtensions
{

    /// <summary>Puts a feature's page in the admin's navigation (Shopify's app nav and the page's own).</summary>
    public static IServiceCollection AddAdminPage(this IServiceCollection services, string path, string title, int order)
    {
        if (!path.StartsWith("/admin", StringComparison.Ordinal)) throw new ArgumentException($"admin page '{path}' must be under /admin", nameof(path));
        services.TryAddSingleton<AdminNavigation>();
        return services.AddSingleton(new AdminPageEntry(path, title, order));
    }
}
