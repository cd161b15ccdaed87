using System.Globalization;
using System.Text.Json.Nodes;

namespace StoreReplay;

/// <summary>
/// The one builder of Shopify REST webhook payloads, for everything that plays Shopify: the replay, the load
/// generator and the tests. Each field's name, type and format is decided here: ids int64, money as decimal strings
/// with two places (invariant culture) and a "*_set" twin where Shopify sends one, times ISO-8601 with offset,
/// admin_graphql_api_id GIDs, and the totals derived from the lines so they always agree with them. Callers may still
/// adjust the returned object (tests break a field on purpose); <see cref="Utf8"/> gives the bytes Shopify would send.
/// </summary>
public static class ShopifyShapes
{
    /// <summary>orders/* (create, updated, paid, cancelled).</summary>
    public static JsonObject Order(ShopifyOrder o)
    {
        var currency = o.Currency;
        var lineItems = o.Lines.Sum(l => l.Price * l.Quantity);
        var discounts = o.DiscountCodes.Sum(d => d.Amount);
        var subtotal = lineItems - discounts;
        var total = subtotal + o.ShippingLines.Sum(s => s.Price) + (o.TaxesIncluded ? 0m : o.TotalTax);
        // Why: only an order not yet paid still owes its total; paid, refunded and voided ones owe nothing.
        var outstanding = o.FinancialStatus is "pending" or "authorized" ? total : 0m;
        var number = o.Number.ToString(CultureInfo.InvariantCulture);
        return new JsonObject
        {
            ["id"] = o.Id,
            ["admin_graphql_api_id"] = Formats.Gid("Order", o.Id),
            ["name"] = "#" + number,
            ["order_number"] = o.Number,
            ["number"] = o.Number,
            ["token"] = o.Token,
            ["cart_token"] = o.CartToken,
            ["checkout_token"] = o.CheckoutToken,
            ["email"] = o.Email,
            ["contact_email"] = o.Email,
            ["phone"] = o.Phone,
            ["created_at"] = Time(o.CreatedAt),
            ["updated_at"] = Time(o.UpdatedAt),
            ["processed_at"] = Time(o.CreatedAt),
            ["cancelled_at"] = Time(o.CancelledAt),
            ["cancel_reason"] = o.CancelReason,
            ["closed_at"] = Time(o.ClosedAt),
            ["financial_status"] = o.FinancialStatus,
            ["fulfillment_status"] = o.FulfillmentStatus,
            ["confirmed"] = true,
            ["test"] = o.Test,
            ["currency"] = currency,
            ["presentment_currency"] = currency,
            ["total_price"] = Money(total),
            ["subtotal_price"] = Money(subtotal),
            ["total_line_items_price"] = Money(lineItems),
            ["current_total_price"] = Money(total),
            ["total_tax"] = Money(o.TotalTax),
            ["total_discounts"] = Money(discounts),
            ["total_outstanding"] = Money(outstanding),
            ["total_price_set"] = MoneySet(total, currency),
            ["subtotal_price_set"] = MoneySet(subtotal, currency),
            ["total_tax_set"] = MoneySet(o.TotalTax, currency),
            ["total_discounts_set"] = MoneySet(discounts, currency),
            ["taxes_included"] = o.TaxesIncluded,
            ["tax_lines"] = new JsonArray(),
            ["tags"] = o.Tags,
            ["note"] = o.Note,
            ["note_attributes"] = Attributes(o.NoteAttributes),
            ["source_name"] = o.SourceName,
            ["landing_site"] = o.LandingSite,
            ["referring_site"] = o.ReferringSite,
            ["browser_ip"] = o.Client?.BrowserIp,
            ["client_details"] = o.Client is { } c ? ClientDetails(c) : null,
            ["customer"] = o.Customer is { } cu ? CustomerObject(cu) : null,
            ["billing_address"] = OptionalAddress(o.BillingAddress),
            ["shipping_address"] = OptionalAddress(o.ShippingAddress),
            ["discount_codes"] = Array(o.DiscountCodes, DiscountCode),
            ["shipping_lines"] = Array(o.ShippingLines, s => ShippingLine(s, currency)),
            ["payment_gateway_names"] = Array(o.PaymentGatewayNames, g => JsonValue.Create(g)),
            ["line_items"] = Array(o.Lines, l => LineItem(l, currency)),
            ["refunds"] = new JsonArray(),
            ["fulfillments"] = new JsonArray(),
        };
    }

    /// <summary>One of an order's line_items (unfulfilled, undiscounted); also a refund line's line_item.</summary>
    public static JsonObject LineItem(ShopifyLine l, string currency) => new()
    {
        ["id"] = l.Id,
        ["admin_graphql_api_id"] = Formats.Gid("LineItem", l.Id),
        ["product_id"] = l.ProductId,
        ["variant_id"] = l.VariantId,
        ["title"] = l.Title,
        ["variant_title"] = l.VariantTitle,
        ["name"] = string.IsNullOrEmpty(l.VariantTitle) ? l.Title : l.Title + " - " + l.VariantTitle,
        ["sku"] = l.Sku,
        ["vendor"] = l.Vendor,
        ["quantity"] = l.Quantity,
        ["current_quantity"] = l.Quantity,
        ["fulfillable_quantity"] = l.Quantity,
        ["price"] = Money(l.Price),
        ["price_set"] = MoneySet(l.Price, currency),
        ["total_discount"] = Money(0m),
        ["total_discount_set"] = MoneySet(0m, currency),
        ["discount_allocations"] = new JsonArray(),
        ["properties"] = Attributes(l.Properties),
        ["gift_card"] = false,
        ["taxable"] = l.Taxable,
        ["requires_shipping"] = l.RequiresShipping,
        ["grams"] = l.Grams,
        ["product_exists"] = true,
        ["fulfillment_service"] = "manual",
        ["fulfillment_status"] = null,
        ["tax_lines"] = new JsonArray(),
    };

    /// <summary>refunds/create.</summary>
    public static JsonObject Refund(ShopifyRefund r)
    {
        var currency = r.Currency;
        return new JsonObject
        {
            ["id"] = r.Id,
            ["admin_graphql_api_id"] = Formats.Gid("Refund", r.Id),
            ["order_id"] = r.OrderId,
            ["created_at"] = Time(r.CreatedAt),
            ["processed_at"] = Time(r.CreatedAt),
            ["note"] = r.Note,
            ["user_id"] = null,
            ["restock"] = r.Restock,
            ["duties"] = new JsonArray(),
            ["return"] = null,
            ["refund_line_items"] = Array(r.Lines, l =>
            {
                var line = new JsonObject
                {
                    ["id"] = l.Id,
                    ["line_item_id"] = l.LineItemId,
                    ["quantity"] = l.Quantity,
                    ["restock_type"] = l.RestockType,
                    ["location_id"] = l.LocationId,
                    ["subtotal"] = Money(l.Subtotal),
                    ["subtotal_set"] = MoneySet(l.Subtotal, currency),
                    ["total_tax"] = Money(l.TotalTax),
                    ["total_tax_set"] = MoneySet(l.TotalTax, currency),
                };
                if (l.LineItem is { } item) line["line_item"] = LineItem(item, currency);
                return line;
            }),
            ["transactions"] = Array(r.Transactions, t => new JsonObject
            {
                ["id"] = t.Id,
                ["admin_graphql_api_id"] = Formats.Gid("OrderTransaction", t.Id),
                ["order_id"] = r.OrderId,
                ["kind"] = "refund",
                ["gateway"] = t.Gateway,
                ["status"] = t.Status,
                ["amount"] = Money(t.Amount),
                ["currency"] = currency,
                ["parent_id"] = null,
                ["processed_at"] = Time(r.CreatedAt),
                ["created_at"] = Time(r.CreatedAt),
                ["test"] = false,
            }),
            ["refund_shipping_lines"] = new JsonArray(),
            ["order_adjustments"] = new JsonArray(),
        };
    }

    /// <summary>customers_email_marketing_consent/update: the customer's email consent as it stands.</summary>
    public static JsonObject MarketingConsent(ShopifyCustomer c) => new()
    {
        ["customer_id"] = c.Id,
        ["email_address"] = c.Email,
        ["email_marketing_consent"] = new JsonObject
        {
            ["state"] = c.MarketingState,
            ["opt_in_level"] = c.MarketingOptInLevel,
            ["consent_updated_at"] = Time(c.MarketingConsentUpdatedAt),
        },
    };

    /// <summary>orders/delete: the order's id, all Shopify sends.</summary>
    public static JsonObject OrderDeletion(long id) => new() { ["id"] = id };

    /// <summary>customers/delete: the id alone, and its global id.</summary>
    public static JsonObject CustomerDeletion(long id) => new()
    {
        ["id"] = id,
        ["tax_exemptions"] = new JsonArray(),
        ["admin_graphql_api_id"] = Formats.Gid("Customer", id),
    };

    /// <summary>customers/create and customers/update: the embedded fields plus the address book.</summary>
    public static JsonObject Customer(ShopifyCustomer c)
    {
        var customer = CustomerObject(c);
        customer["addresses"] = c.DefaultAddress is { } a ? new JsonArray(AddressObject(a, c.Id)) : new JsonArray();
        return customer;
    }

    /// <summary>A billing or shipping address.</summary>
    public static JsonObject Address(ShopifyAddress a) => AddressObject(a, customerId: null);

    /// <summary>products/create and products/update.</summary>
    public static JsonObject Product(ShopifyProduct p) => new()
    {
        ["id"] = p.Id,
        ["admin_graphql_api_id"] = Formats.Gid("Product", p.Id),
        ["title"] = p.Title,
        ["body_html"] = p.BodyHtml,
        ["vendor"] = p.Vendor,
        ["product_type"] = p.ProductType,
        ["handle"] = p.Handle,
        ["status"] = p.Status,
        ["tags"] = p.Tags,
        ["created_at"] = Time(p.CreatedAt),
        ["updated_at"] = Time(p.UpdatedAt),
        ["published_at"] = Time(p.PublishedAt),
        ["published_scope"] = p.PublishedScope,
        ["options"] = Array(p.Options, (option, i) => new JsonObject
        {
            ["product_id"] = p.Id,
            ["name"] = option.Name,
            ["position"] = i + 1,
            ["values"] = Array(option.Values, v => JsonValue.Create(v)),
        }),
        ["images"] = Array(p.Images, (src, i) => Image(p.Id, src, i)),
        ["image"] = p.Images.Count > 0 ? Image(p.Id, p.Images[0], 0) : null,
        // Shopify sends the first 100 variants whole, and names every variant in variant_gids (webhooks of API 2024-04 on).
        ["variants"] = Array(p.Variants.Take(WebhookVariants).ToList(), v => new JsonObject
        {
            ["id"] = v.Id,
            ["admin_graphql_api_id"] = Formats.Gid("ProductVariant", v.Id),
            ["product_id"] = p.Id,
            ["title"] = v.Title,
            ["price"] = Money(v.Price),
            ["compare_at_price"] = v.CompareAtPrice is { } compare ? Money(compare) : null,
            ["sku"] = v.Sku,
            ["barcode"] = v.Barcode,
            ["position"] = v.Position,
            ["inventory_item_id"] = v.InventoryItemId,
            ["inventory_quantity"] = v.InventoryQuantity,
            ["inventory_policy"] = v.InventoryPolicy,
            ["inventory_management"] = v.InventoryManagement,
            ["taxable"] = v.Taxable,
            ["requires_shipping"] = v.RequiresShipping,
            ["option1"] = v.Option1,
            ["option2"] = v.Option2,
            ["option3"] = v.Option3,
            ["grams"] = v.Grams,
            ["created_at"] = Time(v.CreatedAt),
            ["updated_at"] = Time(v.UpdatedAt),
        }),
        ["variant_gids"] = Array(p.Variants, v => new JsonObject
        {
            ["admin_graphql_api_id"] = Formats.Gid("ProductVariant", v.Id),
            ["updated_at"] = Time(v.UpdatedAt),
        }),
    };

    /// <summary>How many of a product's variants its webhook carries whole.</summary>
    public const int WebhookVariants = 100;

    /// <summary>carts/create and carts/update: the token is also the id, and lines carry no discount.</summary>
    public static JsonObject Cart(ShopifyCart c) => new()
    {
        ["id"] = c.Token,
        ["token"] = c.Token,
        ["note"] = c.Note,
        ["created_at"] = Time(c.CreatedAt),
        ["updated_at"] = Time(c.UpdatedAt),
        ["line_items"] = Array(c.Lines, l => new JsonObject
        {
            ["id"] = l.VariantId,
            ["key"] = l.Key,
            ["product_id"] = l.ProductId,
            ["variant_id"] = l.VariantId,
            ["title"] = l.Title,
            ["sku"] = l.Sku,
            ["vendor"] = l.Vendor,
            ["quantity"] = l.Quantity,
            ["grams"] = l.Grams,
            ["taxable"] = true,
            ["gift_card"] = false,
            ["properties"] = new JsonObject(),
            ["price"] = Money(l.Price),
            ["original_price"] = Money(l.Price),
            ["discounted_price"] = Money(l.Price),
            ["line_price"] = Money(l.Price * l.Quantity),
            ["original_line_price"] = Money(l.Price * l.Quantity),
            ["total_discount"] = Money(0m),
            ["discounts"] = new JsonArray(),
        }),
    };

    /// <summary>checkouts/create and checkouts/update; totals derived from the lines as for an order.</summary>
    public static JsonObject Checkout(ShopifyCheckout c)
    {
        var currency = c.Currency;
        var lineItems = c.Lines.Sum(l => l.Price * l.Quantity);
        var discounts = c.DiscountCodes.Sum(d => d.Amount);
        var subtotal = lineItems - discounts;
        var total = subtotal + c.ShippingLines.Sum(s => s.Price) + (c.TaxesIncluded ? 0m : c.TotalTax);
        return new JsonObject
        {
            ["token"] = c.Token,
            ["cart_token"] = c.CartToken,
            ["email"] = c.Email,
            ["phone"] = c.Phone,
            ["gateway"] = c.Gateway,
            ["created_at"] = Time(c.CreatedAt),
            ["updated_at"] = Time(c.UpdatedAt),
            ["completed_at"] = Time(c.CompletedAt),
            ["closed_at"] = Time(c.ClosedAt),
            ["currency"] = currency,
            ["presentment_currency"] = currency,
            ["customer_locale"] = c.CustomerLocale,
            ["source_name"] = c.SourceName,
            ["buyer_accepts_marketing"] = c.BuyerAcceptsMarketing,
            ["customer"] = c.Customer is { } cu ? CustomerObject(cu) : null,
            ["billing_address"] = OptionalAddress(c.BillingAddress),
            ["shipping_address"] = OptionalAddress(c.ShippingAddress),
            ["discount_codes"] = Array(c.DiscountCodes, DiscountCode),
            ["shipping_lines"] = Array(c.ShippingLines, s => ShippingLine(s, currency)),
            ["tax_lines"] = new JsonArray(),
            ["taxes_included"] = c.TaxesIncluded,
            ["subtotal_price"] = Money(subtotal),
            ["total_price"] = Money(total),
            ["total_line_items_price"] = Money(lineItems),
            ["total_tax"] = Money(c.TotalTax),
            ["total_discounts"] = Money(discounts),
            ["line_items"] = Array(c.Lines, l => new JsonObject
            {
                ["key"] = l.Key,
                ["product_id"] = l.ProductId,
                ["variant_id"] = l.VariantId,
                ["sku"] = l.Sku,
                ["title"] = l.Title,
                ["variant_title"] = l.VariantTitle,
                ["quantity"] = l.Quantity,
                ["price"] = Money(l.Price),
                ["line_price"] = Money(l.Price * l.Quantity),
                ["grams"] = l.Grams,
                ["vendor"] = l.Vendor,
                ["requires_shipping"] = true,
                ["taxable"] = true,
                ["gift_card"] = false,
                ["applied_discounts"] = new JsonArray(),
                ["discount_allocations"] = new JsonArray(),
                ["fulfillment_service"] = "manual",
            }),
        };
    }

    /// <summary>The body as Shopify sends it: UTF-8, compact, and '&amp;', quotes and non-ASCII left unescaped.</summary>
    public static byte[] Utf8(JsonNode payload) => Json.Build(w => payload.WriteTo(w));

    // The customer's fields as orders and checkouts embed them (no address book). Since API version 2025-01 no customer in a
    // webhook carries its tags or its email marketing consent (customers_email_marketing_consent/update tells that).
    private static JsonObject CustomerObject(ShopifyCustomer c) => new()
    {
        ["id"] = c.Id,
        ["admin_graphql_api_id"] = Formats.Gid("Customer", c.Id),
        ["email"] = c.Email,
        ["first_name"] = c.FirstName,
        ["last_name"] = c.LastName,
        ["phone"] = c.Phone,
        ["state"] = c.State,
        ["verified_email"] = c.VerifiedEmail,
        ["note"] = c.Note,
        ["currency"] = c.Currency,
        ["tax_exempt"] = c.TaxExempt,
        ["created_at"] = Time(c.CreatedAt),
        ["updated_at"] = Time(c.UpdatedAt),
        ["default_address"] = c.DefaultAddress is { } a ? AddressObject(a, c.Id) : null,
    };

    // Why customerId: an address from a customer's address book names its owner and whether it is the default.
    private static JsonObject AddressObject(ShopifyAddress a, long? customerId)
    {
        var address = new JsonObject();
        if (customerId is { } id)
        {
            address["customer_id"] = id;
            address["default"] = true;
        }
        address["first_name"] = a.FirstName;
        address["last_name"] = a.LastName;
        address["name"] = a.FirstName is null && a.LastName is null ? null : $"{a.FirstName} {a.LastName}".Trim();
        address["company"] = a.Company;
        address["address1"] = a.Address1;
        address["address2"] = a.Address2;
        address["city"] = a.City;
        address["province"] = a.Province;
        address["province_code"] = a.ProvinceCode;
        address["country"] = a.Country;
        address["country_code"] = a.CountryCode;
        address["zip"] = a.Zip;
        address["phone"] = a.Phone;
        return address;
    }

    private static JsonObject? OptionalAddress(ShopifyAddress? a) => a is null ? null : AddressObject(a, customerId: null);

    private static JsonObject ClientDetails(ShopifyClientDetails c) => new()
    {
        ["browser_ip"] = c.BrowserIp,
        ["accept_language"] = c.AcceptLanguage,
        ["user_agent"] = c.UserAgent,
        ["session_hash"] = c.SessionHash,
    };

    private static JsonObject DiscountCode(ShopifyDiscountCode d) => new()
    {
        ["code"] = d.Code,
        ["amount"] = Money(d.Amount),
        ["type"] = d.Type,
    };

    private static JsonObject ShippingLine(ShopifyShippingLine s, string currency) => new()
    {
        ["id"] = s.Id,
        ["title"] = s.Title,
        ["code"] = s.Code,
        ["source"] = s.Source,
        ["price"] = Money(s.Price),
        ["discounted_price"] = Money(s.Price),
        ["price_set"] = MoneySet(s.Price, currency),
    };

    private static JsonObject Image(long productId, string src, int index) => new()
    {
        ["product_id"] = productId,
        ["position"] = index + 1,
        ["src"] = src,
    };

    private static JsonArray Attributes(IReadOnlyList<ShopifyAttribute> attributes) =>
        Array(attributes, a => new JsonObject { ["name"] = a.Name, ["value"] = a.Value });

    private static string Money(decimal amount) => Formats.Money(amount);

    private static string? Time(DateTimeOffset? t) => t is { } v ? Formats.Time(v) : null;

    /// <summary>REST "*_set" twin of a money field: the shop's and the buyer's currency (the same one here).</summary>
    private static JsonObject MoneySet(decimal amount, string currency) => new()
    {
        ["shop_money"] = new JsonObject { ["amount"] = Money(amount), ["currency_code"] = currency },
        ["presentment_money"] = new JsonObject { ["amount"] = Money(amount), ["currency_code"] = currency },
    };

    private static JsonArray Array<T>(IReadOnlyList<T> items, Func<T, JsonNode> item) => Array(items, (x, _) => item(x));

    private static JsonArray Array<T>(IReadOnlyList<T> items, Func<T, int, JsonNode> item)
    {
        var array = new JsonArray();
        for (var i = 0; i < items.Count; i++) array.Add(item(items[i], i));
        return array;
    }
}
