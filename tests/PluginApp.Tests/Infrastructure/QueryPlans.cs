using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace PluginApp.Tests.Infrastructure;

/// <summary>What a statement's plan read when it ran: for tests that a lookup stays a lookup whatever else the tables hold.</summary>
public static partial class QueryPlans
{
    /// <summary>
    /// Runs <paramref name="sql"/> under EXPLAIN ANALYZE on <paramref name="conn"/> (in <paramref name="tx"/> when given: a
    /// statement that writes does so for real) and returns the most rows any step of the plan produced or filtered out,
    /// over all its loops, with the plan for the assertion's message. A statement that walks a table reads thousands.
    /// </summary>
    private static async Task<(double Rows, string Plan)> MostRowsReadAsync(NpgsqlConnection conn, string sql, object[] parameters,
        NpgsqlTransaction? tx = null)
    {
        await using var explain = new NpgsqlCommand("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, conn, tx);
        foreach (var p in parameters) explain.Parameters.AddWithValue(p);
        var plan = new List<string>();
        await using (var r = await explain.ExecuteReaderAsync())
            while (await r.ReadAsync()) plan.Add(r.GetString(0));
        // A step's "Rows Removed" is a mean per loop, as its rows are: both are multiplied by the loops of that step, whose
        // line comes just before.
        var rows = double.NaN;
        var loops = 1.0;
        foreach (var m in plan.Select(l => RowsOrRemoved().Match(l)).Where(m => m.Success))
        {
            if (m.Groups[2].Success) loops = Number(m.Groups[2]);
            var read = m.Groups[3].Success ? Number(m.Groups[3]) * loops : Number(m.Groups[1]) * loops;
            rows = double.IsNaN(rows) ? read : Math.Max(rows, read);
        }
        return (rows, string.Join('\n', plan));
    }

    /// <summary>
    /// Fails unless <paramref name="sql"/> read at most <paramref name="most"/> rows in every step of its plan; the message
    /// names <paramref name="what"/> and shows the plan.
    /// </summary>
    public static async Task AssertReadsAtMostAsync(NpgsqlConnection conn, string what, double most, string sql, object[] parameters,
        NpgsqlTransaction? tx = null)
    {
        var (read, plan) = await MostRowsReadAsync(conn, sql, parameters, tx);
        Assert.False(double.IsNaN(read), plan);
        Assert.True(read <= most, $"{what} read {read} rows in a step:\n{plan}");
    }

    private static double Number(Group g) => double.Parse(g.Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"rows=([\d.]+) loops=(\d+)|Removed by (?:Join )?Filter: (\d+)")]
    private static partial Regex RowsOrRemoved();
}
