using System.Globalization;
using System.Text.Json.Nodes;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Risk;

/// <summary>Orders as Shopify sends them, with what the risk score looks at set by the test.</summary>
internal static class RiskOrders
{
    /// <summary>
    /// 200 days of orders, 5 a day: fraud (1 in 12) comes from a handful of addresses with a discount code and about
    /// three times the usual total; each fraud label arrives 10 days after its order.
    /// </summary>
    public static async Task<long> LabelledStoreAsync(AppFixture app, string shop, long firstId, int days = 200, int fraudEvery = 12)
    {
        var shopId = await app.InstallShopAsync(shop);
        var start = app.Clock.GetUtcNow().AddDays(-days);
        var random = new Random(5);
        await using var batch = app.Db.CreateBatch();
        for (var i = 0; i < days * 5; i++)
        {
            var at = start.AddHours(i * 24.0 / 5);
            var fraud = i % fraudEvery == 0;
            var id = firstId + i;
            var total = fraud ? 80 + random.Next(40) : 20 + random.Next(20);
            var ip = fraud ? $"192.0.2.{random.Next(4)}" : $"198.51.{random.Next(200)}.{random.Next(250)}";
            var email = fraud ? $"f{random.Next(1000)}@mail.example" : $"c{random.Next(300)}@example.com";
            var cmd = batch.CreateBatchCommand();
            cmd.CommandText = """
                INSERT INTO orders (shop_id, id, email, currency, total_price, browser_ip, billing_country, shipping_country, discount_codes, created_at, updated_at)
                VALUES ($1, $2, $3, 'USD', $4, $5, 'US', 'US', $6, $7, $7)
                """;
            foreach (var v in new object[] { shopId, id, email, (decimal)total, ip, fraud ? "SAVE50" : (i % 9 == 0 ? "WELCOME" : ""), at })
                cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = v });
            batch.BatchCommands.Add(cmd);
            if (!fraud) continue;
            var label = batch.CreateBatchCommand();
            label.CommandText = "INSERT INTO risk_labels (shop_id, order_id, source, fraud, labelled_at) VALUES ($1, $2, 'dispute', true, $3)";
            foreach (var v in new object[] { shopId, id, at.AddDays(10) }) label.Parameters.Add(new Npgsql.NpgsqlParameter { Value = v });
            batch.BatchCommands.Add(label);
        }
        await batch.ExecuteNonQueryAsync();
        return shopId;
    }

    /// <summary>An order placed at <paramref name="at"/> from <paramref name="ip"/>, named "#id", without a discount unless asked.</summary>
    public static JsonObject Order(long id, DateTimeOffset at, decimal total, string ip, string email, long? customer, string billing = "US",
        string shipping = "US", bool discount = false)
    {
        var o = ShopifyPayloads.Order(id, customer, lines: 1);
        o["name"] = $"#{id}";
        o["created_at"] = at.ToString("O", CultureInfo.InvariantCulture);
        o["processed_at"] = at.ToString("O", CultureInfo.InvariantCulture); // as Shopify has it for an order placed in the store
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

    /// <summary>
    /// An order_transactions/create body as Shopify sends it (its Transaction resource): a card payment's details under
    /// payment_details, unless <paramref name="bin"/> is null (a payment without a card, as a gift card's).
    /// </summary>
    public static JsonObject Transaction(long id, long orderId, string kind, string status, string? bin, string last4 = "0000", string avs = "Y",
        string cvv = "M") => new()
    {
        ["id"] = id, ["order_id"] = orderId, ["kind"] = kind, ["status"] = status, ["gateway"] = bin is null ? "gift_card" : "shopify_payments",
        ["amount"] = "30.00", ["currency"] = "USD", ["test"] = false, ["parent_id"] = null, ["source_name"] = "web",
        ["created_at"] = "2026-12-05T10:00:00Z", ["processed_at"] = "2026-12-05T10:00:00Z",
        ["admin_graphql_api_id"] = $"gid://shopify/OrderTransaction/{id}",
        ["payment_details"] = bin is null ? null : new JsonObject
        {
            ["credit_card_bin"] = bin, ["avs_result_code"] = avs, ["cvv_result_code"] = cvv,
            ["credit_card_number"] = $"•••• •••• •••• {last4}", ["credit_card_company"] = "Visa", ["credit_card_name"] = "Card Holder",
        },
    };
}
