namespace PluginApp.Ml.Common;

/// <summary>Hyperparameter guards that name the offending option.</summary>
internal static class Check
{
    public static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be > 0.");
    }

    public static void NonNegative(int value, string name)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be >= 0.");
    }

    public static void Positive(double value, string name)
    {
        if (!(value > 0) || double.IsInfinity(value)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number > 0.");
    }

    public static void NonNegative(double value, string name)
    {
        if (!(value >= 0) || double.IsInfinity(value)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be a finite number >= 0.");
    }

    public static void InRange(double value, double min, double max, string name)
    {
        if (!(value >= min && value <= max)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [{min}, {max}].");
    }

    public static void InRange(int value, int min, int max, string name)
    {
        if (value < min || value > max) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [{min}, {max}].");
    }
}
