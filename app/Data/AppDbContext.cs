using System.Text;
using Microsoft.EntityFrameworkCore;
using PluginApp.StoreData;

namespace PluginApp.Data;

/// <summary>The shop a unit of work acts for. Set once per request or job; 0 means none and sees no rows.</summary>
public sealed class ShopScope
{
    public long ShopId { get; private set; }
    public string Domain { get; private set; } = "";

    public void Enter(long shopId, string domain)
    {
        if (ShopId != 0 && ShopId != shopId)
            throw new InvalidOperationException("A unit of work cannot switch shops.");
        ShopId = shopId;
        Domain = domain;
    }
}

public sealed class AppDbContext(DbContextOptions<AppDbContext> options, ShopScope scope) : DbContext(options)
{
    // Why a member the filters read: EF evaluates it per query on this instance, so one model
    // serves every shop, and a context with no shop entered sees nothing rather than everything.
    private long CurrentShopId => scope.ShopId;

    // What EF is for: the admin's shop-filtered reads of store rows. Writes, bulk paths and anything hot use raw SQL (StoreWriter).

    public DbSet<Shop> Shops => Set<Shop>();
    public DbSet<Customer> Customers => Set<Customer>();
    public DbSet<Product> Products => Set<Product>();
    public DbSet<Order> Orders => Set<Order>();
    public DbSet<OrderLine> OrderLines => Set<OrderLine>();
    public DbSet<Refund> Refunds => Set<Refund>();
    public DbSet<WebhookDelivery> WebhookDeliveries => Set<WebhookDelivery>();
    public DbSet<CustomerDataRequest> CustomerDataRequests => Set<CustomerDataRequest>();

    protected override void OnModelCreating(ModelBuilder b)
    {
        b.Entity<Shop>().ToTable("shops").HasKey(x => x.Id);
        b.Entity<WebhookDelivery>().ToTable("webhook_deliveries").HasKey(x => x.Id);
        b.Entity<WebhookDelivery>().Property(x => x.Body).HasColumnType("jsonb");
        b.Entity<WebhookDelivery>().HasQueryFilter(x => x.ShopId == CurrentShopId);

        Owned<Customer>(b, "customers").HasKey(x => new { x.ShopId, x.Id });
        Owned<Product>(b, "products").HasKey(x => new { x.ShopId, x.Id });
        Owned<Order>(b, "orders").HasKey(x => new { x.ShopId, x.Id });
        Owned<OrderLine>(b, "order_lines").HasKey(x => new { x.ShopId, x.Id });
        Owned<Refund>(b, "refunds").HasKey(x => new { x.ShopId, x.Id });
        Owned<CustomerDataRequest>(b, "customer_data_requests").HasKey(x => x.Id);
        b.Entity<CustomerDataRequest>().Property(x => x.Export).HasColumnType("jsonb");

        foreach (var entity in b.Model.GetEntityTypes())
        {
            foreach (var property in entity.GetProperties())
                property.SetColumnName(SnakeCase(property.Name));
            foreach (var key in entity.GetKeys())
                foreach (var p in key.Properties.Where(p => p.ClrType == typeof(long)))
                    p.ValueGenerated = Microsoft.EntityFrameworkCore.Metadata.ValueGenerated.Never;
        }
        b.Entity<Shop>().Property(x => x.Id).ValueGeneratedOnAdd();
        b.Entity<WebhookDelivery>().Property(x => x.Id).ValueGeneratedOnAdd();
        b.Entity<CustomerDataRequest>().Property(x => x.Id).ValueGeneratedOnAdd();
    }

    private Microsoft.EntityFrameworkCore.Metadata.Builders.EntityTypeBuilder<T> Owned<T>(ModelBuilder b, string table)
        where T : class, IShopOwned
    {
        var e = b.Entity<T>();
        e.ToTable(table);
        e.HasQueryFilter(x => x.ShopId == CurrentShopId);
        return e;
    }

    internal static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0) sb.Append('_');
                sb.Append(char.ToLowerInvariant(c));
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
