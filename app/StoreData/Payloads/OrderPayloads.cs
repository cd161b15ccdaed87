using System.Text.Json;
using PluginApp.Data;

namespace PluginApp.StoreData;

/// <summary>orders/* and refunds/create payloads to rows.</summary>
internal static class OrderPayloads
{
    /// <summary>Cart attributes our blocks set start with this; the order carries them in note_attributes.</summary>
    public const string AppAttributePrefix = "_pluginapp_";
    /// <summary>The cart attribute our storefront script sets, so an order can be matched to the recommendations its buyer saw.</summary>
    public const string VisitorAttribute = "_pluginapp_visitor";
    /// <summary>The cart offer action the cart block showed (nothing, nudge, nudge_upsell, offer), carried to the order.</summary>
    public const string ActionAttribute = "_pluginapp_action";
    /// <summary>The experiment arm the cart block showed, carried to the order.</summary>
    public const string ArmAttribute = "_pluginapp_arm";

    public static OrderRows Order(JsonElement o)
    {
        var customer = o.OptionalObject("customer") is { } c ? CustomerPayloads.Customer(c) : null;
        var card = CardOf(o);
        var order = new Order
        {
            Id = o.RequiredId("id"),
            Name = o.OptionalString("name"),
            CustomerId = customer?.Id,
            Email = o.OptionalEmail("email") ?? o.OptionalEmail("contact_email"),
            Currency = o.OptionalString("currency"),
            TotalPrice = o.OptionalMoney("total_price"),
            SubtotalPrice = o.OptionalMoney("subtotal_price"),
            TotalDiscounts = o.OptionalMoney("total_discounts"),
            TotalTax = o.OptionalMoney("total_tax"),
            TaxesIncluded = o.OptionalBool("taxes_included"),
            FinancialStatus = o.OptionalString("financial_status"),
            FulfillmentStatus = o.OptionalString("fulfillment_status"),
            CancelledAt = o.OptionalTime("cancelled_at"),
            CancelReason = o.OptionalString("cancel_reason"),
            CartToken = o.OptionalString("cart_token"),
            CheckoutToken = o.OptionalString("checkout_token"),
            SourceName = o.OptionalString("source_name"),
            BrowserIp = o.OptionalString("browser_ip") ?? o.OptionalObject("client_details")?.OptionalString("browser_ip"),
            BillingCountry = o.OptionalObject("billing_address")?.OptionalString("country_code"),
            ShippingCountry = o.OptionalObject("shipping_address")?.OptionalString("country_code"),
            DiscountCodes = string.Join(',', o.OptionalArray("discount_codes").Select(d => d.OptionalString("code")).OfType<string>()),
            Tags = o.Tags(),
            Test = o.OptionalBool("test") ?? false,
            CreatedAt = o.OptionalTime("created_at"),
            UpdatedAt = o.OptionalTime("updated_at"),
            ProcessedAt = o.OptionalTime("processed_at"),
            Gateway = o.OptionalArray("payment_gateway_names").Select(g => g.ValueKind == JsonValueKind.String ? g.GetString() : null)
                .OfType<string>().ToList() is { Count: > 0 } gateways ? string.Join(',', gateways) : null,
            AvsResult = card?.OptionalString("avs_result_code"),
            CvvResult = card?.OptionalString("cvv_result_code"),
            CardBin = card?.OptionalString("credit_card_bin"),
            CardLast4 = LastFour(card?.OptionalString("credit_card_number")),
        };
        var lines = o.OptionalArray("line_items").Select(l => new OrderLine
        {
            Id = l.RequiredId("id"),
            OrderId = order.Id,
            ProductId = l.OptionalId("product_id"),
            VariantId = l.OptionalId("variant_id"),
            Title = l.OptionalString("title"),
            Sku = l.OptionalString("sku"),
            Quantity = l.RequiredInt("quantity"),
            Price = l.OptionalMoney("price"),
            TotalDiscount = l.OptionalMoney("total_discount"),
        }).ToList();
        var refunds = o.OptionalArray("refunds").Select(r => Refund(r, order.Id, OrderRate(o))).ToList();
        var attributes = o.OptionalArray("note_attributes")
            .Select(a => (Name: a.OptionalString("name"), Value: a.OptionalStringOrNull("value")))
            .Where(a => a.Name is not null && a.Name.StartsWith(AppAttributePrefix, StringComparison.Ordinal) && a.Value is not null)
            .GroupBy(a => a.Name!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Value!, StringComparer.Ordinal);
        // What each code took off the order (a percent code's amount is the cart's at checkout, not the one it was offered on).
        var codeAmounts = o.OptionalArray("discount_codes").Select(d => (Code: d.OptionalString("code"), Amount: d.OptionalMoney("amount")))
            .Where(d => d.Code is not null && d.Amount is not null)
            .GroupBy(d => d.Code!.ToUpperInvariant(), StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(d => d.Amount!.Value), StringComparer.Ordinal);
        return new OrderRows(order, lines, customer, refunds, attributes.GetValueOrDefault(VisitorAttribute), attributes, codeAmounts, LineTax(o));
    }

    /// <summary>
    /// The tax on the order's lines (each line's tax_lines, after discounts), without its shipping's; null when no line has
    /// tax_lines at all. A line with none (zero-rated goods) carried none.
    /// </summary>
    private static decimal? LineTax(JsonElement o)
    {
        decimal? sum = null;
        foreach (var line in o.OptionalArray("line_items"))
        {
            if (!line.TryGetProperty("tax_lines", out var taxes) || taxes.ValueKind == JsonValueKind.Null) continue;
            sum ??= 0;
            foreach (var tax in line.OptionalArray("tax_lines"))
                if (tax.OptionalMoney("price") is { } amount) sum += amount;
        }
        return sum;
    }

    /// <summary>
    /// The card the order was paid with, as the payload describes it: the order's payment_details, else the payment_details
    /// of its first successful sale or authorization transaction (transactions are often absent from order webhooks).
    /// </summary>
    private static JsonElement? CardOf(JsonElement o) =>
        o.OptionalObject("payment_details")
        ?? o.OptionalArray("transactions").Select(PaidWith).FirstOrDefault(d => d is not null);

    /// <summary>The card's details of a successful sale or authorization; null for any other transaction, or one without them.</summary>
    private static JsonElement? PaidWith(JsonElement t) =>
        t.OptionalString("kind") is "sale" or "authorization" && t.OptionalString("status") is null or "success" ? t.OptionalObject("payment_details") : null;

    /// <summary>
    /// An order_transactions/create payload (Shopify's Transaction: id, order_id, kind, status, payment_details...): the
    /// order's card when it is a successful sale or authorization that names one, else no card (a capture, a refund, a
    /// failed try, a gift card) and nothing to store.
    /// </summary>
    public static OrderTransactionRows Transaction(JsonElement t)
    {
        var id = t.RequiredId("id");
        var orderId = t.RequiredId("order_id");
        if (PaidWith(t) is not { } d) return new(id, orderId, null);
        var card = new OrderCard(d.OptionalString("avs_result_code"), d.OptionalString("cvv_result_code"), d.OptionalString("credit_card_bin"),
            LastFour(d.OptionalString("credit_card_number")));
        return new(id, orderId, card is { Avs: null, Cvv: null, Bin: null, Last4: null } ? null : card);
    }

    /// <summary>
    /// orders/delete: the order's id, all Shopify sends. A global id, where one comes, must name the same order (ShopBinding
    /// refuses one of another type).
    /// </summary>
    public static OrderDeletion Deletion(JsonElement p)
    {
        var id = p.RequiredId("id");
        return p.OptionalString("admin_graphql_api_id") is not { } gid || gid == Gid.Of("Order", id)
            ? new OrderDeletion(id)
            : throw new MalformedPayloadException("'admin_graphql_api_id' does not name the order 'id' does");
    }

    /// <summary>The last four digits of a masked card number ("•••• •••• •••• 4242"), or null.</summary>
    internal static string? LastFour(string? masked)
    {
        var digits = new string((masked ?? "").Where(char.IsAsciiDigit).ToArray());
        return digits.Length >= 4 ? digits[^4..] : null;
    }

    /// <param name="orderRate">For a refund inside its order's payload: the shop's currency and its money per unit of the
    /// customer's (the order's <c>total_price_set</c>), used when the refund's own lines and adjustments carry none.</param>
    public static RefundRows Refund(JsonElement r, long? orderId = null, (string? ShopCurrency, decimal? Rate) orderRate = default)
    {
        var id = r.RequiredId("id");
        var order = r.OptionalId("order_id") ?? orderId ?? throw new MalformedPayloadException("'order_id' is missing");
        var (shopCurrency, rate) = ShopRate(r);
        if (rate is null) (shopCurrency, rate) = (shopCurrency ?? orderRate.ShopCurrency, orderRate.Rate);
        var refund = new Refund
        {
            Id = id,
            OrderId = order,
            Note = r.OptionalString("note"),
            CreatedAt = r.OptionalTime("created_at"),
            ProcessedAt = r.OptionalTime("processed_at"),
            // Shopify sends a refund's transactions in the currency the customer paid in; everything else the app counts is in
            // the shop's currency (the order's totals, its lines). On an order in another currency the amount is converted at
            // the refund's own rate: until 5 Dec 2026 a EUR refund of a USD store was counted as that many dollars.
            Amount = r.OptionalArray("transactions")
                .Where(t => t.OptionalString("kind") == "refund" && t.OptionalString("status") is null or "success")
                .Sum(t => t.OptionalMoney("amount") is not { } amount ? 0m
                    : t.OptionalString("currency") is { } paid && shopCurrency is not null && !paid.Equals(shopCurrency, StringComparison.OrdinalIgnoreCase) && rate is { } x
                        ? Math.Round(amount * x, 2, MidpointRounding.AwayFromZero)
                        : amount),
        };
        var lines = r.OptionalArray("refund_line_items").Select(l => new RefundLine
        {
            Id = l.OptionalId("id"),
            RefundId = id,
            OrderId = order,
            LineItemId = l.RequiredId("line_item_id"),
            Quantity = l.RequiredInt("quantity"),
            Subtotal = ShopMoney(l, "subtotal_set") ?? l.OptionalMoney("subtotal"),
            TotalTax = ShopMoney(l, "total_tax_set") ?? l.OptionalMoney("total_tax"),
            RestockType = l.OptionalString("restock_type"),
        }).ToList();
        return new RefundRows(refund, lines);
    }

    /// <summary>A money set's amount in the shop's currency (<c>shop_money</c>).</summary>
    private static decimal? ShopMoney(JsonElement e, string set) => e.OptionalObject(set)?.OptionalObject("shop_money")?.OptionalMoney("amount");

    /// <summary>
    /// The shop's currency and its money per unit of the customer's, from the money sets a refund carries (its lines'
    /// subtotals and taxes, its shipping lines, its adjustments: the discrepancy Shopify records when an arbitrary amount
    /// is refunded, and shipping before API 2024-10); no rate when they carry nothing in the customer's currency. Why the
    /// shipping lines: since 2024-10 refunded shipping is there alone, and until 6 Dec 2026 a refund of shipping only, in
    /// the customer's currency, was counted as that many of the shop's.
    /// </summary>
    private static (string? ShopCurrency, decimal? Rate) ShopRate(JsonElement r)
    {
        string? currency = null;
        decimal shop = 0, presented = 0;
        void Add(JsonElement e, string set)
        {
            if (e.OptionalObject(set) is not { } s || s.OptionalObject("shop_money") is not { } sm || s.OptionalObject("presentment_money") is not { } pm) return;
            currency ??= sm.OptionalString("currency_code");
            // Why absolute values: a shipping refund's adjustment is negative, and must not cancel a line out.
            shop += Math.Abs(sm.OptionalMoney("amount") ?? 0);
            presented += Math.Abs(pm.OptionalMoney("amount") ?? 0);
        }
        foreach (var l in r.OptionalArray("refund_line_items")) { Add(l, "subtotal_set"); Add(l, "total_tax_set"); }
        foreach (var s in r.OptionalArray("refund_shipping_lines")) { Add(s, "subtotal_amount_set"); Add(s, "tax_amount_set"); }
        foreach (var a in r.OptionalArray("order_adjustments")) { Add(a, "amount_set"); Add(a, "tax_amount_set"); }
        return (currency, presented != 0 ? shop / presented : null);
    }

    /// <summary>The order's shop currency and its money per unit of the customer's currency (its <c>total_price_set</c>).</summary>
    private static (string? ShopCurrency, decimal? Rate) OrderRate(JsonElement o) =>
        (o.OptionalString("currency"),
         o.OptionalObject("total_price_set") is { } s && s.OptionalObject("shop_money")?.OptionalMoney("amount") is { } shop
            && s.OptionalObject("presentment_money")?.OptionalMoney("amount") is { } presented and not 0m
            ? shop / presented : null);
}

/// <param name="AppAttributes">The cart attributes our blocks wrote (names starting "_pluginapp_"), as the order carries them in note_attributes.</param>
/// <param name="LineTax">The tax on the order's lines, without its shipping's (null when no line says): what its subtotal holds
/// of tax when its prices include it.</param>
internal sealed record OrderRows(Order Order, List<OrderLine> Lines, Customer? Customer, List<RefundRows> Refunds, string? VisitorId = null,
    IReadOnlyDictionary<string, string>? AppAttributes = null, IReadOnlyDictionary<string, decimal>? CodeAmounts = null, decimal? LineTax = null)
{
    /// <summary>
    /// The lines' worth to the merchant after discounts: the subtotal, less the tax it holds when the prices include it (the
    /// lines' tax, else the order's when no line says). Until 7 Dec 2026 an order of a store whose prices include tax counted
    /// its tax as margin in the experiments.
    /// </summary>
    public decimal Merchandise => (Order.SubtotalPrice ?? Order.TotalPrice ?? 0m) - (Order.TaxesIncluded == true ? LineTax ?? Order.TotalTax ?? 0m : 0m);
}
internal sealed record RefundRows(Refund Refund, List<RefundLine> Lines);

/// <summary>A transaction of an order (order_transactions/create), with the card it was paid by when it says so.</summary>
/// <summary>An orders/delete delivery: the order Shopify no longer has (a test order, or a cancelled or archived one the merchant deleted).</summary>
internal sealed record OrderDeletion(long Id);

internal sealed record OrderTransactionRows(long Id, long OrderId, OrderCard? Card);

/// <summary>A card's checks and its number as Shopify shows it (issuer number, last four digits).</summary>
internal sealed record OrderCard(string? Avs, string? Cvv, string? Bin, string? Last4);
