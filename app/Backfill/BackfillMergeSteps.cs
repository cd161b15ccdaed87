using PluginApp.StoreData;

namespace PluginApp.Backfill;

/// <summary>
/// A feature's part in merging a chunk of a backfill phase, as <see cref="Webhooks.IngestionStep"/> is in storing a
/// delivery: one set-based statement run after the phase's own upserts, in the chunk's transaction, so it commits with the
/// chunk and its cursor or not at all, and a resumed chunk runs it again (it must be idempotent). Like every merge
/// statement it takes $1 the run, $2 the shop, and the chunk's parent lines ($3, $4]; <see cref="StoreMerge.ChunkIds"/>
/// gives their ids.
/// </summary>
public sealed record BackfillMergeStep(string Name, string Phase, string Sql);

public static class BackfillMergeStepExtensions
{
    public static IServiceCollection AddBackfillMergeStep(this IServiceCollection services, string name, string phase, string sql) =>
        StoreMerge.Phases.ContainsKey(phase)
            ? services.AddSingleton(new BackfillMergeStep(name, phase, sql))
            : throw new ArgumentException($"no backfill phase {phase}", nameof(phase));
}
