using System.Net;
using System.Net.Sockets;

namespace PluginApp.Tests.Infrastructure;

/// <summary>
/// A TCP relay in front of PostgreSQL, so a test can take the database away from the app (connections cut, new ones
/// refused) and give it back, the way a failover or a network partition looks to the app.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = [];
    private TcpListener? _listener;

    public int Port { get; }

    public TcpProxy(int targetPort)
    {
        _target = new IPEndPoint(IPAddress.Loopback, targetPort);
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Up();
    }

    /// <summary>Accepts connections again.</summary>
    public void Up()
    {
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        var listener = _listener;
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await listener.AcceptTcpClientAsync(_stop.Token); }
                catch (Exception e) when (e is ObjectDisposedException or SocketException or OperationCanceledException) { return; }
                _ = RelayAsync(client);
            }
        });
    }

    /// <summary>Cuts every open connection and refuses new ones.</summary>
    public void Down()
    {
        _listener?.Stop();
        lock (_open)
        {
            foreach (var c in _open) c.Dispose();
            _open.Clear();
        }
    }

    public string ConnectionString(string original) =>
        new Npgsql.NpgsqlConnectionStringBuilder(original) { Port = Port, Timeout = 3, CommandTimeout = 5 }.ConnectionString;

    private async Task RelayAsync(TcpClient client)
    {
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(_target);
            lock (_open) { _open.Add(client); _open.Add(server); }
            await using var a = client.GetStream();
            await using var b = server.GetStream();
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException) { }
        finally { client.Dispose(); }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        Down();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}
