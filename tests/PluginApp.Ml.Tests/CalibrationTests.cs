using PluginApp.Ml.Calibration;

namespace PluginApp.Ml.Tests;

public class CalibrationTests
{
    [Fact]
    public void Isotonic_Violators_PooledIntoMonotoneMap()
    {
        var sut = IsotonicCalibrator.Fit([1, 2, 3, 4], [false, true, false, true]);

        Assert.Equal(0.0, sut.Calibrate(1), 12);
        Assert.Equal(0.5, sut.Calibrate(2.5), 12);
        Assert.Equal(1.0, sut.Calibrate(4), 12);
        Assert.True(sut.Calibrate(3.5) >= sut.Calibrate(2.2));
    }

    [Fact]
    public void Platt_SeparableScores_IncreasingProbabilities()
    {
        double[] s = [-3, -2, -1, -0.5, 0.5, 1, 2, 3];
        bool[] y = [false, false, false, true, false, true, true, true];

        var sut = PlattCalibrator.Fit(s, y);

        Assert.True(sut.Calibrate(2) > 0.7);
        Assert.True(sut.Calibrate(-2) < 0.3);
        Assert.True(sut.A < 0);
    }

    [Fact]
    public void Calibrators_SaveLoad_RoundTrip()
    {
        var iso = IsotonicCalibrator.Fit([1, 2, 3], [false, true, true]);
        var platt = PlattCalibrator.Fit([1, 2, 3], [false, true, true]);
        using var a = new MemoryStream();
        using var b = new MemoryStream();
        iso.Save(a);
        platt.Save(b);
        a.Position = b.Position = 0;

        var sut = IsotonicCalibrator.Load(a);
        var sut2 = PlattCalibrator.Load(b);

        Assert.Equal(iso.Calibrate(1.7), sut.Calibrate(1.7));
        Assert.Equal(platt.Calibrate(1.7), sut2.Calibrate(1.7));
    }
}
