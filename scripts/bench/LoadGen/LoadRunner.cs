using System.Diagnostics;

namespace LoadGen;

/// <summary>Sends a fixed list of requests at a fixed concurrency and reports throughput and latency.</summary>
internal static class LoadRunner
{
    public sealed record Result(int Requests, int Failures, double Seconds, double P50Ms, double P99Ms)
    {
        /// <summary>Each request's latency (ms) by its index, and when it started (ms after the phase began).</summary>
        public double[] Latencies { get; init; } = [];
        public double[] Starts { get; init; } = [];
        /// <summary>When the phase began.</summary>
        public DateTimeOffset Began { get; init; }

        /// <summary>The p-th latency of the requests whose index passes <paramref name="which"/>.</summary>
        public double Percentile(double p, Func<int, bool> which)
        {
            var picked = Enumerable.Range(0, Latencies.Length).Where(which).Select(i => Latencies[i]).Order().ToArray();
            return LoadRunner.Percentile(picked, p);
        }

        public double PerSecond => Requests / Seconds;
        public override string ToString() =>
            $"{PerSecond,9:F0} req/s  p50 {P50Ms,6:F2} ms  p99 {P99Ms,6:F2} ms  ({Requests} requests, {Failures} failed, {Seconds:F2} s)";
    }

    public static async Task<Result> RunAsync(HttpClient http, int count, int concurrency, Func<int, HttpRequestMessage> make,
        Func<HttpResponseMessage, bool> ok)
    {
        var latencies = new double[count];
        var starts = new double[count];
        var failures = 0;
        var next = -1;
        var began = DateTimeOffset.UtcNow;
        var total = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                using var request = make(i);
                var start = Stopwatch.GetTimestamp();
                starts[i] = total.Elapsed.TotalMilliseconds;
                try
                {
                    using var response = await http.SendAsync(request);
                    if (!ok(response)) Interlocked.Increment(ref failures);
                }
                catch (HttpRequestException) { Interlocked.Increment(ref failures); }
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }).ToArray();
        await Task.WhenAll(workers);
        var seconds = total.Elapsed.TotalSeconds;
        var sorted = latencies.Order().ToArray();
        return new Result(count, failures, seconds, Percentile(sorted, 0.50), Percentile(sorted, 0.99)) { Latencies = latencies, Starts = starts, Began = began };
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
