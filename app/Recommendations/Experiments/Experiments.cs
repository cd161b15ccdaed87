using PluginApp.Experiments;

namespace PluginApp.Recommendations;

/// <summary>
/// The upsell holdout, declared to the experiments mechanism: the holdout arm gets store bestsellers under the same rules,
/// so the model's lift can be measured. Stopped, everyone gets the model.
/// </summary>
public static class UpsellExperiment
{
    public const string Key = "upsells";
    public const string ModelArm = "model";
    public const string HoldoutArm = "holdout";

    /// <summary>Arms in bucket order: holdout first, so a unit's arm is the one the earlier fixed 10 % holdout gave it.</summary>
    public static readonly ExperimentKind Kind = new(Key, "Upsell recommendations", "Do the model's recommendations earn more than store bestsellers?",
        HoldoutArm, [new ArmShare(HoldoutArm, 0.1, "store bestsellers under the same rules"), new ArmShare(ModelArm, 0.9, "the store's recommender")],
        "revenue", RunsByDefault: true, StoppedArm: ModelArm);

    /// <summary>The key a unit is hashed on: the visitor hash, else the logged-in customer id.</summary>
    public static string? AssignmentKey(string? visitorHash, long? customerId) =>
        visitorHash ?? customerId?.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
