using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using PluginApp.Install;
using PluginApp.Install.KeyRing;
using PluginApp.Tests.Infrastructure;

namespace PluginApp.Tests.Install;

/// <summary>The key ring sits in the database beside the tokens; the certificate that opens it does not.</summary>
public sealed class KeyRingTests(AppFixture app) : IClassFixture<AppFixture>
{
    /// <summary>What a dump holds: the key ring's rows, read by a Data Protection stack of its own.</summary>
    internal sealed class DumpRepository(IEnumerable<XElement> elements) : IXmlRepository
    {
        private readonly List<XElement> _elements = elements.ToList();
        public IReadOnlyCollection<XElement> GetAllElements() => _elements;
        public void StoreElement(XElement element, string friendlyName) => _elements.Add(element);
    }

    internal static async Task<List<XElement>> KeyRingRowsAsync(AppFixture app)
    {
        var rows = new List<XElement>();
        await using var cmd = app.Db.CreateCommand("SELECT xml FROM data_protection_keys");
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add(XElement.Parse(r.GetString(0)));
        return rows;
    }

    internal static string UnprotectFromDump(List<XElement> rows, string protectedToken, params X509Certificate2[] certificates)
    {
        var services = new ServiceCollection().AddLogging();
        var dp = services.AddDataProtection().SetApplicationName("PluginApp").DisableAutomaticKeyGeneration();
        services.Configure<KeyManagementOptions>(o => o.XmlRepository = new DumpRepository(rows));
        if (certificates.Length > 0) dp.UnprotectKeysWithAnyCertificate(certificates);
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IDataProtectionProvider>().CreateProtector(OfflineTokenStore.Purpose).Unprotect(protectedToken);
    }

    internal static X509Certificate2 Certificate(string path) => X509CertificateLoader.LoadPkcs12FromFile(path, null, X509KeyStorageFlags.EphemeralKeySet);

    [Fact]
    public async Task DumpOfTheDatabaseAlone_CannotDecryptAStoredToken_TheCertificateCan()
    {
        const string shop = "keyring-dump.myshopify.com";
        await app.InstallShopAsync(shop);
        var token = (string)(await app.ScalarAsync("SELECT access_token_enc FROM shops WHERE domain = $1", shop))!;
        var rows = await KeyRingRowsAsync(app);

        Assert.NotEmpty(rows);
        Assert.All(rows.Where(e => e.Name == "key"), k => Assert.Contains("encryptedSecret", k.ToString()));
        Assert.DoesNotContain(rows, k => k.ToString().Contains("<masterKey", StringComparison.Ordinal));
        Assert.ThrowsAny<CryptographicException>(() => UnprotectFromDump(rows, token));
        Assert.Equal($"shpat_{shop}_seed", UnprotectFromDump(rows, token, Certificate(TestKeyRing.CertificatePath)));
    }

    [Fact]
    public async Task Production_WithoutACertificate_RefusesToStart()
    {
        var e = await app.StartRefusalAsync(b =>
        {
            b.UseEnvironment("Production");
            b.UseSetting("DataProtection:CertificatePath", "");
        });

        Assert.Contains("DataProtection:CertificatePath is required in Production", e.ToString());
    }
}

/// <summary>A rotation changes the key ring every instance shares, so it runs on a database of its own.</summary>
public sealed class KeyRingRotationFixture : AppFixture;

public sealed class KeyRingRotationTests(KeyRingRotationFixture app) : IClassFixture<KeyRingRotationFixture>
{
    [Fact]
    public async Task Rotation_NewCertificateAndKey_TokensReEncrypted_OldCertificateRetired()
    {
        const string shop = "keyring-rotate.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        // The store's Stripe key and secret are encrypted with the same protector, so rotation must carry them too.
        await app.Factory.Services.GetRequiredService<PluginApp.Stripe.StripeConnections>().ConnectAsync(shopId, "rk_test_rotated0000", "whsec_rotated000000", CancellationToken.None);
        var connection = (long)(await app.ScalarAsync("SELECT id FROM stripe_connections WHERE shop_id = $1", shopId))!;
        var before = (string)(await app.ScalarAsync("SELECT access_token_enc FROM shops WHERE domain = $1", shop))!;
        var next = TestKeyRing.Create("rotated-keyring.pfx");
        var oldCert = KeyRingTests.Certificate(TestKeyRing.CertificatePath);

        // Step 1: deploy with the new certificate, the old one only for reading; then `keys rotate`.
        await using (var rotating = app.CreateFactory(app.Database.ConnectionString, b =>
        {
            b.UseSetting("Scheduling:Enabled", "false");
            b.UseSetting("DataProtection:CertificatePath", next);
            b.UseSetting("DataProtection:PreviousCertificatePaths:0", TestKeyRing.CertificatePath);
        }))
        {
            var rewritten = await rotating.Services.GetRequiredService<KeyRingCommands>().RotateAsync(CancellationToken.None);
            Assert.True(rewritten >= 1);
            Assert.Equal($"shpat_{shop}_seed", await rotating.Services.GetRequiredService<OfflineTokenStore>().GetAccessTokenAsync(shop, CancellationToken.None));
            // Step 2: `keys retire` once nothing needs the old keys.
            Assert.True(await rotating.Services.GetRequiredService<KeyRingCommands>().RetireAsync(CancellationToken.None) >= 1);
        }
        var after = (string)(await app.ScalarAsync("SELECT access_token_enc FROM shops WHERE domain = $1", shop))!;
        var rows = await KeyRingTests.KeyRingRowsAsync(app);

        // Step 3: the old certificate is gone from the configuration; everything still opens with the new one alone.
        await using var retired = app.CreateFactory(app.Database.ConnectionString, b =>
        {
            b.UseSetting("Scheduling:Enabled", "false");
            b.UseSetting("DataProtection:CertificatePath", next);
        });
        Assert.NotEqual(before, after);
        Assert.Equal($"shpat_{shop}_seed", await retired.Services.GetRequiredService<OfflineTokenStore>().GetAccessTokenAsync(shop, CancellationToken.None));
        Assert.Equal("rk_test_rotated0000", await retired.Services.GetRequiredService<PluginApp.Stripe.StripeConnections>().KeyAsync(connection, CancellationToken.None));
        Assert.DoesNotContain(rows, e => e.ToString().Contains(oldCert.Thumbprint, StringComparison.OrdinalIgnoreCase));
        Assert.ThrowsAny<CryptographicException>(() => KeyRingTests.UnprotectFromDump(rows, after, oldCert));
    }

    /// <summary>
    /// `keys rotate` whose settings do not hold (here an earlier certificate that cannot be read; in Production, no
    /// certificate) says why and changes nothing. Until 8 Dec 2026 it read them only after making a new key and revoking
    /// every older one, so it failed with every stored token on revoked keys.
    /// </summary>
    [Fact]
    public async Task Rotation_WithSettingsThatDoNotHold_ChangesNothing()
    {
        var keys = app.Factory.Services.GetRequiredService<IKeyManager>();
        var before = keys.GetAllKeys().Select(k => (k.KeyId, k.IsRevoked)).OrderBy(k => k.KeyId).ToList();
        var settings = new Microsoft.Extensions.Options.OptionsManager<KeyRingOptions>(new Microsoft.Extensions.Options.OptionsFactory<KeyRingOptions>(
            [new Microsoft.Extensions.Options.ConfigureOptions<KeyRingOptions>(o => o.PreviousCertificatePaths = ["/nonexistent/earlier-keyring.pfx"])], [],
            [new KeyRingOptionsValidator(app.Factory.Services.GetRequiredService<Microsoft.Extensions.Hosting.IHostEnvironment>())]));
        var sut = new KeyRingCommands(keys, settings, app.Db, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<KeyRingCommands>.Instance);

        var e = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => sut.RotateAsync(CancellationToken.None));

        Assert.Contains("cannot be read", e.Message);
        Assert.Equal(before, keys.GetAllKeys().Select(k => (k.KeyId, k.IsRevoked)).OrderBy(k => k.KeyId).ToList());
    }

    /// <summary>
    /// `keys rotate` run by another process while an instance runs: the instance had read its ring before the new key
    /// existed, and Data Protection looks for an unknown key again only in an instance's first minutes. The instance still
    /// reads every shop's token and Stripe secret, re-encrypted with the new key. Until 6 Dec 2026 it failed on all of them
    /// until it restarted (its ring reloads once a day).
    /// </summary>
    [Fact]
    public async Task ARunningInstance_ReadsTheSecretsAnotherProcessRotated()
    {
        const string shop = "keyring-running.myshopify.com";
        var shopId = await app.InstallShopAsync(shop);
        await app.Factory.Services.GetRequiredService<PluginApp.Stripe.StripeConnections>().ConnectAsync(shopId, "rk_test_running0000", "whsec_running0000000", CancellationToken.None);
        var connection = (long)(await app.ScalarAsync("SELECT id FROM stripe_connections WHERE shop_id = $1", shopId))!;
        var next = TestKeyRing.Create("rotated-keyring.pfx");
        void Deployed(IWebHostBuilder b)
        {
            b.UseSetting("Scheduling:Enabled", "false");
            b.UseSetting("DataProtection:CertificatePath", next);
            b.UseSetting("DataProtection:PreviousCertificatePaths:0", TestKeyRing.CertificatePath);
        }
        await using var running = app.CreateFactory(app.Database.ConnectionString, Deployed);
        var tokens = running.Services.GetRequiredService<OfflineTokenStore>();
        Assert.Equal($"shpat_{shop}_seed", await tokens.GetAccessTokenAsync(shop, CancellationToken.None));
        // The instance is past its first minutes, when Data Protection would still look for an unknown key.
        var ring = running.Services.GetRequiredService<Microsoft.AspNetCore.DataProtection.KeyManagement.Internal.IKeyRingProvider>();
        var window = ring.GetType().GetProperty("AutoRefreshWindowEnd", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic);
        Assert.NotNull(window);
        window.SetValue(ring, DateTime.MinValue);

        await using (var rotating = app.CreateFactory(app.Database.ConnectionString, Deployed))
            Assert.True(await rotating.Services.GetRequiredService<KeyRingCommands>().RotateAsync(CancellationToken.None) >= 1);

        Assert.Equal($"shpat_{shop}_seed", await tokens.GetAccessTokenAsync(shop, CancellationToken.None));
        Assert.Equal("rk_test_running0000", await running.Services.GetRequiredService<PluginApp.Stripe.StripeConnections>().KeyAsync(connection, CancellationToken.None));
    }
}
