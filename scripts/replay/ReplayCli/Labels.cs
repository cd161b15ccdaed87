using System.Globalization;
using StoreReplay;

namespace ReplayCli;

internal static class Labels
{
    /// <summary>The evaluation labels, kept out of every payload: order_id,transaction_id,created_at,tx_fraud,tx_fraud_scenario.</summary>
    public static void Write(ReplayStore store, string path)
    {
        using var w = new StreamWriter(path);
        w.WriteLine("order_id,transaction_id,created_at,tx_fraud,tx_fraud_scenario");
        foreach (var l in store.Labels)
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{l.OrderId},{l.TransactionId},{Formats.Time(l.CreatedAt)},{l.Fraud},{l.Scenario}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {store.Labels.Count} labels to {path}"));
    }
}
