namespace Navette;

/// <summary>SQL text building: every identifier goes through here, so none is ever interpolated unquoted.</summary>
internal static class Sql
{
    public static string Ident(string name) => "\"" + name.Replace("\"", "\"\"") + "\"";

    public static string Qualified(string schema, string name) => Ident(schema) + "." + Ident(name);

    public static string Literal(string value) => "'" + value.Replace("'", "''") + "'";

    public static string SlotName(string subscription) => "navette_" + subscription;

    public static string OriginName(string subscription) => "navette_" + subscription;

    public static string PublicationName(string set) => "navette_" + set;

    public static string ApplicationName(string subscription) => "navette_" + subscription;
}
