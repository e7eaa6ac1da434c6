using Navette.Config;
using Npgsql;
using Xunit;

namespace Navette.Tests.Config;

public class ConnInfoTests
{
    private static NpgsqlConnectionStringBuilder Convert(string conninfo) => new(ConnInfo.ToNpgsql(conninfo));

    [Fact]
    public void Converts_keyword_value_syntax()
    {
        var b = Convert("host=127.0.0.1 port=5432 dbname=shop user=postgres password=s3cret application_name=navette");
        Assert.Equal("127.0.0.1", b.Host);
        Assert.Equal(5432, b.Port);
        Assert.Equal("shop", b.Database);
        Assert.Equal("postgres", b.Username);
        Assert.Equal("s3cret", b.Password);
        Assert.Equal("navette", b.ApplicationName);
    }

    [Fact]
    public void Keyword_value_syntax_supports_quotes_escapes_and_spaces_around_equals()
    {
        var b = Convert(@"  host = db1   password='it\'s a \\ secret' user=a\ b dbname=''  ");
        Assert.Equal("db1", b.Host);
        Assert.Equal(@"it's a \ secret", b.Password);
        Assert.Equal("a b", b.Username);
        Assert.Null(b.Database); // empty value means "not set", as in libpq
    }

    [Fact]
    public void Later_duplicate_keyword_wins()
    {
        Assert.Equal("b", Convert("host=a host=b").Host);
    }

    [Fact]
    public void Empty_conninfo_gives_defaults()
    {
        Assert.Equal(new NpgsqlConnectionStringBuilder().ConnectionString, ConnInfo.ToNpgsql(""));
    }

    [Fact]
    public void Converts_uri_syntax()
    {
        var b = Convert("postgresql://postgres@127.0.0.1:5433/shop");
        Assert.Equal("127.0.0.1", b.Host);
        Assert.Equal(5433, b.Port);
        Assert.Equal("shop", b.Database);
        Assert.Equal("postgres", b.Username);
        Assert.Null(b.Password);
    }

    [Fact]
    public void Uri_is_percent_decoded_and_takes_query_parameters()
    {
        var b = Convert("postgres://app%20user:p%40ss%2Fw%C3%B6rd@db.example.com/my%20db?sslmode=verify-full&application_name=nav%26ette&connect_timeout=10");
        Assert.Equal("app user", b.Username);
        Assert.Equal("p@ss/wörd", b.Password);
        Assert.Equal("db.example.com", b.Host);
        Assert.Equal("my db", b.Database);
        Assert.Equal(SslMode.VerifyFull, b.SslMode);
        Assert.Equal("nav&ette", b.ApplicationName);
        Assert.Equal(10, b.Timeout);
    }

    [Fact]
    public void Uri_without_host_or_database()
    {
        var b = Convert("postgresql://");
        Assert.Null(b.Host);
        Assert.Null(b.Database);
        Assert.Equal("/var/run/postgresql", Convert("postgresql:///shop?host=/var/run/postgresql").Host);
    }

    [Fact]
    public void Uri_with_ipv6_host()
    {
        var b = Convert("postgresql://[::1]:5433/shop");
        Assert.Equal("::1", b.Host);
        Assert.Equal(5433, b.Port);
    }

    [Fact]
    public void Several_hosts_become_an_npgsql_host_list()
    {
        Assert.Equal("a:5432,b:5433", Convert("postgresql://a:5432,b:5433/shop").Host);
        Assert.Equal("a:5432,b:5433", Convert("host=a,b port=5432,5433").Host);
        Assert.Equal("a:6000,b:6000", Convert("host=a,b port=6000").Host);
        Assert.Equal("a,b", Convert("host=a,b").Host);
    }

    [Fact]
    public void Ssl_true_query_parameter_means_require()
    {
        Assert.Equal(SslMode.Require, Convert("postgresql://h/db?ssl=true").SslMode);
    }

    [Theory]
    [InlineData("disable", SslMode.Disable)]
    [InlineData("allow", SslMode.Allow)]
    [InlineData("prefer", SslMode.Prefer)]
    [InlineData("require", SslMode.Require)]
    [InlineData("verify-ca", SslMode.VerifyCA)]
    [InlineData("verify-full", SslMode.VerifyFull)]
    public void Maps_sslmode(string value, SslMode expected)
    {
        Assert.Equal(expected, Convert($"sslmode={value}").SslMode);
    }

    [Fact]
    public void Maps_the_other_keywords()
    {
        var b = Convert(
            "hostaddr=10.0.0.5 sslrootcert=/ca.pem sslcert=/c.pem sslkey=/k.pem passfile=/pgpass "
            + "connect_timeout=7 options='-c search_path=app' target_session_attrs=read-write keepalives_idle=30");
        Assert.Equal("10.0.0.5", b.Host);
        Assert.Equal("/ca.pem", b.RootCertificate);
        Assert.Equal("/c.pem", b.SslCertificate);
        Assert.Equal("/k.pem", b.SslKey);
        Assert.Equal("/pgpass", b.Passfile);
        Assert.Equal(7, b.Timeout);
        Assert.Equal("-c search_path=app", b.Options);
        Assert.Equal("read-write", b.TargetSessionAttributes);
        Assert.Equal(30, b.KeepAlive);
    }

    [Fact]
    public void Hostaddr_wins_over_host()
    {
        Assert.Equal("10.0.0.5", Convert("host=db.example.com hostaddr=10.0.0.5").Host);
    }

    [Fact]
    public void Connect_timeout_zero_or_negative_waits_forever()
    {
        Assert.Equal(0, Convert("connect_timeout=0").Timeout);
        Assert.Equal(0, Convert("connect_timeout=-3").Timeout);
    }

    [Fact]
    public void Fallback_application_name_is_used_only_without_application_name()
    {
        Assert.Equal("fb", Convert("fallback_application_name=fb").ApplicationName);
        Assert.Equal("app", Convert("fallback_application_name=fb application_name=app").ApplicationName);
    }

    [Theory]
    [InlineData("host=a bogus=1", "unknown conninfo keyword 'bogus'")]
    [InlineData("postgresql://h/db?bogus=1", "unknown conninfo keyword 'bogus'")]
    [InlineData("service=prod", "conninfo keyword 'service' is not supported by navette")]
    [InlineData("port=abc", "invalid port 'abc'; expected a number from 1 to 65535")]
    [InlineData("port=70000", "invalid port '70000'; expected a number from 1 to 65535")]
    [InlineData("postgresql://h:abc/db", "invalid port 'abc'; expected a number from 1 to 65535")]
    [InlineData("sslmode=maybe", "invalid sslmode 'maybe'; expected disable, allow, prefer, require, verify-ca, verify-full")]
    [InlineData("target_session_attrs=writable", "invalid target_session_attrs 'writable'; expected any, read-write, read-only, primary, standby, prefer-standby")]
    [InlineData("connect_timeout=5000", "invalid connect_timeout '5000'; expected a number of seconds, at most 1024")]
    [InlineData("host", "missing '=' after 'host' in conninfo")]
    [InlineData("host=a b", "missing '=' after the word at position 8 in conninfo (expected keyword=value)")]
    [InlineData("=x", "missing keyword before '=' at position 1 in conninfo")]
    [InlineData("host='abc", "unterminated quoted value for 'host' in conninfo")]
    [InlineData("host=a,b,c port=1,2", "could not match 2 port numbers to 3 hosts")]
    [InlineData("postgresql://h/db%zz", "invalid percent-encoding in the database name of the conninfo URI")]
    [InlineData("postgresql://h/db%00", "invalid percent-encoding in the database name of the conninfo URI")]
    [InlineData("postgresql://[::1/db", "unterminated IPv6 host address ('[' without ']') in conninfo URI")]
    [InlineData("postgresql://h/db?sslmode", "malformed query parameter in conninfo URI (expected keyword=value, '&' between parameters)")]
    public void Invalid_conninfo_throws_argument_exception(string conninfo, string expected)
    {
        var ex = Assert.Throws<ArgumentException>(() => ConnInfo.ToNpgsql(conninfo));
        Assert.Equal(expected, ex.Message);
    }

    [Theory]
    [InlineData("host=a password=s3cret port=abc")]
    [InlineData("password='s3cret")]
    [InlineData("password=my s3cret")]
    [InlineData("postgresql://u:s3cret@h:abc/db")]
    [InlineData("postgresql://u:s3cret@h/db?password=s3cret&x")]
    [InlineData("postgresql://u:s3cret%zz@h/db")]
    public void Conversion_errors_never_contain_the_password(string conninfo)
    {
        var ex = Assert.Throws<ArgumentException>(() => ConnInfo.ToNpgsql(conninfo));
        Assert.DoesNotContain("s3cret", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("host=a password=s3cret user=u", "host=a password=******** user=u")]
    [InlineData("host=a password = 's3 cret' user=u", "host=a password = ******** user=u")]
    [InlineData(@"password='it\'s' host=a", "password=******** host=a")]
    [InlineData(@"password=a\ b host=a", "password=******** host=a")]
    [InlineData("password='unterminated host=a", "password=********")]
    [InlineData("sslpassword=k3y sslkey=/k.pem", "sslpassword=******** sslkey=/k.pem")]
    [InlineData("host=a user=u", "host=a user=u")]
    [InlineData("host=a password=", "host=a password=")]
    [InlineData("postgresql://u:s3cret@h:5432/db", "postgresql://u:********@h:5432/db")]
    [InlineData("postgres://u:s3cret@h/db?sslmode=require&password=s3cret", "postgres://u:********@h/db?sslmode=require&password=********")]
    [InlineData("postgresql://u@h/db", "postgresql://u@h/db")]
    [InlineData("postgresql://u:@h/db", "postgresql://u:@h/db")]
    [InlineData("postgresql://u:p?ss@h/db", "postgresql://u:********@h/db")]
    [InlineData("postgresql://h/db?pass%77ord=s3cret", "postgresql://h/db?pass%77ord=********")]
    public void Redact_hides_passwords_in_both_syntaxes(string conninfo, string expected)
    {
        Assert.Equal(expected, ConnInfo.Redact(conninfo));
    }

    [Fact]
    public void Redacted_conninfo_still_converts()
    {
        var b = Convert(ConnInfo.Redact("host=a password='x y' dbname=shop"));
        Assert.Equal("********", b.Password);
        Assert.Equal("shop", b.Database);
    }

    [Fact]
    public void ScrubSecrets_removes_raw_and_decoded_passwords()
    {
        const string conninfo = "postgresql://u:p%40ss@h/db";
        Assert.Equal("x ******** y ******** z", ConnInfo.ScrubSecrets("x p@ss y p%40ss z", conninfo));
    }
}
