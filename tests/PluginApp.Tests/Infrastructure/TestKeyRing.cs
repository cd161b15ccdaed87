using PluginApp.Install.KeyRing;

namespace PluginApp.Tests.Infrastructure;

/// <summary>Key-ring certificates the tests make for themselves under the checkout's git-ignored .run/ (never committed).</summary>
public static class TestKeyRing
{
    private static readonly Lazy<string> Default = new(() => Create("test-keyring.pfx"));

    /// <summary>The certificate every test app instance encrypts its key ring with.</summary>
    public static string CertificatePath => Default.Value;

    /// <summary>A certificate of its own (a rotation test's new one), made once per name and test run.</summary>
    public static string Create(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PluginApp.sln"))) dir = dir.Parent;
        var path = Path.Combine(dir?.FullName ?? Path.GetTempPath(), ".run", $"{Environment.ProcessId}-{name}");
        if (!File.Exists(path)) KeyRingCommands.CreateCertificate(path, null);
        return path;
    }
}
