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

    /// <summary>
    /// The card the order was paid with, where Shopify's order payload carries it: the order's payment_details, or (when
    /// <paramref name="onTransaction"/>) the payment_details of its successful sale transaction.
    /// </summary>
    public static void PaidWithCard(JsonObject order, string bin, string last4, string avs, string cvv, bool onTransaction = false)
    {
        var details = new JsonObject
        {
            ["credit_card_bin"] = bin, ["avs_result_code"] = avs, ["cvv_result_code"] = cvv,
            ["credit_card_number"] = $"•••• •••• •••• {last4}", ["credit_card_company"] = "Visa",
        };
        if (!onTransaction) order["payment_details"] = details;
        else order["transactions"] = new JsonArray(new JsonObject
        {
            ["id"] = 1, ["kind"] = "sale", ["status"] = "success", ["gateway"] = "shopify_payments", ["amount"] = order["total_price"]!.GetValue<string>(),
            ["payment_details"] = details,
        });
    }
}
