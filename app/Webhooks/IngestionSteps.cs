using PluginApp.StoreData;

namespace PluginApp.Webhooks;

/// <summary>Where and when a delivery is being stored; what a step may need besides the rows.</summary>
public sealed record IngestionContext(string Shop, string Topic, string DeliveryId, DateTimeOffset Now);

/// <summary>
/// A feature's part in storing a webhook delivery: after the topic's rows (e.g. <see cref="OrderRows"/> for every orders/*
/// topic), the step adds its own statements to the same batch, so they commit with the delivery or not at all, and a
/// duplicate delivery runs no step twice. A step that writes for nearly every delivery gives its row to a statement for
/// the whole segment of deliveries (<see cref="StoreWriter.AddToSegment"/>), not a statement of its own. A step must not do
/// I/O of its own; work that takes longer (scoring, a Shopify call) is queued by a statement and done by a job.
/// </summary>
internal sealed record IngestionStep(string Name, Type Rows, Action<StoreWriter, object, IngestionContext> Add);

internal static class IngestionStepExtensions
{
    /// <summary>Runs <paramref name="add"/> for every normalized delivery whose topic's rows are <typeparamref name="TRows"/>.</summary>
    public static IServiceCollection AddIngestionStep<TRows>(this IServiceCollection services, string name,
        Action<StoreWriter, TRows, IngestionContext> add) where TRows : class =>
        services.AddSingleton(new IngestionStep(name, typeof(TRows), (store, rows, context) => add(store, (TRows)rows, context)));
}
