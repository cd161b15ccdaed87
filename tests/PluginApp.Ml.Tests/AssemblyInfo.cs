using System.Globalization;

// Tests compare numbers formatted in messages; pin the culture so a developer machine's locale cannot change them.
[assembly: PluginApp.Ml.Tests.InvariantCulture]

namespace PluginApp.Ml.Tests;

[AttributeUsage(AttributeTargets.Assembly)]
internal sealed class InvariantCultureAttribute : Xunit.Sdk.BeforeAfterTestAttribute
{
    public override void Before(System.Reflection.MethodInfo methodUnderTest)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentUICulture = CultureInfo.InvariantCulture;
    }
}
