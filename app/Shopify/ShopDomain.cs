using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace PluginApp.Shopify;

/// <summary>The one check applied to every shop value that reaches us from outside.</summary>
public static partial class ShopDomain
{
    [GeneratedRegex(@"^[a-zA-Z0-9][a-zA-Z0-9\-_]*\.myshopify\.com$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public static bool TryNormalize(string? value, [NotNullWhen(true)] out string? domain)
    {
        domain = null;
        if (string.IsNullOrEmpty(value) || value.Length > 255) return false;
        var v = value.Trim().ToLowerInvariant();
        if (!Pattern().IsMatch(v)) return false;
        domain = v;
        return true;
    }
}
