using Xunit;
using Xunit.Abstractions;

namespace Navette.Tests.Apply;

/// <summary>
/// Every built-in type family, and user-defined types, through the initial copy and through INSERT, UPDATE and
/// DELETE on the stream: in plain columns, in primary keys (rows found by key equality on the target) and in
/// REPLICA IDENTITY FULL tables (rows found by their whole old image). Rows are compared in full text form.
/// </summary>
public sealed class TypeFidelityTests(ITestOutputHelper output)
{
    /// <summary>80 kB of incompressible bytes, stored out of line (TOAST).</summary>
    private const string LargeBytea = "(SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 5000) g)";

    internal static readonly ColumnSpec[] Builtin =
    [
        new("c_bool", "boolean", ["true", "false"]),
        new("c_int2", "smallint", ["0", "-32768", "32767"]),
        new("c_int4", "integer", ["0", "-2147483648", "2147483647"]),
        new("c_int8", "bigint", ["0", "-9223372036854775808", "9223372036854775807"]),
        new("c_numeric", "numeric",
            ["0", "'NaN'", "'Infinity'", "'-Infinity'", "1.50", "-0.000000000000000000000000000000000000001", "'-123456789012345678901234567890.123456789'"],
            ["'1e-16383'", "(repeat('9', 1000) || '.' || repeat('9', 1000))::numeric", "'1e100000'"]),
        new("c_numeric_scaled", "numeric(12,4)", ["'12345678.1234'", "'-0.0001'", "'NaN'", "0"]),
        new("c_float4", "real", ["'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "'1.4e-45'", "'3.4028235e38'", "'0.1'", "'1.1754942e-38'", "'3.1415927'"]),
        new("c_float8", "double precision",
            ["'NaN'", "'Infinity'", "'-Infinity'", "'-0'", "'4.9e-324'", "'2.2250738585072009e-308'", "'1.7976931348623157e308'", "'0.1'", "'0.30000000000000004'", "'-1.2345678901234567e-100'"]),
        new("c_money", "money", ["'0'", "'-92233720368547758.08'", "'92233720368547758.07'", "'1234.56'"]),
        new("c_char", "char(5)", ["'a'", "'abcde'", "''", "' x  '"]),
        new("c_qchar", "\"char\"", ["'a'", "'Z'", """'\200'"""]),
        new("c_name", "name", ["'some name'", "'Ünïcode'"]),
        new("c_varchar", "varchar(20)", ["'short'", "''", """'"quoted", comma'"""]),
        new("c_text", "text",
            [
                """E'tab\there'""", """E'new\nline\r\n'""", """E'back\\slash \\\\ double'""", """'quote''s "double"'""",
                "'héllo wörld ñ 中文 Ωμέγα'", "'emoji 😀👍🏽 🏳️‍🌈'", "''", "'NULL'", "'  leading and trailing  '", """E'\\x00 not bytea'""",
                "'{braces},(parens),[brackets]'", """E'\\N \\. end of copy'""",
            ],
            ["repeat('long ', 5000)"]),
        new("c_bytea", "bytea", ["""'\x'""", """'\x00'""", """'\x00ff00deadbeef00'"""], ["decode(repeat('00ff', 50000), 'hex')", LargeBytea]),
        new("c_date", "date", ["'infinity'", "'-infinity'", "'4713-01-01 BC'", "'5874897-12-31'", "'2000-02-29'", "'0044-03-15 BC'"]),
        new("c_time", "time", ["'00:00'", "'23:59:59.999999'", "'24:00:00'", "'12:34:56.5'"]),
        new("c_timetz", "timetz", ["'00:00+14'", "'23:59:59.999999-15:59'", "'12:00:00+05:30'", "'01:02:03+05:30:15'"]),
        new("c_time3", "time(3)", ["'12:34:56.789'", "'00:00'"]),
        new("c_timestamp", "timestamp",
            ["'infinity'", "'-infinity'", "'4713-01-01 00:00:00 BC'", "'294276-12-31 23:59:59.999999'", "'2000-02-29 12:34:56.789012'", "'0001-01-01 00:00:00 BC'"]),
        new("c_timestamptz", "timestamptz",
            ["'infinity'", "'-infinity'", "'4713-01-01 00:00:00+00 BC'", "'294276-12-31 23:59:59.999999+00'", "'2024-03-10 02:30:00.5+05:45'", "'1900-01-01 00:00:00 Europe/Amsterdam'"]),
        new("c_interval", "interval",
            [
                "'-1 year -2 mons +3 days -04:05:06.789'", "'1 mon -1 day'", "'-178000000 years'", "'0'", "'1 day 25:00:00'",
                "'00:00:00.000001'", "'2147483647 days 2147483647 hours'", "'-2147483648 mons'",
            ]),
        new("c_inet", "inet", ["'192.168.0.1/24'", "'::1'", "'2001:db8::ff00:42:8329/64'", "'10.0.0.1'", "'::ffff:1.2.3.4'"]),
        new("c_cidr", "cidr", ["'10.0.0.0/8'", "'2001:db8::/32'", "'192.168.100.128/25'", "'0.0.0.0/0'"]),
        new("c_macaddr", "macaddr", ["'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'", "'00:00:00:00:00:00'"]),
        new("c_macaddr8", "macaddr8", ["'08:00:2b:01:02:03:04:05'", "'08:00:2b:ff:fe:01:02:03'"]),
        new("c_uuid", "uuid", ["'00000000-0000-0000-0000-000000000000'", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"]),
        new("c_tsvector", "tsvector",
            ["to_tsvector('english', 'The quick brown foxes jumped')", """$$'fat':1A 'cat':2B,3C 'it''s' 'back\\slash' 'sp ace':4D$$""", "''"]),
        new("c_tsquery", "tsquery", ["""$$'fat' & ( 'rat' | !'cat' ) <-> 'sat':*AB$$""", "to_tsquery('english', 'the & foxes')", "'a <2> b'"]),
        new("c_bit", "bit(4)", ["B'1010'", "B'0000'", "B'1111'"]),
        new("c_varbit", "bit varying(200)", ["B''", "B'1'", "repeat('10', 100)::varbit"]),
        new("c_point", "point", ["'(1.5,-2)'", "'(NaN,Infinity)'", "'(-0,1e-300)'"]),
        new("c_line", "line", ["'{1,-1,0}'", "'{0,1,-2.5}'"]),
        new("c_lseg", "lseg", ["'[(0,0),(1,1)]'", "'[(-1.5,2),(3,-4.25)]'"]),
        new("c_box", "box", ["'(1,1),(0,0)'", "'(2.5,3),(-1,-1)'"]),
        new("c_path", "path", ["'[(0,0),(1,1),(2,0)]'", "'((0,0),(1,1),(2,0))'"]),
        new("c_polygon", "polygon", ["'((0,0),(1,1),(1,0))'", "'((0,0))'"]),
        new("c_circle", "circle", ["'<(0,0),1.5>'", "'<(-1,2.25),0>'"]),
        new("c_oid", "oid", ["0", "4294967295", "12345"]),
        new("c_json", "json",
            [
                """$${"a": [1, 2, {"b": null}], "c": "\u00e9\n\t\"q\"\\", "a": 3}$$""", """$$"unicode é 😀 \ud83d\ude00 \u0000"$$""",
                "'null'", "'[]'", "'1e400'", """$$ {"deep": [[[[{"x": [[[]]]}]]]]} $$""",
            ]),
        new("c_jsonb", "jsonb",
            [
                """$${"a": [1, 2, {"b": null}], "c": "\u00e9\n\t\"q\"\\", "a": 3}$$""", """$$"unicode é 😀 \ud83d\ude00"$$""",
                "'null'", "'[]'", "'1e400'", """$$ {"deep": [[[[{"x": [[[]]]}]]]], "n": -0.0} $$""",
            ]),
        new("c_xml", "xml", ["""'<a b="1">x &amp; y</a>'""", "'text only'", """'<?xml version="1.0"?><r><![CDATA[<>&]]></r>'""", """'<ü attr="ö">😀</ü>'""", "''"]),
        new("c_int4_arr", "integer[]", ["'{1,2,NULL}'", "'{{1,2},{3,4}}'", "'{}'", "'[2:3]={5,6}'", "'{{{1}}}'", "'{{NULL,NULL},{NULL,1}}'"]),
        new("c_text_arr", "text[]",
            [
                """ARRAY['a,b', 'c"d', '{e}', E'back\\slash', NULL, 'NULL', '', ' sp ', E'tab\t', 'é😀']""", "ARRAY[['a','b'],['{','}']]",
                "'{}'", "ARRAY[NULL]::text[]",
            ]),
        new("c_char_arr", "char(3)[]", ["ARRAY['a', 'abc', NULL]::char(3)[]", "'{}'"]),
        new("c_float8_arr", "double precision[]", ["'{NaN,Infinity,-Infinity,-0,4.9e-324}'", "'{{1.5},{NULL}}'"]),
        new("c_numeric_arr", "numeric[]", ["'{NaN,1.50,-Infinity}'", "'{0}'"]),
        new("c_tstz_arr", "timestamptz[]", ["""'{infinity,-infinity,"2000-01-01 00:00:00+00"}'""", "'{}'"]),
        new("c_bytea_arr", "bytea[]", ["""ARRAY['\x00'::bytea, '\x'::bytea, NULL]""", "'{}'"]),
        new("c_jsonb_arr", "jsonb[]", ["""ARRAY['{"a":1}'::jsonb, 'null', '"s,{}"']"""]),
        new("c_point_arr", "point[]", ["""'{"(1,2)","(3,4)"}'"""]),
        new("c_interval_arr", "interval[]", ["""'{"-1 days","1 year 2 mons"}'"""]),
        new("c_int4range", "int4range", ["'[1,10)'", "'empty'", "'(,5]'", "'(,)'"]),
        new("c_int8range", "int8range", ["'[-9223372036854775808,9223372036854775807)'", "'[0,1]'"]),
        new("c_numrange", "numrange", ["'[1.5,2.25]'", "'(,Infinity)'"]),
        new("c_tsrange", "tsrange", ["'[2000-01-01, infinity)'", "'empty'"]),
        new("c_tstzrange", "tstzrange",
            ["""'["2000-01-01 00:00+00","2001-01-01 00:00+00")'""", "'(-infinity,infinity)'", "'[2000-01-01 00:00+00,2000-01-01 00:00+00]'"]),
        new("c_daterange", "daterange", ["'[2000-01-01,2000-01-10)'", "'empty'", "'(,)'"]),
        new("c_int4mr", "int4multirange", ["'{[1,3), [5,8)}'", "'{}'", "'{(,0), [10,)}'"]),
        new("c_tstzmr", "tstzmultirange", ["'{[2000-01-01 00:00+00,2000-01-02 00:00+00), [2001-01-01 00:00+00,)}'", "'{}'"]),
        new("c_datemr", "datemultirange", ["'{[2000-01-01,2000-02-01)}'"]),
        new("c_nummr", "nummultirange", ["'{[1.5,2), [NaN,NaN]}'", "'{(,Infinity)}'"]),
    ];

    /// <summary>Types with a btree equality, as primary key columns (at most 32 with k_seq).</summary>
    private static readonly string[] BuiltinKeyColumns =
    [
        "c_bool", "c_int2", "c_int8", "c_numeric", "c_float4", "c_float8", "c_money", "c_char", "c_text", "c_bytea",
        "c_date", "c_time", "c_timetz", "c_timestamp", "c_timestamptz", "c_interval", "c_inet", "c_cidr", "c_macaddr",
        "c_macaddr8", "c_uuid", "c_bit", "c_varbit", "c_oid", "c_int4range", "c_tstzrange", "c_int4mr", "c_text_arr",
        "c_float8_arr", "c_jsonb", "c_tsvector",
    ];

    [Fact]
    public async Task Builtin_types_survive_copy_and_stream_as_values_keys_and_full_identity()
    {
        var values = new TypeMatrix("builtin_types", "id", Builtin);
        var full = new TypeMatrix("builtin_full", "id", Builtin);
        var keySpecs = BuiltinKeyColumns.Select(n => Builtin.Single(c => c.Name == n)).Append(new ColumnSpec("payload", "text", ["'p0'", "'p1'", "NULL"])).ToArray();
        var keys = new TypeMatrix("builtin_keys", "k_seq", keySpecs, keysOnly: true);
        await RunAsync(values, full, keys, BuiltinKeyColumns, schemaPrefix: "");
    }

    [Fact]
    public async Task User_defined_types_survive_copy_and_stream_as_values_keys_and_full_identity()
    {
        var user = UserTypes();
        var values = new TypeMatrix("user_types", "id", user);
        var full = new TypeMatrix("user_full", "id", user);
        string[] keyColumns = ["u_mood", "u_mood_arr", "u_posint", "u_email", "u_pair", "u_floatrange", "u_shouty", "u_citext", "u_hstore", "u_ltree"];
        var keySpecs = keyColumns.Select(n => user.Single(c => c.Name == n)).Append(new ColumnSpec("payload", "text", ["'p0'", "'p1'"])).ToArray();
        var keys = new TypeMatrix("user_keys", "k_seq", keySpecs, keysOnly: true);
        await RunAsync(values, full, keys, keyColumns, schemaPrefix: """"
            CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'with space', 'quote''s "dq"', 'ünï😀');
            CREATE SCHEMA "Type Space";
            CREATE TYPE "Type Space"."Shouty ""Enum""" AS ENUM ('A', 'b c');
            CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
            CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
            CREATE DOMAIN moods AS mood[] CHECK (cardinality(VALUE) > 0);
            CREATE DOMAIN short_code AS char(4);
            CREATE TYPE pair AS (a integer, b text, c double precision, d mood, e integer[]);
            CREATE TYPE nested AS (p pair, tags text[], at timestamptz);
            CREATE TYPE floatrange AS RANGE (subtype = double precision);
            -- Extension types (and their operators) in a schema outside search_path.
            CREATE SCHEMA ext;
            CREATE EXTENSION citext SCHEMA ext;
            CREATE EXTENSION hstore SCHEMA ext;
            CREATE EXTENSION ltree SCHEMA ext;

            """");
    }

    private static ColumnSpec[] UserTypes() =>
    [
        new("u_mood", "mood", ["'sad'", "'with space'", """'quote''s "dq"'""", "'ünï😀'"]),
        new("u_mood_arr", "mood[]", ["""ARRAY['sad', 'with space', NULL, 'quote''s "dq"']::mood[]""", "'{}'", "'{{happy,ok},{sad,sad}}'"]),
        new("u_shouty", "\"Type Space\".\"Shouty \"\"Enum\"\"\"", ["'A'", "'b c'"]),
        new("u_shouty_arr", "\"Type Space\".\"Shouty \"\"Enum\"\"\"[]", ["""'{A,"b c",NULL}'"""]),
        new("u_posint", "posint", ["1", "2147483647", "42"]),
        new("u_posint_arr", "posint[]", ["'{1,2,3}'", "'{}'"]),
        new("u_email", "email", ["'a@b'", """'we"ird,@{x}'"""]),
        new("u_moods", "moods", ["'{ok,happy}'", "'{sad}'"]),
        new("u_short_code", "short_code", ["'ab'", "'abcd'"]),
        new("u_pair", "pair", ["""ROW(1, 'a,b "q" (p)', 'NaN', 'happy', ARRAY[1,NULL])::pair""", "'(,,,,)'", """ROW(NULL, E'x\\y\nz', '-0', NULL, '{}')::pair"""]),
        new("u_pair_arr", "pair[]", ["ARRAY[ROW(1, 'x', 1.5, 'ok', NULL)::pair, NULL, '(,,,,)']", "'{}'"]),
        new("u_nested", "nested", ["""ROW(ROW(2, ')(', 'Infinity', 'sad', '{3}')::pair, ARRAY['a"b', NULL], 'infinity')::nested""", "'(,,)'"]),
        new("u_floatrange", "floatrange", ["'[1.5,2.5)'", "'empty'", "'(-Infinity,Infinity)'"]),
        new("u_floatmr", "floatmultirange", ["'{[1,2), [3,4]}'", "'{}'"]),
        new("u_citext", "ext.citext", ["'MiXeD Case'", "'mixed case'", "'Straße'"]),
        new("u_hstore", "ext.hstore", ["""'"a"=>"1", "b"=>NULL, "with space"=>"x,y"'""", "''"]),
        new("u_ltree", "ext.ltree", ["'Top.Science.Astronomy'", "''", "'a'"]),
    ];

    /// <summary>
    /// values: a plain table keyed by id; full: the same columns, REPLICA IDENTITY FULL, every row twice;
    /// keys: the key-capable columns as a composite primary key.
    /// </summary>
    private async Task RunAsync(TypeMatrix values, TypeMatrix full, TypeMatrix keys, string[] keyColumns, string schemaPrefix)
    {
        var schema = schemaPrefix + $"""
            CREATE TABLE {values.Table} (id integer PRIMARY KEY,
            {values.ColumnDefinitions});
            CREATE TABLE {full.Table} (id integer,
            {full.ColumnDefinitions});
            ALTER TABLE {full.Table} REPLICA IDENTITY FULL;
            CREATE TABLE {keys.Table} (k_seq integer,
            {keys.ColumnDefinitions},
                PRIMARY KEY (k_seq, {string.Join(", ", keyColumns)}));
            """;
        await using var s = await ApplyScenario.StartAsync(output, schema);
        // Nodes whose defaults print and parse values differently: the capture, the copy and the apply must not
        // depend on them.
        await ApplyScenario.SetDefaultsAsync(s.Origin, ("DateStyle", "SQL, DMY"), ("IntervalStyle", "iso_8601"), ("TimeZone", "Asia/Kathmandu"),
            ("extra_float_digits", "0"), ("bytea_output", "escape"));
        await ApplyScenario.SetDefaultsAsync(s.Replica, ("DateStyle", "German, DMY"), ("IntervalStyle", "sql_standard"), ("TimeZone", "Pacific/Chatham"),
            ("extra_float_digits", "-15"), ("bytea_output", "escape"), ("xmloption", "document"));
        var v = values.Variants;
        var vk = keys.Variants;

        // Copy path: rows 0..v (0 is all NULL).
        await s.Origin.ExecuteAsync(values.InsertRows(1, v, withNullRow: true)
                                    + full.InsertRows(1, v, withNullRow: true) + full.InsertRows(1, v, withNullRow: true)
                                    + keys.InsertRows(1, vk, withNullRow: false));
        await s.StartReplicationAsync("public." + values.Table, "public." + full.Table, "public." + keys.Table);
        await s.AssertReplicatedAsync((values.Table, v + 1), (full.Table, 2 * (v + 1)), (keys.Table, vk));

        // Stream path: the same rows again, 1000..1000+v.
        await s.Origin.ExecuteAsync(values.InsertRows(1001, v, withNullRow: true));
        await s.Origin.ExecuteAsync(full.InsertRows(1001, v, withNullRow: true) + full.InsertRows(1001, v, withNullRow: true));
        await s.Origin.ExecuteAsync(keys.InsertRows(1001, vk, withNullRow: false));
        await s.AssertReplicatedAsync((values.Table, 2 * (v + 1)), (full.Table, 4 * (v + 1)), (keys.Table, 2 * vk));

        // Updates of copied and streamed rows: every row moves to the next combination; NULL rows get values
        // and a row with values becomes all NULL.
        var ids = Enumerable.Range(0, v + 1).Concat(Enumerable.Range(1000, v + 1)).ToList();
        var sql = new System.Text.StringBuilder();
        foreach (var id in ids)
        {
            var next = id is 1 or 1001 ? null : (int?)(id + 1);
            sql.Append($"UPDATE {values.Table} SET {values.SetList(next)} WHERE id = {id};\n");
            // Only one of the two identical rows changes.
            sql.Append($"UPDATE {full.Table} SET {full.SetList(next is { } n ? n + 1 : null)} WHERE ctid = (SELECT ctid FROM {full.Table} WHERE id = {id} LIMIT 1);\n");
        }
        await s.Origin.ExecuteAsync(sql.ToString());
        // Key changes that leave every other column, TOASTed ones included, unchanged.
        await s.Origin.ExecuteAsync($"""
            UPDATE {values.Table} SET id = id + 5000 WHERE id % 4 = 2;
            UPDATE {full.Table} SET id = -id WHERE id % 4 = 1;
            UPDATE {keys.Table} SET payload = 'changed' WHERE k_seq % 2 = 0;
            """);
        sql.Clear();
        foreach (var k in Enumerable.Range(1, vk).Concat(Enumerable.Range(1001, vk)).Where(k => k % 2 == 1))
            sql.Append($"UPDATE {keys.Table} SET {keys.SetList(k + 1, c => c.Name != "payload")} WHERE k_seq = {k};\n");
        await s.Origin.ExecuteAsync(sql.ToString());
        await s.AssertReplicatedAsync((values.Table, 2 * (v + 1)), (full.Table, 4 * (v + 1)), (keys.Table, 2 * vk));

        // Deletes: by key, one of two identical rows, and both.
        sql.Clear();
        sql.Append($"DELETE FROM {values.Table} WHERE id % 3 = 0;\n");
        sql.Append($"DELETE FROM {keys.Table} WHERE k_seq % 3 = 0;\n");
        foreach (var id in ids.Where(i => i % 3 == 0))
            sql.Append($"DELETE FROM {full.Table} WHERE ctid = (SELECT ctid FROM {full.Table} WHERE abs(id) = {id} LIMIT 1);\n");
        sql.Append($"DELETE FROM {full.Table} WHERE abs(id) % 5 = 0;\n");
        await s.Origin.ExecuteAsync(sql.ToString());
        await s.AssertReplicatedAsync((values.Table, v), (full.Table, 2 * v), (keys.Table, vk));
    }
}
