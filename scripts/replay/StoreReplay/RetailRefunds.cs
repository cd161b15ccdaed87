using System.Globalization;

namespace StoreReplay;

/// <summary>
/// Cancelled invoices ("C...") as refunds: each cancelled line refunds the most recent earlier order of the
/// same customer that still has refundable units of that StockCode; a line with no such order is skipped.
/// </summary>
internal static class RetailRefunds
{
    public const long RefundIdBase = 8_000_000_000;

    public static List<ReplayRefund> Build(List<RetailRow> rows, List<ReplayOrder> orders, Dictionary<long, int> firstRowOfOrder)
    {
        var candidates = new Dictionary<(long Customer, string Sku), List<(ReplayOrder Order, ReplayLine Line)>>();
        foreach (var order in orders.Where(o => o.Customer is not null).OrderBy(o => firstRowOfOrder[o.Id]))
            foreach (var line in order.Lines)
            {
                var key = (order.Customer!.Id, line.Product.Sku);
                if (!candidates.TryGetValue(key, out var list)) candidates[key] = list = [];
                list.Add((order, line));
            }

        var refundable = orders.SelectMany(o => o.Lines).ToDictionary(l => l.Id, l => l.Quantity);
        var refunds = new List<ReplayRefund>();
        var open = new Dictionary<(string Invoice, long Order), ReplayRefund>();
        var perInvoice = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var row in rows.Where(r => r.IsCancellation && r.Quantity < 0 && r.CustomerId is not null))
        {
            if (!candidates.TryGetValue((row.CustomerId!.Value, row.StockCode), out var list)) continue;
            var match = list.LastOrDefault(c => firstRowOfOrder[c.Order.Id] < row.Index && refundable[c.Line.Id] > 0);
            if (match.Order is null) continue;
            var quantity = Math.Min(-row.Quantity, refundable[match.Line.Id]);
            refundable[match.Line.Id] -= quantity;

            if (!open.TryGetValue((row.Invoice, match.Order.Id), out var refund))
            {
                var k = perInvoice[row.Invoice] = perInvoice.GetValueOrDefault(row.Invoice) + 1;
                var id = RefundIdBase + long.Parse(row.Invoice.AsSpan(1), CultureInfo.InvariantCulture) * 1000 + (k - 1);
                refund = new ReplayRefund(id, match.Order, row.Date, $"Cancelled invoice {row.Invoice}", []);
                open[(row.Invoice, match.Order.Id)] = refund;
                refunds.Add(refund);
            }
            refund.Lines.Add(new ReplayRefundLine(refund.Id * 10_000 + refund.Lines.Count, match.Line, quantity));
        }
        return refunds.OrderBy(r => r.CreatedAt).ToList();
    }
}
