using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Npgsql;

namespace PluginApp.Install;

/// <summary>The Data Protection key ring in PostgreSQL, so every app instance decrypts what another encrypted.</summary>
public sealed class PostgresXmlRepository(NpgsqlDataSource dataSource) : IXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var cmd = dataSource.CreateCommand("SELECT xml FROM data_protection_keys ORDER BY id");
        using var reader = cmd.ExecuteReader();
        var list = new List<XElement>();
        while (reader.Read()) list.Add(XElement.Parse(reader.GetString(0)));
        return list;
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var cmd = dataSource.CreateCommand(
            "INSERT INTO data_protection_keys (friendly_name, xml) VALUES ($1, $2) ON CONFLICT (friendly_name) DO NOTHING");
        cmd.Parameters.AddWithValue(friendlyName);
        cmd.Parameters.AddWithValue(element.ToString(SaveOptions.DisableFormatting));
        cmd.ExecuteNonQuery();
    }
}
