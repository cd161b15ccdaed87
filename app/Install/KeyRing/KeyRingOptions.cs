using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;

namespace PluginApp.Install.KeyRing;

/// <summary>
/// The certificate that encrypts the Data Protection key ring, which lives in PostgreSQL beside the tokens it protects.
/// Why a certificate outside the database: a dump, backup or replica of the database alone must not decrypt any token.
/// </summary>
public sealed class KeyRingOptions
{
    public const string Section = "DataProtection";

    /// <summary>A PKCS#12 (.pfx) file with a private key, provided by the operator (a secret mount, not the repository).</summary>
    public string? CertificatePath { get; set; }

    public string? CertificatePassword { get; set; }

    /// <summary>Certificates of earlier rotations: they only decrypt keys written before, until `keys retire` has run.</summary>
    public List<string> PreviousCertificatePaths { get; set; } = [];

    public X509Certificate2 LoadCurrent() => Load(CertificatePath!);

    public IEnumerable<X509Certificate2> LoadPrevious() => PreviousCertificatePaths.Where(File.Exists).Select(Load);

    private X509Certificate2 Load(string path) =>
        X509CertificateLoader.LoadPkcs12FromFile(path, CertificatePassword, X509KeyStorageFlags.EphemeralKeySet);
}

public sealed class KeyRingOptionsValidator(IHostEnvironment environment) : IValidateOptions<KeyRingOptions>
{
    public ValidateOptionsResult Validate(string? name, KeyRingOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrEmpty(o.CertificatePath))
        {
            if (environment.IsProduction())
                f.Add("DataProtection:CertificatePath is required in Production: without it the key ring that decrypts every shop's tokens " +
                      "sits unencrypted in the database. Create one with `dotnet PluginApp.dll keys create-certificate PATH`.");
        }
        foreach (var path in new[] { o.CertificatePath }.Concat(o.PreviousCertificatePaths).Where(p => !string.IsNullOrEmpty(p)).OfType<string>())
        {
            try
            {
                using var cert = X509CertificateLoader.LoadPkcs12FromFile(path, o.CertificatePassword, X509KeyStorageFlags.EphemeralKeySet);
                if (!cert.HasPrivateKey) f.Add($"DataProtection certificate '{path}' has no private key.");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                f.Add($"DataProtection certificate '{path}' cannot be read: {e.Message}");
            }
        }
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }
}
