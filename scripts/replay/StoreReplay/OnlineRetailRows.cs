using System.Globalization;

namespace StoreReplay;

/// <summary>One CSV row of Online Retail; Index is its position in the file, ProductIndex its StockCode's first appearance.</summary>
internal sealed record RetailRow(int Index, string Invoice, string StockCode, int ProductIndex, string Description, int Quantity,
    DateTimeOffset Date, decimal Price, long? CustomerId, string Country)
{
    public bool IsCancellation => Invoice.StartsWith('C');
    /// <summary>Sales invoices are all digits; "C..." cancel and "A..." adjust bad debt.</summary>
    public bool IsSaleInvoice => Invoice.Length > 0 && Invoice.All(char.IsAsciiDigit);
}

internal static class OnlineRetailRows
{
    /// <summary>
    /// Reads the slice. StockCodes are numbered by first appearance over every row read, including rows
    /// before the window, so a product keeps its id whichever window of the file is replayed.
    /// </summary>
    public static List<RetailRow> Read(Stream csvOrGzip, OnlineRetailOptions o)
    {
        using var reader = new StreamReader(InputStreams.Decompressing(csvOrGzip));
        var csv = new CsvLines(reader);
        if (!csv.Read() || csv.Record is not { } header || header[0] != "InvoiceNo")
            throw new InvalidDataException("not the Online Retail CSV: the first line must be its header (InvoiceNo,...)");

        var productIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var invoices = new HashSet<string>(StringComparer.Ordinal);
        var rows = new List<RetailRow>();
        var index = -1;
        while (csv.Read())
        {
            var f = csv.Record!;
            index++;
            var stock = f[1].Trim();
            if (!productIndex.TryGetValue(stock, out var k)) productIndex[stock] = k = productIndex.Count;
            var date = Formats.ParseDataTime(f[4]);
            if (o.From is { } from && date < from) continue;
            if (o.To is { } to && date >= to) break; // the file is in date order (PROVENANCE.md)
            if (o.MaxInvoices is { } max && invoices.Add(f[0]) && invoices.Count > max) break;
            long? customer = f[6].Length == 0 ? null : (long)Formats.ParseDecimal(f[6]);
            var price = Math.Round(Formats.ParseDecimal(f[5]), 2, MidpointRounding.AwayFromZero);
            rows.Add(new RetailRow(index, f[0], stock, k, f[2].Trim(), int.Parse(f[3], CultureInfo.InvariantCulture), date + o.Shift, price,
                customer, f[7]));
        }
        return rows;
    }
}
