using System.Globalization;
using System.Text.Json.Nodes;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Risk;

/// <summary>Orders as Shopify sends them, with what the risk score looks at set by the test.</summary>
internal static class RiskOrders
{
    /// <summary>An order placed at <paramref name="at"/> from <paramref name="ip"/>, named "#id", without a discount unless asked.</summary>
    public static JsonObject Order(long id, DateTimeOffset at, decimal total, string ip, string email, long? customer, string billing = "US",
        string shipping = "US", bool discount = false)
    {
        var o = ShopifyPayloads.Order(id, customer, lines: 1);
        o["name"] = $"#{id}";
        o["created_at"] = at.ToString("O", CultureInfo.InvariantCulture);
        o["updated_at"] = at.ToString("O", CultureInfo.InvariantCulture);
        o["total_price"] = total.ToString("0.00", CultureInfo.InvariantCulture);
        o["email"] = email;
        o["browser_ip"] = ip;
        o["client_details"]!["browser_ip"] = ip;
        o["billing_address"]!["country_code"] = billing;
        o["shipping_address"]!["country_code"] = shipping;
        if (!discount) o["discount_codes"] = new JsonArray();
        if (o["customer"] is JsonObject c) c["email"] = email;
        return o;
    }
}
