using System.Globalization;
using System.Text;
using StoreReplay;

namespace LoadGen;

/// <summary>
/// Random orders/create bodies built by the shared <see cref="ShopifyShapes"/>: 1-10 lines, about 4.5-11 KB each,
/// mean about 6.5 KB.
/// </summary>
internal static class OrderBodies
{
    private static readonly DateTimeOffset Start = new(2026, 7, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>An order's orders/create body, as Shopify would send it.</summary>
    public static byte[] Body(ShopifyOrder order) => ShopifyShapes.Utf8(ShopifyShapes.Order(order));

    /// <summary>The benchmarks' addresses until 6 Dec 2026: 254, so each saw about 118 orders of a 30,000-order month.</summary>
    public const int ConcentratedAddresses = 254;

    /// <summary>
    /// A random order; all draws come from <paramref name="r"/>, so a seed gives the same orders in the same order. Its
    /// browser address is one of <paramref name="addresses"/>: up to <see cref="ConcentratedAddresses"/> from 198.51.100.0/24
    /// (the same draw as before, so those orders are as they were); more, all from the IPv6 documentation prefix.
    /// </summary>
    public static ShopifyOrder Draw(Random r, long orderId, int addresses = ConcentratedAddresses)
    {
        // Why the smaller of two draws: 1-10 lines, most orders short (mean 3.85), which with Shopify's full line item
        // (about 0.8 KB) keeps the mean body near the 6.5 KB the ingest figures were measured with.
        var lines = Math.Min(r.Next(1, 11), r.Next(1, 11));
        var created = Start.AddSeconds(r.Next(0, 86400 * 30));
        return new ShopifyOrder
        {
            Id = orderId,
            Number = orderId % 1000000,
            Token = Hex(r, 16),
            CartToken = Hex(r, 16),
            CheckoutToken = Hex(r, 16),
            Email = string.Create(CultureInfo.InvariantCulture, $"shopper{r.Next(100000)}@example.com"),
            CreatedAt = created,
            UpdatedAt = created,
            Currency = "USD",
            LandingSite = "/products/a-very-nice-mug?utm_source=newsletter&utm_medium=email&utm_campaign=summer",
            ReferringSite = "https://www.example.com/some/long/referrer/path",
            Client = new ShopifyClientDetails
            {
                BrowserIp = addresses <= ConcentratedAddresses
                    ? string.Create(CultureInfo.InvariantCulture, $"198.51.100.{r.Next(1, addresses + 1)}")
                    : Ipv6(r.Next(1, addresses + 1)),
                AcceptLanguage = "en-US,en;q=0.9",
                UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            },
            NoteAttributes = [new ShopifyAttribute("gift_message", Words(r, 3))],
            Customer = Customer(r),
            BillingAddress = Address(r),
            ShippingAddress = Address(r),
            ShippingLines = [new ShopifyShippingLine { Id = orderId, Title = "Standard Shipping", Price = 5m }],
            Lines = Enumerable.Range(0, lines).Select(i => new ShopifyLine
            {
                Id = orderId * 100 + i,
                ProductId = 7000 + r.Next(0, 400),
                VariantId = 17000 + r.Next(0, 2000),
                Title = Words(r, 2),
                Sku = Hex(r, 6).ToUpperInvariant(),
                Vendor = "Acme Goods",
                Quantity = r.Next(1, 4),
                Price = r.Next(300, 12000) / 100m,
                Grams = r.Next(50, 2000),
            }).ToList(),
        };
    }

    /// <summary>The <paramref name="n"/>th address of the IPv6 documentation prefix, groups of at most four hex digits.</summary>
    private static string Ipv6(int n) => string.Create(CultureInfo.InvariantCulture, $"2001:db8::{n >> 16:x}:{n & 0xffff:x}");

    private static ShopifyCustomer Customer(Random r)
    {
        var id = 900000 + r.Next(0, 50000);
        var since = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        return new ShopifyCustomer
        {
            Id = id,
            Email = string.Create(CultureInfo.InvariantCulture, $"shopper{id}@example.com"),
            FirstName = "Sam",
            LastName = "Shopper",
            Currency = "USD",
            CreatedAt = since,
            UpdatedAt = since,
            DefaultAddress = Address(r),
        };
    }

    private static ShopifyAddress Address(Random r) => new()
    {
        FirstName = "Sam", LastName = "Shopper", Address1 = string.Create(CultureInfo.InvariantCulture, $"{r.Next(1, 999)} Market Street"),
        City = "Springfield", Province = "Illinois", ProvinceCode = "IL", Country = "United States", CountryCode = "US",
        Zip = r.Next(10000, 99999).ToString(CultureInfo.InvariantCulture), Phone = "+15555550100",
    };

    private static readonly string[] Vocabulary = ["mug", "ceramic", "blue", "large", "gift", "set", "handmade", "cotton", "bag", "lamp", "wooden", "candle", "vintage", "glass"];

    private static string Words(Random r, int n)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < n; i++) sb.Append(i == 0 ? "" : " ").Append(Vocabulary[r.Next(Vocabulary.Length)]);
        return sb.ToString();
    }

    private static string Hex(Random r, int bytes)
    {
        var b = new byte[bytes];
        r.NextBytes(b);
        return Convert.ToHexStringLower(b);
    }
}
