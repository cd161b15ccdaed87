using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PluginApp.Install.KeyRing;

/// <summary>
/// Operator commands for the key ring (dotnet PluginApp.dll keys ...):
/// create-certificate PATH [PASSWORD] writes a new self-signed certificate for DataProtection:CertificatePath;
/// rotate makes a new key, re-encrypts every stored token with it and revokes the older keys;
/// retire deletes revoked keys, after which the certificates listed in PreviousCertificatePaths are no longer needed.
/// </summary>
public sealed class KeyRingCommands(IKeyManager keys, IOptions<KeyRingOptions> ring, NpgsqlDataSource db, TimeProvider clock,
    ILogger<KeyRingCommands> logger)
{
    public static async Task<int> RunAsync(IServiceProvider services, string[] args)
    {
        switch (args.ElementAtOrDefault(1))
        {
            case "create-certificate" when args.Length >= 3:
                CreateCertificate(args[2], args.ElementAtOrDefault(3));
                Console.WriteLine($"Wrote {args[2]}. Set DataProtection:CertificatePath to it (and DataProtection:CertificatePassword if you gave one).");
                return 0;
            case "rotate" or "retire":
                // The host is not started for a command, so its settings are checked here, before anything changes.
                try { _ = services.GetRequiredService<IOptions<KeyRingOptions>>().Value; }
                catch (OptionsValidationException e)
                {
                    Console.Error.WriteLine($"Nothing changed: {e.Message}");
                    return 2;
                }
                if (args[1] == "rotate")
                {
                    await services.GetRequiredService<Data.DatabaseMigrator>().MigrateAsync(CancellationToken.None);
                    var rewritten = await services.GetRequiredService<KeyRingCommands>().RotateAsync(CancellationToken.None);
                    Console.WriteLine($"New key active; {rewritten} stored tokens re-encrypted with it; older keys revoked.");
                    return 0;
                }
                var deleted = await services.GetRequiredService<KeyRingCommands>().RetireAsync(CancellationToken.None);
                Console.WriteLine($"Deleted {deleted} revoked keys. Certificates in DataProtection:PreviousCertificatePaths can now be removed.");
                return 0;
            default:
                Console.Error.WriteLine("usage: PluginApp keys create-certificate PATH [PASSWORD] | keys rotate | keys retire");
                return 2;
        }
    }

    /// <summary>A 3072-bit RSA self-signed certificate valid for ten years: it only encrypts the key ring, nobody verifies its chain.</summary>
    public static void CreateCertificate(string path, string? password)
    {
        using var rsa = RSA.Create(3072);
        var request = new CertificateRequest("CN=PluginApp key ring", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DataEncipherment, critical: true));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(10));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllBytes(path, cert.Export(X509ContentType.Pkcs12, password));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>
    /// A new key (encrypted with the current certificate) becomes the only valid one, and every stored token is re-encrypted
    /// with it in one transaction. If interrupted, run it again: tokens still on a revoked key are read past the revocation.
    /// </summary>
    /// <returns>How many shops' tokens were re-encrypted.</returns>
    /// <exception cref="OptionsValidationException">The key ring's settings are wrong (no certificate in Production, one that
    /// cannot be read): nothing is changed. Until 8 Dec 2026 they were read only after every older key was revoked, which left
    /// every stored token on revoked keys, and in Production the new key unencrypted.</exception>
    public async Task<int> RotateAsync(CancellationToken ct)
    {
        _ = ring.Value;
        var now = clock.GetUtcNow();
        // Why activate it in the past: Data Protection does not make a key the default until it has had time to reach every
        // instance; this one is written to the shared ring now, and every other key is revoked below.
        var fresh = keys.CreateNewKey(now.AddDays(-3), now.AddYears(1));
        foreach (var key in keys.GetAllKeys().Where(k => k.KeyId != fresh.KeyId && !k.IsRevoked))
            keys.RevokeKey(key.KeyId, "rotated: tokens re-encrypted with a newer key");
        var rewritten = await ReEncryptAsync(ct);
        logger.LogInformation("Key ring rotated to key {Key}; {Count} rows of tokens and secrets re-encrypted", fresh.KeyId, rewritten);
        return rewritten;
    }

    /// <summary>
    /// Every pair of columns encrypted with the tokens' protector (<see cref="OfflineTokenStore.Purpose"/>): the shops' Shopify
    /// tokens, and the Stripe key and signing secret a store connected (app/Stripe).
    /// </summary>
    private static readonly (string Table, string First, string Second)[] Encrypted =
        [("shops", "access_token_enc", "refresh_token_enc"), ("stripe_connections", "restricted_key_enc", "webhook_secret_enc")];

    /// <summary>Every stored secret on a revoked key, re-encrypted with the current default key, in one transaction.</summary>
    private async Task<int> ReEncryptAsync(CancellationToken ct)
    {
        await using var standalone = KeyRingSetup.Standalone(ring.Value, db);
        var revoked = standalone.GetRequiredService<IKeyManager>().GetAllKeys().Where(k => k.IsRevoked).Select(k => k.KeyId).ToHashSet();
        var protector = (IPersistedDataProtector)standalone.GetRequiredService<IDataProtectionProvider>().CreateProtector(OfflineTokenStore.Purpose);
        var rewritten = 0;
        await using (var conn = await db.OpenConnectionAsync(ct))
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            foreach (var (table, first, second) in Encrypted)
            {
                var rows = new List<(long Id, string? First, string? Second)>();
                await using (var read = new NpgsqlCommand($"SELECT id, {first}, {second} FROM {table} FOR UPDATE", conn, tx))
                await using (var r = await read.ExecuteReaderAsync(ct))
                    while (await r.ReadAsync(ct)) rows.Add((r.GetInt64(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2)));
                foreach (var (id, a, b) in rows.Where(x => x.First is { } f && revoked.Contains(KeyIdOf(f)) || x.Second is { } g && revoked.Contains(KeyIdOf(g))))
                {
                    await using var write = new NpgsqlCommand($"UPDATE {table} SET {first} = $2, {second} = $3 WHERE id = $1", conn, tx);
                    write.Parameters.AddWithValue(id);
                    write.Parameters.Add(new NpgsqlParameter { Value = a is null ? DBNull.Value : Reprotect(protector, a, revoked), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
                    write.Parameters.Add(new NpgsqlParameter { Value = b is null ? DBNull.Value : Reprotect(protector, b, revoked), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
                    await write.ExecuteNonQueryAsync(ct);
                    rewritten++;
                }
            }
            await tx.CommitAsync(ct);
        }
        return rewritten;
    }

    /// <summary>
    /// Deletes revoked keys from the ring, after re-encrypting any token an instance that had not yet seen the rotation wrote
    /// with one of them. Run once every instance has restarted on the new certificate (or a day later).
    /// </summary>
    public async Task<int> RetireAsync(CancellationToken ct)
    {
        await ReEncryptAsync(ct);
        await using var standalone = KeyRingSetup.Standalone(ring.Value, db);
        var revoked = standalone.GetRequiredService<IKeyManager>().GetAllKeys().Where(k => k.IsRevoked).Select(k => k.KeyId).ToHashSet();
        // Why by hand: the framework's key manager does not expose deletion here; our repository deletes keys, then their revocations.
        return new PostgresXmlRepository(db).DeleteKeys(revoked);
    }

    private static string Reprotect(IPersistedDataProtector protector, string stored, HashSet<Guid> revoked)
    {
        var plain = protector.DangerousUnprotect(WebEncoders.Base64UrlDecode(stored), ignoreRevocationErrors: true, out _, out _);
        var again = WebEncoders.Base64UrlEncode(protector.Protect(plain));
        return !revoked.Contains(KeyIdOf(again)) ? again : throw new InvalidOperationException("a revoked key is still the default; run rotate again");
    }

    /// <summary>The id of the key a Data Protection payload was written with (bytes 4..20 of the decoded payload).</summary>
    internal static Guid KeyIdOf(string protectedPayload) =>
        new(WebEncoders.Base64UrlDecode(protectedPayload).AsSpan(4, 16));
}
