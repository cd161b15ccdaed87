using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Npgsql;

namespace PluginApp.Install.KeyRing;

/// <summary>
/// The Data Protection key ring in PostgreSQL, so every app instance decrypts what another encrypted. Each key's secret
/// is stored encrypted with the operator's certificate (KeyRingOptions); deletable so that retired keys can be removed.
/// </summary>
public sealed class PostgresXmlRepository(NpgsqlDataSource dataSource) : IDeletableXmlRepository
{
    public IReadOnlyCollection<XElement> GetAllElements() => Rows().Select(r => r.Element).ToList();

    public void StoreElement(XElement element, string friendlyName)
    {
        using var cmd = dataSource.CreateCommand(
            "INSERT INTO data_protection_keys (friendly_name, xml) VALUES ($1, $2) ON CONFLICT (friendly_name) DO NOTHING");
        cmd.Parameters.AddWithValue(friendlyName);
        cmd.Parameters.AddWithValue(element.ToString(SaveOptions.DisableFormatting));
        cmd.ExecuteNonQuery();
    }

    public bool DeleteElements(Action<IReadOnlyCollection<IDeletableElement>> chooseElements)
    {
        var rows = Rows().Select(r => new Deletable(r.Id, r.Element)).ToList();
        chooseElements(rows);
        using var conn = dataSource.OpenConnection();
        using var tx = conn.BeginTransaction();
        foreach (var row in rows.Where(r => r.DeletionOrder is not null).OrderBy(r => r.DeletionOrder))
        {
            using var cmd = new NpgsqlCommand("DELETE FROM data_protection_keys WHERE id = $1", conn, tx);
            cmd.Parameters.AddWithValue(row.Id);
            cmd.ExecuteNonQuery();
        }
        tx.Commit();
        return true;
    }

    /// <summary>Deletes these keys and the revocations that name them (keys first: a half-done deletion never un-revokes a key).</summary>
    /// <returns>How many keys were deleted.</returns>
    public int DeleteKeys(IReadOnlySet<Guid> keyIds)
    {
        var deleted = 0;
        DeleteElements(elements =>
        {
            foreach (var e in elements)
            {
                var id = e.Element.Name.LocalName switch
                {
                    "key" => (string?)e.Element.Attribute("id"),
                    "revocation" => (string?)e.Element.Element("key")?.Attribute("id"),
                    _ => null,
                };
                if (!Guid.TryParse(id, out var keyId) || !keyIds.Contains(keyId)) continue;
                e.DeletionOrder = e.Element.Name.LocalName == "key" ? 1 : 2;
                if (e.DeletionOrder == 1) deleted++;
            }
        });
        return deleted;
    }

    private List<(int Id, XElement Element)> Rows()
    {
        using var cmd = dataSource.CreateCommand("SELECT id, xml FROM data_protection_keys ORDER BY id");
        using var reader = cmd.ExecuteReader();
        var list = new List<(int, XElement)>();
        while (reader.Read()) list.Add((reader.GetInt32(0), XElement.Parse(reader.GetString(1))));
        return list;
    }

    private sealed class Deletable(int id, XElement element) : IDeletableElement
    {
        public int Id { get; } = id;
        public XElement Element { get; } = element;
        public int? DeletionOrder { get; set; }
    }
}
