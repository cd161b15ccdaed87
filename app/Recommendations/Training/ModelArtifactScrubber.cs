using Npgsql;

namespace PluginApp.Recommendations;

/// <summary>
/// Rewrites recommender artifacts stored in format 1, which kept a factor row per shopper, into format 2, which keeps
/// none. Runs once per start in the background; a rewritten artifact serves exactly the same answers.
/// </summary>
public sealed class ModelArtifactScrubber(NpgsqlDataSource db, ILogger<ModelArtifactScrubber> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        try { await ScrubAsync(ct); }
        catch (Exception e) when (e is NpgsqlException or InvalidDataException)
        {
            logger.LogWarning("Could not rewrite old model artifacts ({Message}); the next start tries again", e.Message);
        }
    }

    /// <returns>How many artifacts were rewritten.</returns>
    public async Task<int> ScrubAsync(CancellationToken ct)
    {
        var ids = new List<long>();
        await using (var cmd = db.CreateCommand("SELECT id FROM models WHERE kind = $1 AND get_byte(artifact, 4) = 1 AND get_byte(artifact, 5) = 0"))
        {
            cmd.Parameters.AddWithValue(RecommenderTrainer.Kind);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) ids.Add(r.GetInt64(0));
        }
        foreach (var id in ids)
        {
            await using var read = db.CreateCommand("SELECT artifact FROM models WHERE id = $1");
            read.Parameters.AddWithValue(id);
            var bytes = (byte[])(await read.ExecuteScalarAsync(ct))!;
            await using var write = db.CreateCommand("UPDATE models SET artifact = $2 WHERE id = $1");
            write.Parameters.AddWithValue(id);
            write.Parameters.AddWithValue(RecommenderBundle.FromBytes(bytes).ToBytes());
            await write.ExecuteNonQueryAsync(ct);
        }
        if (ids.Count > 0) logger.LogInformation("Rewrote {Count} model artifacts without per-shopper rows", ids.Count);
        return ids.Count;
    }
}
