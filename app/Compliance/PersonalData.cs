namespace PluginApp.Compliance;

/// <summary>Conditions the erasure and the export share.</summary>
public static class PersonalDataSql
{
    /// <summary>
    /// A guest's row of hers found by her email ($4), for a table with <c>email</c> and <c>customer_id</c> (optionally under
    /// an alias, "o."): only a row no customer account owns. Why: another customer's order or checkout that carries her
    /// address (an edit, an address handed on) is that customer's, and until 6 Dec 2026 it was exported and erased with hers.
    /// </summary>
    public static string GuestByEmail(string alias = "") =>
        $"($4::text IS NOT NULL AND lower({alias}email) = lower($4::text) AND {alias}customer_id IS NULL)";
}

/// <summary>
/// A table that holds a customer's personal data, declared by the feature that owns it. customers/redact runs every
/// declared <see cref="Erase"/>, customers/data_request gathers every <see cref="Export"/>, and a test fails when a table
/// with a customer, email, phone, name, note, address or IP column is declared nowhere.
/// </summary>
/// <param name="Columns">The personal columns; each is erased (or its rows deleted) by <see cref="Erase"/>.</param>
/// <param name="NotErased">Instead of <paramref name="Erase"/>, for a table with no personal column that the export still
/// owes her (what we decided about her orders): why its rows stay after her erasure.</param>
/// <param name="Erase">
/// Erases one customer's personal data. Parameters: $1 shop id, $2 customer id, $3 the order ids Shopify listed, $4 the
/// customer's email (may be null), $5 now. The temporary table <c>redaction_orders(id, cart_token, checkout_token)</c>
/// holds every order of the customer (by id, by listing, or a guest order by email), <c>redaction_visitors(visitor_hash)</c>
/// every storefront visitor id tied to her (<see cref="VisitorLink"/>), and <c>redaction_carts(cart_token)</c> every cart
/// (<see cref="CartLink"/>), all found before anything is erased.
/// </param>
/// <param name="Export">One jsonb value with what we hold on the customer, same parameters but $5, same temporary table.</param>
/// <param name="ExportAs">The key of that value in the export (default: the table's name).</param>
/// <param name="NotExported">Instead of <paramref name="Export"/>: why the export leaves the table out (e.g. a short-lived copy
/// of rows the export holds). A table must have one or the other: until 4 Dec seven tables the erasure covered were missing
/// from the export, which the merchant is told holds everything the app keeps on the customer.</param>
public sealed record PersonalDataTable(string Table, string[] Columns, string? Erase, string? Export = null, string? ExportAs = null,
    string? NotExported = null, string? NotErased = null);

/// <summary>
/// Where a feature's rows tie a storefront visitor id (a salted hash) to a customer: customers/redact and data requests
/// cover every row of those visitors, not only the rows that name her. Parameters: $1 shop id, $2 customer id; the
/// temporary table <c>redaction_orders</c> is there. Gives one column of visitor hashes (nulls are dropped). The orders'
/// own visitor (the cart attribute our blocks set, <c>orders.visitor_hash</c>) is always included: it is a guest's only tie.
/// </summary>
/// <param name="ByCarts">Where the feature's rows tie a visitor id to one of her carts, read once the carts are found (the
/// temporary table <c>redaction_carts</c> is there too; same parameters): a guest's cart found through her checkout, by her
/// email, leads to the visitor ids her answers on it were given. Null: none.</param>
public sealed record VisitorLink(string Feature, string Sql, string? ByCarts = null);

/// <summary>
/// Where a feature's rows tie a cart to a customer (a cart has no customer of its own): customers/redact and data requests
/// cover the cart's rows and every delivery about it. Parameters as <see cref="PersonalDataTable.Export"/> ($1 shop id, $2
/// customer id, $3 the order ids Shopify listed, $4 her email); the temporary tables <c>redaction_orders</c> and
/// <c>redaction_visitors</c> are there. Gives one column of cart tokens (nulls are dropped). Her orders' own carts are always
/// included. The tokens are found once, into <c>redaction_carts(cart_token)</c>, before anything is erased.
/// </summary>
public sealed record CartLink(string Feature, string Sql);

/// <summary>A column that looks personal by its name but is not, with the reason (so the walk over the schema can tell).</summary>
public sealed record NotPersonalColumn(string Table, string Column, string Why);

/// <summary>Rows kept only for a stated time, deleted by the daily retention job. $1 is the cutoff (now minus Keep).</summary>
public sealed record RetentionRule(string Name, TimeSpan Keep, string Delete);

public static class PersonalDataExtensions
{
    public static IServiceCollection AddPersonalData(this IServiceCollection services, PersonalDataTable table) => services.AddSingleton(table);

    public static IServiceCollection AddVisitorLink(this IServiceCollection services, VisitorLink link) => services.AddSingleton(link);

    public static IServiceCollection AddCartLink(this IServiceCollection services, CartLink link) => services.AddSingleton(link);

    public static IServiceCollection AddNotPersonal(this IServiceCollection services, string table, string column, string why) =>
        services.AddSingleton(new NotPersonalColumn(table, column, why));

    public static IServiceCollection AddRetention(this IServiceCollection services, RetentionRule rule) => services.AddSingleton(rule);
}

/// <summary>Every declaration, in registration order.</summary>
public sealed class PersonalDataCatalog(IEnumerable<PersonalDataTable> tables, IEnumerable<NotPersonalColumn> notPersonal, IEnumerable<RetentionRule> retention,
    IEnumerable<VisitorLink> visitorLinks, IEnumerable<CartLink> cartLinks)
{
    public IReadOnlyList<PersonalDataTable> Tables { get; } = Checked(tables.ToList());

    private static List<PersonalDataTable> Checked(List<PersonalDataTable> tables) =>
        tables.FirstOrDefault(t => (t.Export is null) == (t.NotExported is null)) is { } wrong
            ? throw new InvalidOperationException($"personal data of {wrong.Table}: give either an export or why it is not exported, not {(wrong.Export is null ? "neither" : "both")}")
            : tables.FirstOrDefault(t => (t.Erase is null) == (t.NotErased is null) || (t.Erase is null && t.Columns.Length > 0)) is { } kept
            ? throw new InvalidOperationException($"personal data of {kept.Table}: give either its erasure or why its rows stay (only with no personal column)")
            : tables;
    public IReadOnlyList<NotPersonalColumn> NotPersonal { get; } = notPersonal.ToList();
    public IReadOnlyList<RetentionRule> Retention { get; } = retention.ToList();
    public IReadOnlyList<VisitorLink> VisitorLinks { get; } = visitorLinks.ToList();
    public IReadOnlyList<CartLink> CartLinks { get; } = cartLinks.ToList();
}
