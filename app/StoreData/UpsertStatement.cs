using Npgsql;
using NpgsqlTypes;
using PluginApp.Data;

namespace PluginApp.StoreData;

/// <summary>
/// One idempotent upsert, written once per table: INSERT ... SELECT $1..$n [guard] ON CONFLICT (keys)
/// DO UPDATE ... [where]. Webhooks and the backfill both write through these, so a row that arrives
/// twice, or late, is written once and never goes back in time.
/// </summary>
internal sealed class UpsertStatement
{
    private readonly string _sql;
    private readonly int _columnCount;
    private readonly string _table;
    private readonly string[] _columns;
    private readonly string _onConflict;
    private readonly string _changed;
    private readonly bool _conditional;
    private readonly string[]? _erasable;
    private readonly string? _erasedIf;
    private readonly string? _erasedAt;
    private readonly string[] _written;
    private readonly bool _guarded;

    /// <param name="keep">Columns whose stored value stays when the incoming one is null (e.g. a cost the payload lacks).</param>
    /// <param name="sets">Columns updated by an expression of their own (over excluded and the table's stored row).</param>
    /// <param name="guard">A WHERE on the SELECT, with parameters numbered after the columns; null = always insert.</param>
    /// <param name="newerOnly">Update only when the stored row's updated_at is not newer than the incoming one.</param>
    /// <param name="erasable">Columns written as null when <paramref name="erasedIf"/> holds for the incoming row r: a
    /// retried or late payload may still carry the personal data a customers/redact erased. Checked in the form for many
    /// rows (<see cref="ForRows"/>), which <see cref="AddTo"/> uses for such a table too; the backfill's set-based merge
    /// checks it itself.</param>
    /// <param name="erasedIf">A condition on the incoming row r (its columns by name): the row's data was erased.</param>
    /// <param name="erasedAt">A column the row's erasure time goes in when <paramref name="erasedIf"/> holds (its first time
    /// stays): not among <paramref name="columns"/>, which the callers' values fill; in <see cref="Columns"/>, which a
    /// set-based SELECT yields. Code that reads only that mark (training, Stripe's metadata) then knows the row was erased:
    /// until 6 Dec 2026 an order stored blank after its erasure carried none.</param>
    public UpsertStatement(string table, string[] keys, string[] columns, string[]? keep = null, string? guard = null,
        bool newerOnly = false, string? extraWhere = null, string[]? erasable = null, string? erasedIf = null, string? erasedAt = null,
        IReadOnlyDictionary<string, string>? sets = null)
    {
        if ((erasable is null) != (erasedIf is null)) throw new ArgumentException("erasable columns need the condition that erases them", nameof(erasedIf));
        if (erasedAt is not null && erasable is null) throw new ArgumentException("an erasure time needs the condition that erases the row", nameof(erasedAt));
        _columnCount = columns.Length;
        // Why the casts: in INSERT ... SELECT a null parameter has no type and would default to text.
        var values = string.Join(", ", columns.Select((c, i) => $"${i + 1}::{SqlType(c)}"));
        string Updated(string c) => sets?.GetValueOrDefault(c) ?? (keep?.Contains(c) == true ? $"COALESCE(excluded.{c}, {table}.{c})" : $"excluded.{c}");
        var assignments = columns.Where(c => !keys.Contains(c)).Select(c => $"{c} = {Updated(c)}").ToList();
        if (erasedAt is not null) assignments.Add($"{erasedAt} = COALESCE({table}.{erasedAt}, excluded.{erasedAt})");
        var conditions = new List<string>();
        if (newerOnly)
            conditions.Add($"({table}.updated_at IS NULL OR excluded.updated_at IS NULL OR {table}.updated_at <= excluded.updated_at)");
        if (extraWhere is not null) conditions.Add(extraWhere);
        _table = table;
        _conditional = conditions.Count > 0;
        _columns = columns;
        _erasable = erasable;
        _erasedIf = erasedIf;
        _erasedAt = erasedAt;
        _written = erasedAt is null ? columns : [.. columns, erasedAt];
        _guarded = guard is not null;
        _onConflict = $" ON CONFLICT ({string.Join(", ", keys)}) DO UPDATE SET {string.Join(", ", assignments)}"
             + (conditions.Count == 0 ? "" : " WHERE " + string.Join(" AND ", conditions));
        var updated = _written.Where(c => !keys.Contains(c)).ToArray();
        _changed = $"({string.Join(", ", updated.Select(c => $"{table}.{c}"))}) IS DISTINCT FROM ("
             + string.Join(", ", updated.Select(c => c == erasedAt ? $"COALESCE({table}.{c}, excluded.{c})" : Updated(c))) + ")";
        _sql = $"INSERT INTO {table} ({string.Join(", ", columns)}) SELECT {values}"
             + (guard is null ? "" : $" WHERE {guard}")
             + _onConflict;
    }

    private RowsStatement? _rows;

    /// <summary>
    /// The same upsert for several rows at once, each column's values as one array (the rows as <see cref="AddTo"/> takes
    /// them, each key at most once): <see cref="SetBased"/> over the arrays, erasure included. No guard: only for tables
    /// written without one.
    /// </summary>
    public NpgsqlBatchCommand ForRows(IReadOnlyList<object?[]> rows)
    {
        if (_guarded) throw new InvalidOperationException($"The upsert of {_table} has a guard, which its form for many rows does not apply.");
        _rows ??= new RowsStatement("r", Typed(_columns), SetBased($$"""
            SELECT {{string.Join(", ", _columns.Select(c => _erasable?.Contains(c) == true ? $"CASE WHEN erased.yes THEN NULL ELSE r.{c} END" : $"r.{c}"))}}{{(_erasedAt is null ? "" : ", CASE WHEN erased.yes THEN now() END")}}
            FROM {rows}
            """ + (_erasable is null ? "" : $" CROSS JOIN LATERAL (SELECT ({_erasedIf}) AS yes) erased")).Sql);
        return _rows.Command(rows);
    }

    /// <summary>Columns as <see cref="RowsStatement"/> takes them ("name type"), each typed by its name (<see cref="SqlType"/>).</summary>
    internal static IEnumerable<string> Typed(IEnumerable<string> columns) => columns.Select(c => $"{c} {SqlType(c)}");

    /// <summary>The table's columns in the order <see cref="SetBased"/> expects them from its SELECT (the erasure time last).</summary>
    public IReadOnlyList<string> Columns => _written;

    /// <summary>
    /// The same upsert, set-based: every row of <paramref name="select"/> (which yields <see cref="Columns"/> in order, each key
    /// once) is written under the same rules (newer only, kept columns, extra condition). Why the extra condition: a row whose
    /// values would not change is not rewritten, so re-importing the same data writes nothing. Its form for a table that holds
    /// none of the rows is the plain INSERT (<see cref="MergeStatement.IntoEmpty"/>).
    /// </summary>
    public MergeStatement SetBased(string select)
    {
        var insert = $"INSERT INTO {_table} ({string.Join(", ", _written)}) {select}";
        return new(insert + $"{_onConflict}{(_conditional ? " AND " : " WHERE ")}{_changed}", insert);
    }

    /// <summary>Column types follow from our naming: ids, times, money and counts are named alike in every table.</summary>
    private static string SqlType(string column) => column switch
    {
        "id" or "shop_id" or "order_id" or "product_id" or "variant_id" or "customer_id" or "refund_id"
            or "line_item_id" or "inventory_item_id" => "int8",
        "quantity" or "inventory_quantity" => "int4",
        "test" or "accepts_marketing" or "published" or "inventory_tracked" or "taxes_included" => "bool",
        "price" or "amount" or "subtotal" or "unit_cost" or "compare_at_price" or "total_discount" => "numeric",
        _ when column.StartsWith("total_", StringComparison.Ordinal) || column.EndsWith("_price", StringComparison.Ordinal) => "numeric",
        _ when column.EndsWith("_at", StringComparison.Ordinal) => "timestamptz",
        _ => "text",
    };

    public void AddTo(NpgsqlBatch batch, object?[] values, params object?[] guardValues)
    {
        if (values.Length != _columnCount)
            throw new ArgumentException($"expected {_columnCount} values, got {values.Length}", nameof(values));
        // Why the form for many rows: it is the one place the erasure check is written.
        if (_erasable is not null)
        {
            if (guardValues.Length > 0) throw new ArgumentException($"the upsert of {_table} has no guard", nameof(guardValues));
            batch.BatchCommands.Add(ForRows([values]));
            return;
        }
        var cmd = new NpgsqlBatchCommand(_sql);
        foreach (var v in values) cmd.Parameters.Add(Sql.Param(v));
        foreach (var v in guardValues) cmd.Parameters.Add(Sql.Param(v));
        batch.BatchCommands.Add(cmd);
    }
}
