using System.Text.RegularExpressions;
using Npgsql;
using PluginApp.Compliance;

namespace PluginApp.Tests.Infrastructure;

/// <summary>Walks the live schema for columns whose names say they hold, or point at, a person, and compares them with the catalog.</summary>
public static partial class PersonalDataAudit
{
    [GeneratedRegex("^(email|phone|first_name|last_name|name|title|note|browser_ip|client_ip|ip|address[0-9]?|customer_id|visitor_hash|visitor_id|body|raw_body|export|variables|domain|friendly_name|shop_domain)$")]
    private static partial Regex LooksPersonal();

    /// <summary>Person-looking columns neither declared personal (with their erasure) nor declared not personal.</summary>
    public static async Task<List<(string Table, string Column)>> UndeclaredAsync(NpgsqlDataSource db, PersonalDataCatalog catalog)
    {
        var declared = Declared(catalog).ToHashSet();
        return (await ColumnsAsync(db)).Where(c => LooksPersonal().IsMatch(c.Column) && !declared.Contains(c)).OrderBy(c => c).ToList();
    }

    /// <summary>Declarations that name a column the schema does not have (a rename the catalog missed).</summary>
    public static async Task<List<(string Table, string Column)>> DeclaredButAbsentAsync(NpgsqlDataSource db, PersonalDataCatalog catalog)
    {
        var columns = (await ColumnsAsync(db)).ToHashSet();
        return Declared(catalog).Where(d => !columns.Contains(d)).ToList();
    }

    private static IEnumerable<(string Table, string Column)> Declared(PersonalDataCatalog catalog) =>
        catalog.Tables.SelectMany(t => t.Columns.Select(c => (t.Table, c))).Concat(catalog.NotPersonal.Select(n => (n.Table, n.Column)));

    private static async Task<List<(string Table, string Column)>> ColumnsAsync(NpgsqlDataSource db)
    {
        var columns = new List<(string, string)>();
        await using var cmd = db.CreateCommand("""
            SELECT c.table_name, c.column_name FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
            WHERE c.table_schema = 'public'
              AND NOT EXISTS (SELECT 1 FROM pg_class p WHERE p.relname = c.table_name AND p.relispartition) -- a partition is its parent's
            """);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) columns.Add((r.GetString(0), r.GetString(1)));
        return columns;
    }
}
