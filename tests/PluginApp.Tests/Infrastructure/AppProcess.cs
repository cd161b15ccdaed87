using System.Diagnostics;

namespace PluginApp.Tests.Infrastructure;

/// <summary>
/// The built app run as its own process (dotnet PluginApp.dll), so a test can kill it the way a crash or an OOM kill
/// does: no shutdown, no finally blocks, connections cut by the kernel.
/// </summary>
public sealed class AppProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private AppProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Output { get { lock (_output) return string.Join('\n', _output.TakeLast(60)); } }

    public static AppProcess Start(IReadOnlyDictionary<string, string> settings)
    {
        var start = new ProcessStartInfo("dotnet", [AppDll()]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
        start.Environment["ASPNETCORE_URLS"] = "http://127.0.0.1:0";
        foreach (var (key, value) in settings) start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        return new AppProcess(Process.Start(start)!);
    }

    /// <summary>SIGKILL: what a crash looks like to everyone else.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public bool HasExited => _process.HasExited;

    /// <summary>app/bin/{Configuration}/net10.0/PluginApp.dll of this checkout, built by scripts/test.sh before the tests run.</summary>
    private static string AppDll()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = dir.Parent!.Name; // .../tests/PluginApp.Tests/bin/{Configuration}/net10.0/
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PluginApp.sln"))) dir = dir.Parent;
        var dll = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("PluginApp.sln not found above the test assembly"),
            "app", "bin", configuration, "net10.0", "PluginApp.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("Build the app first (scripts/test.sh builds the solution).", dll);
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited) Kill();
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
