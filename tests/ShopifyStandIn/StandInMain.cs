using System.Globalization;
using System.Runtime.InteropServices;

namespace ShopifyStandIn;

/// <summary>
/// Runs the stand-in on its own for the demo and the benchmarks:
/// dotnet ShopifyStandIn.dll --secret S [--bulk-dir DIR] [--port-file F] [--polls N].
/// Bulk queries over products, customers and orders are answered from DIR/{root}.jsonl.
/// </summary>
public static class StandInMain
{
    public static async Task<int> Main(string[] args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var secret = Arg("--secret");
        if (string.IsNullOrEmpty(secret))
        {
            Console.Error.WriteLine("usage: ShopifyStandIn --secret SECRET [--bulk-dir DIR] [--port-file FILE] [--polls N]");
            return 2;
        }
        await using var server = await StandInServer.StartAsync(secret);
        server.Admin.PollsBeforeComplete = int.TryParse(Arg("--polls"), NumberStyles.None, CultureInfo.InvariantCulture, out var polls) ? polls : 1;
        if (Arg("--bulk-dir") is { } dir)
            foreach (var root in new[] { "products", "customers", "orders" })
                if (File.Exists(Path.Combine(dir, root + ".jsonl"))) server.Admin.ServeBulk(root, Path.GetFullPath(Path.Combine(dir, root + ".jsonl")));
        if (Arg("--port-file") is { } portFile) await File.WriteAllTextAsync(portFile, server.BaseUrl);
        Console.WriteLine($"Shopify stand-in listening on {server.BaseUrl}");

        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; server.Stop(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; server.Stop(); });
        await Task.Delay(Timeout.Infinite, server.Stopping).ContinueWith(_ => { }, TaskScheduler.Default);
        return 0;
    }
}
