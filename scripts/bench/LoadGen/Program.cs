using System.Globalization;
using LoadGen;

// Usage: LoadGen ingest --url URL --secret S --conn CS [--n 20000] [--concurrency 32]
//        LoadGen serve --url URL --secret S --shop SHOP --products FILE [--n 30000] [--concurrency 64] [--token OPERATOR_TOKEN] [--scale 4]
//        LoadGen memory --url URL --secret S --conn CS --token OPERATOR_TOKEN --pid APP_PID [--stores 1000 --items 200 --stores2 100 --items2 2000]
//        LoadGen risk --url URL --secret S --conn CS [--n 10000] [--idle 100] [--concurrency 32]
//        LoadGen install --url URL --secret S --client-id ID --shop SHOP
//        LoadGen crash --phase load|resend --url URL --secret S --conn CS --state FILE [--n 5000] [--concurrency 32] [--kill-pid PID --kill-after K]
var opts = Args.Parse(args);
switch (opts.Command)
{
    case "ingest":
        return await IngestBenchmark.RunAsync(opts);
    case "serve":
        return await ServeBenchmark.RunAsync(opts);
    case "memory":
        return await MemoryBenchmark.RunAsync(opts);
    case "risk":
        return await RiskLatencyBenchmark.RunAsync(opts);
    case "crash":
        return await CrashTest.RunAsync(opts);
    case "install":
        return await InstallShop.RunAsync(opts);
    default:
        Console.Error.WriteLine("usage: LoadGen ingest --url URL --secret SECRET --conn CONNSTRING [--n N] [--concurrency C]");
        Console.Error.WriteLine("       LoadGen serve --url URL --secret SECRET --shop SHOP --products FILE [--n N] [--concurrency C] [--token OPERATOR_TOKEN] [--scale K]");
        Console.Error.WriteLine("       LoadGen memory --url URL --secret SECRET --conn CONNSTRING --token OPERATOR_TOKEN --pid APP_PID [--stores N --items N --stores2 N --items2 N]");
        Console.Error.WriteLine("       LoadGen risk --url URL --secret SECRET --conn CONNSTRING [--n N] [--idle N] [--concurrency C]");
        Console.Error.WriteLine("       LoadGen install --url URL --secret SECRET --client-id CLIENT_ID --shop SHOP");
        Console.Error.WriteLine("       LoadGen crash --phase load|resend --url URL --secret SECRET --conn CONNSTRING --state FILE [--n N] [--concurrency C] [--kill-pid PID --kill-after K]");
        return 2;
}

namespace LoadGen
{
    internal sealed record Args(string Command, Dictionary<string, string> Values)
    {
        public string Get(string name) => Values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"--{name} is required");
        public int GetInt(string name, int fallback) => Values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

        public static Args Parse(string[] args)
        {
            var values = new Dictionary<string, string>();
            for (var i = 1; i + 1 < args.Length; i += 2) values[args[i].TrimStart('-')] = args[i + 1];
            return new Args(args.Length > 0 ? args[0] : "", values);
        }
    }
}
