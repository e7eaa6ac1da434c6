using Navette.Config;
using Xunit;

namespace Navette.Tests.Config;

public class TablePatternTests
{
    [Fact]
    public void Parses_a_plain_qualified_name()
    {
        var p = TablePattern.Parse("public.orders", 7);
        Assert.Equal("public", p.Schema);
        Assert.Equal("orders", p.Table);
        Assert.Equal("public.orders", p.Text);
        Assert.Equal(7, p.Line);
        Assert.False(p.IsPattern);
        Assert.Equal("public.orders", p.ToString());
    }

    [Fact]
    public void Quoted_names_keep_dots_capitals_spaces_and_doubled_quotes()
    {
        var p = TablePattern.Parse("\"My Schema\".\"Order \"\"x\"\"\"");
        Assert.Equal("My Schema", p.Schema);
        Assert.Equal("Order \"x\"", p.Table);
        Assert.True(p.SchemaQuoted);
        Assert.True(p.TableQuoted);
        Assert.False(p.IsPattern);
        Assert.True(p.Matches("My Schema", "Order \"x\""));
        Assert.Equal("\"My Schema\".\"Order \"\"x\"\"\"", p.ToSqlName());
    }

    [Fact]
    public void Quoted_name_may_contain_a_dot()
    {
        var p = TablePattern.Parse("\"a.b\".c");
        Assert.Equal("a.b", p.Schema);
        Assert.Equal("c", p.Table);
    }

    [Fact]
    public void Unquoted_names_are_folded_to_lower_case_like_postgresql()
    {
        var p = TablePattern.Parse("Public.Orders");
        Assert.Equal("public", p.Schema);
        Assert.Equal("orders", p.Table);
        Assert.True(p.Matches("public", "orders"));
        Assert.False(p.Matches("Public", "Orders"));
    }

    [Theory]
    [InlineData("public.order_*", true)]
    [InlineData("billing.*", true)]
    [InlineData("*.orders", true)]
    [InlineData("public.order?", true)]
    [InlineData("public.orders", false)]
    [InlineData("\"a*\".\"b?\"", false)]
    [InlineData("\"a*\".b*", true)]
    public void IsPattern_reports_unquoted_wildcards(string text, bool expected) =>
        Assert.Equal(expected, TablePattern.Parse(text).IsPattern);

    [Theory]
    [InlineData("public.order_*", "public", "order_items", true)]
    [InlineData("public.order_*", "public", "order_", true)]
    [InlineData("public.order_*", "public", "orders", false)]
    [InlineData("public.order_*", "sales", "order_items", false)]
    [InlineData("billing.*", "billing", "invoices", true)]
    [InlineData("billing.*", "billing", "", true)]
    [InlineData("*.orders", "anything", "orders", true)]
    [InlineData("public.order?", "public", "orders", true)]
    [InlineData("public.order?", "public", "order", false)]
    [InlineData("public.order?", "public", "orderss", false)]
    [InlineData("public.*_log_*", "public", "app_log_2024", true)]
    [InlineData("public.*_log_*", "public", "applog_2024", false)]
    [InlineData("public.a*b*c", "public", "abbbc", true)]
    [InlineData("public.a*b*c", "public", "abcb", false)]
    [InlineData("public.orders", "public", "orders", true)]
    [InlineData("public.orders", "public", "Orders", false)]
    [InlineData("public.\"Orders\"", "public", "Orders", true)]
    [InlineData("public.\"Orders\"", "public", "orders", false)]
    [InlineData("public.\"ord*\"", "public", "ord*", true)]
    [InlineData("public.\"ord*\"", "public", "orders", false)]
    public void Matches_uses_case_sensitive_globs(string text, string schema, string table, bool expected) =>
        Assert.Equal(expected, TablePattern.Parse(text).Matches(schema, table));

    [Fact]
    public void Directly_constructed_pattern_is_a_glob()
    {
        var p = new TablePattern("public", "order_*", "public.order_*", 3);
        Assert.True(p.IsPattern);
        Assert.True(p.Matches("public", "order_lines"));
    }

    [Theory]
    [InlineData("", "table entry is empty")]
    [InlineData("   ", "table entry is empty")]
    [InlineData("orders", "'orders' is not qualified with a schema; qualify it, e.g. public.orders")]
    [InlineData("\"Orders\"", "'\"Orders\"' is not qualified with a schema; qualify it, e.g. public.orders")]
    [InlineData("public.", "'public.' has an empty name part")]
    [InlineData(".orders", "'.orders' has an empty name part")]
    [InlineData("public..orders", "'public..orders' has an empty name part")]
    [InlineData("\"\".orders", "'\"\".orders' has an empty name part")]
    [InlineData("\"public.orders", "'\"public.orders' has an unterminated quote")]
    [InlineData("public.\"orders", "'public.\"orders' has an unterminated quote")]
    [InlineData("\"public\"x.orders", "'\"public\"x.orders' has characters after a closing quote")]
    [InlineData("a.b.c", "'a.b.c' has more than two parts; expected schema.table")]
    [InlineData("public.order[12]", "'public.order[12]' uses '[' or ']', which are not supported in patterns; use * or ?")]
    [InlineData("public.order]", "'public.order]' uses '[' or ']', which are not supported in patterns; use * or ?")]
    [InlineData("pub\"lic\".orders", "'pub\"lic\".orders' has a quote inside an unquoted name; double-quote the whole name")]
    [InlineData("public.my table", "'public.my table' contains whitespace in an unquoted name; double-quote it, e.g. \"my table\"")]
    public void Invalid_entries_are_rejected_with_a_reason(string text, string expected)
    {
        Assert.False(TablePattern.TryParse(text, 1, out var pattern, out var error));
        Assert.Null(pattern);
        Assert.Equal(expected, error);
        Assert.Equal(expected, Assert.Throws<FormatException>(() => TablePattern.Parse(text)).Message);
    }

    [Fact]
    public void Brackets_inside_quotes_are_ordinary_characters()
    {
        var p = TablePattern.Parse("public.\"a[1]\"");
        Assert.Equal("a[1]", p.Table);
        Assert.True(p.Matches("public", "a[1]"));
    }

    [Fact]
    public void ToSqlName_refuses_patterns()
    {
        Assert.Throws<InvalidOperationException>(() => TablePattern.Parse("public.order_*").ToSqlName());
        Assert.Equal("\"public\".\"orders\"", TablePattern.Parse("public.orders").ToSqlName());
    }
}
