using Hangfire.Dashboard;
using PluginApp.Operations;

namespace PluginApp.Jobs;

/// <summary>
/// The jobs dashboard is for operators, not merchants: it asks for the operators' token (<see cref="OperatorToken"/>, the
/// same check as the metrics endpoint) and refuses everyone when none is configured.
/// </summary>
public sealed class OperatorDashboardAuthorization(string? token) : IDashboardAuthorizationFilter
{
    public bool Authorize(DashboardContext context) => OperatorToken.Authorize(context.GetHttpContext(), token);
}
