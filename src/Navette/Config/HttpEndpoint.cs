using System.Net;

namespace Navette.Config;

/// <summary>The address the daemon's HTTP endpoint listens on: an IP address (or localhost) and a port.</summary>
internal sealed record HttpEndpoint(IPAddress Address, int Port)
{
    /// <summary>Shorter tokens are refused: a token is the only thing between the network and the endpoint.</summary>
    public const int MinTokenLength = 16;

    public bool IsLoopback => IPAddress.IsLoopback(Address);

    public override string ToString() =>
        Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{Address}]:{Port}" : $"{Address}:{Port}";

    public static bool TryParse(string text, out HttpEndpoint endpoint, out string problem)
    {
        endpoint = new HttpEndpoint(IPAddress.Loopback, 0);
        problem = "";
        var t = text.Trim();
        var colon = t.LastIndexOf(':');
        if (colon <= 0 || colon == t.Length - 1)
        {
            problem = "expected HOST:PORT";
            return false;
        }

        var host = t[..colon];
        if (!int.TryParse(t[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            problem = $"port '{t[(colon + 1)..]}' must be a number from 1 to 65535";
            return false;
        }

        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        IPAddress? address;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) address = IPAddress.Loopback;
        else if (!IPAddress.TryParse(host, out address))
        {
            problem = $"'{host}' is not an IP address (use 127.0.0.1, ::1, 0.0.0.0 or an address of this machine)";
            return false;
        }

        endpoint = new HttpEndpoint(address, port);
        return true;
    }
}
