using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Npgsql;

namespace PluginApp.Install.KeyRing;

/// <summary>One way to set up Data Protection: the key ring in PostgreSQL, its keys encrypted with the operator's certificate.</summary>
public static class KeyRingSetup
{
    public const string ApplicationName = "PluginApp";

    /// <param name="db">The data source to keep the ring in; null: the one registered in the container.</param>
    public static void Configure(IServiceCollection services, KeyRingOptions ring, NpgsqlDataSource? db)
    {
        var dataProtection = services.AddDataProtection().SetApplicationName(ApplicationName);
        if (db is null) services.AddOptions<KeyManagementOptions>().Configure<NpgsqlDataSource>((o, ds) => o.XmlRepository = new PostgresXmlRepository(ds));
        else services.Configure<KeyManagementOptions>(o => o.XmlRepository = new PostgresXmlRepository(db));
        if (string.IsNullOrEmpty(ring.CertificatePath) || !File.Exists(ring.CertificatePath)) return;
        var current = ring.LoadCurrent();
        dataProtection.ProtectKeysWithCertificate(current);
        dataProtection.UnprotectKeysWithAnyCertificate([current, .. ring.LoadPrevious()]);
    }

    /// <summary>
    /// A Data Protection stack of its own, reading the ring afresh. Why: a running instance keeps its ring cached, so right
    /// after a rotation it would still protect with the key just revoked.
    /// </summary>
    public static ServiceProvider Standalone(KeyRingOptions ring, NpgsqlDataSource db)
    {
        var services = new ServiceCollection().AddLogging();
        Configure(services, ring, db);
        return services.BuildServiceProvider();
    }
}
