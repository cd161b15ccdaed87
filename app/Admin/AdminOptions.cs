using Microsoft.Extensions.Options;

namespace PluginApp.Admin;

public sealed class AdminOptions
{
    public const string Section = "Admin";

    /// <summary>Who merchants contact about the app's AI and data (an email address or URL), shown on the disclosure page.</summary>
    public string? Contact { get; set; }
}

public sealed class AdminOptionsValidator : IValidateOptions<AdminOptions>
{
    public ValidateOptionsResult Validate(string? name, AdminOptions o) =>
        o.Contact is { Length: > 200 } ? ValidateOptionsResult.Fail($"Admin:Contact is {o.Contact.Length} characters; at most 200.") : ValidateOptionsResult.Success;
}
