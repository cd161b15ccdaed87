using Npgsql;
using PluginApp.StoreData;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Platform;

/// <summary>The shop's currency that risk reasons, the settings pages and the storefront's prices are written in.</summary>
public sealed class ShopCurrencyTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>A default set in dollars reads as a round figure in the shop's currency; near the dollar, or unknown, as set.</summary>
    [Theory]
    [InlineData("JPY", 150_000)]
    [InlineData("KRW", 1_400_000)]
    [InlineData("SEK", 10_000)]
    [InlineData("INR", 85_000)]
    [InlineData("KWD", 310)]
    [InlineData("EUR", 1_000)]
    [InlineData("XYZ", 1_000)]
    [InlineData(null, 1_000)]
    public void ADefaultInDollars_ReadsAsARoundFigureInTheShopsCurrency(string? currency, int expected) =>
        Assert.Equal(expected, PluginApp.Shopify.Currency.RoundDefault(1000m, currency));

    /// <summary>
    /// A shop whose install did not say its currency takes its latest order's, and finds it without reading the orders of
    /// the deployment's other shops: "any order of the shop with a currency" was planned as a scan of the orders table,
    /// which read every order stored before the shop's first on each risk batch and page view.
    /// </summary>
    [Fact]
    public async Task WithoutOneFromTheInstall_IsTheLatestOrders_ReadWithoutOtherShopsOrders()
    {
        var busy = await app.InstallShopAsync("currency-busy.myshopify.com");
        var quiet = await app.InstallShopAsync("currency-quiet.myshopify.com");
        var now = app.Clock.GetUtcNow();
        await using (var fill = app.Db.CreateBatch())
        {
            void Add(string sql, params object[] args)
            {
                var c = new NpgsqlBatchCommand(sql);
                foreach (var a in args) c.Parameters.Add(new NpgsqlParameter { Value = a });
                fill.BatchCommands.Add(c);
            }
            // The busy shop's orders first, as a deployment's older shops' are: a scan meets them before the quiet shop's.
            Add("""
                INSERT INTO orders (shop_id, id, currency, total_price, created_at, updated_at)
                SELECT $1, 930000000 + i, 'USD', 10, $2 - interval '1 hour' * i, $2 - interval '1 hour' * i FROM generate_series(1, 20000) i
                """, busy, now);
            // The quiet shop's: a fifth of the table, so a plan that expects to meet one of them soon scans from the start. Its
            // latest order names no currency; the one before it GBP; every older one EUR.
            Add("""
                INSERT INTO orders (shop_id, id, currency, total_price, created_at, updated_at)
                SELECT $1, 940000000 + i, CASE i WHEN 1 THEN NULL WHEN 2 THEN 'GBP' ELSE 'EUR' END, 10,
                       $2 - interval '1 hour' * i, $2 - interval '1 hour' * i
                FROM generate_series(1, 5000) i
                """, quiet, now);
            Add("UPDATE shops SET currency = NULL WHERE id = ANY($1)", new[] { busy, quiet });
            Add("ANALYZE orders");
            await fill.ExecuteNonQueryAsync();
        }

        await using (var cmd = app.Db.CreateCommand($"SELECT {ShopCurrency.Of("$1")}"))
        {
            cmd.Parameters.AddWithValue(quiet);
            Assert.Equal("GBP", await cmd.ExecuteScalarAsync());
        }
        await using var conn = await app.Db.OpenConnectionAsync();
        await QueryPlans.AssertReadsAtMostAsync(conn, "finding the currency", 10, $"SELECT {ShopCurrency.Of("$1")}", [quiet]);

        await using (var set = app.Db.CreateCommand("UPDATE shops SET currency = 'CAD' WHERE id = $1"))
        {
            set.Parameters.AddWithValue(quiet);
            await set.ExecuteNonQueryAsync();
        }
        await using (var cmd = app.Db.CreateCommand($"SELECT {ShopCurrency.Of("$1")}"))
        {
            cmd.Parameters.AddWithValue(quiet);
            Assert.Equal("CAD", await cmd.ExecuteScalarAsync());
        }
    }
}
