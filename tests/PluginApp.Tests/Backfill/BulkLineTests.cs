using System.Text;
using System.Text.Json;
using PluginApp.Backfill;
using PluginApp.StoreData;

namespace PluginApp.Tests.Backfill;

/// <summary>
/// The staging reads each line's parent as PostgreSQL read it from the line's jsonb before (bulk_id(body ->> '__parentId')):
/// the top-level member, the last of that name, wherever it stands and however the JSON is spaced or escaped.
/// </summary>
public sealed class BulkLineTests
{
    [Theory]
    // As Shopify writes a child: the parent last.
    [InlineData("""{"id":"gid://shopify/LineItem/11","quantity":2,"__parentId":"gid://shopify/Order/700"}""", 700L)]
    [InlineData("""{"id":"gid://shopify/ProductVariant/5","__parentId":"gid://shopify/Product/42?v=1"}  """, 42L)]
    // Elsewhere in the line, spaced, escaped, or named twice (the last stands, as in jsonb).
    [InlineData("""{"__parentId":"gid://shopify/Order/701","id":"gid://shopify/LineItem/12"}""", 701L)]
    [InlineData("""{ "id" : "gid://shopify/LineItem/13", "__parentId" : "gid://shopify/Order/702" }""", 702L)]
    [InlineData("""{"id":"gid://shopify/LineItem/14","__parentId":"gid:\/\/shopify\/Order\/703"}""", 703L)]
    [InlineData("""{"__parentId":"gid://shopify/Order/1","id":"x","__parentId":"gid://shopify/Order/704"}""", 704L)]
    // Parents: no member of that name at the top level, a null one, or the name only inside values.
    [InlineData("""{"id":"gid://shopify/Order/705","name":"#1001"}""", null)]
    [InlineData("""{"id":"gid://shopify/Order/706","__parentId":null}""", null)]
    [InlineData("""{"id":"gid://shopify/Order/707","note":"see \"__parentId\":\"gid://shopify/Order/1\""}""", null)]
    [InlineData("""{"id":"gid://shopify/Order/708","customAttributes":{"__parentId":"gid://shopify/Order/2"}}""", null)]
    public void ParentId_IsTheTopLevelMember(string line, long? parent) =>
        Assert.Equal(parent, BulkLine.ParentId(Encoding.UTF8.GetBytes(line)));

    [Fact]
    public void ParentId_ThatIsNoShopifyId_FailsTheLine()
    {
        Assert.Throws<MalformedPayloadException>(() => BulkLine.ParentId("""{"id":"a","__parentId":"Order 12"}"""u8));
        Assert.Throws<MalformedPayloadException>(() => BulkLine.ParentId("""{"id":"a","__parentId":12}"""u8));
        Assert.ThrowsAny<JsonException>(() => BulkLine.ParentId("""{"id":"a","__parentId":"gid://shopify/Order/1" """u8));
    }

    [Theory]
    [InlineData("""{"title":"Mug","quantity":1}""")] // no id
    [InlineData("""{"id":null,"quantity":1}""")]
    [InlineData("""{"id":"LineItem 5","quantity":1}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","quantity":2.5}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","quantity":"two"}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","quantity":3000000000}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","product":"gid://shopify/Product/1"}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","variant":{"id":7}}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","title":{"en":"Mug"}}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","originalUnitPriceSet":{"shopMoney":{"amount":["2.55"]}}}""")]
    [InlineData("""{"id":"gid://shopify/LineItem/5","title":"\ud800"}""")] // a lone surrogate: no text PostgreSQL can hold
    [InlineData("""["gid://shopify/LineItem/5"]""")]
    public void LineItem_WhoseValueCannotBeItsColumns_FailsTheLine(string line) =>
        Assert.Throws<MalformedPayloadException>(() => new BulkLineItem().Read(Encoding.UTF8.GetBytes(line)));

    [Fact]
    public void LineItem_ThatIsNotJson_FailsTheLine() =>
        Assert.ThrowsAny<JsonException>(() => new BulkLineItem().Read("""{"id":"gid://shopify/LineItem/5","title":"Mug" """u8));

    [Fact]
    public void LineItem_ReadAfterAnother_KeepsNothingOfIt()
    {
        var item = new BulkLineItem();
        item.Read("""{"id":"gid://shopify/LineItem/1","title":"A longer title","sku":"S-1","quantity":4,"product":{"id":"gid://shopify/Product/2"}}"""u8);
        item.Read("""{"id":"gid://shopify/LineItem/3","title":"B"}"""u8);
        Assert.Equal((3L, null, null, "B", true), (item.Id, item.ProductId, item.Quantity, Encoding.UTF8.GetString(item.Text(item.Title)), item.Sku.IsNull));
    }
}
