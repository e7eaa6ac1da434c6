using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Navette.Config;

/// <summary>
/// A minimal YAML node tree that, unlike YamlDotNet's representation model, keeps duplicate mapping keys
/// (so they can be reported with both lines) and records the 1-based line of every node.
/// </summary>
internal abstract class YamlTreeNode(int line)
{
    public int Line { get; } = line;
}

internal sealed class YamlTreeScalar(string value, ScalarStyle style, int line) : YamlTreeNode(line)
{
    public string Value { get; } = value;

    public ScalarStyle Style { get; } = style;

    public bool IsPlain => Style is ScalarStyle.Plain or ScalarStyle.Any;

    /// <summary>An empty value, <c>~</c> or <c>null</c> (YAML 1.2 core schema), not quoted.</summary>
    public bool IsNull => IsPlain && Value is "" or "~" or "null" or "Null" or "NULL";
}

internal sealed class YamlTreeSequence(int line) : YamlTreeNode(line)
{
    public List<YamlTreeNode> Items { get; } = [];
}

internal sealed class YamlTreeMapping(int line) : YamlTreeNode(line)
{
    public List<KeyValuePair<YamlTreeNode, YamlTreeNode>> Pairs { get; } = [];
}

internal static class YamlTreeReader
{
    /// <summary>
    /// Reads the text into a tree. Returns the root of the (single) document, or null for an empty stream.
    /// Problems are appended to <paramref name="errors"/> as (line, message); a syntax error stops the reading
    /// and sets <paramref name="syntaxError"/>.
    /// </summary>
    public static YamlTreeNode? Read(string text, List<(int Line, string Message)> errors, out bool syntaxError)
    {
        syntaxError = false;
        var parser = new Parser(new StringReader(text));
        try
        {
            parser.Consume<StreamStart>();
            YamlTreeNode? root = null;
            var documents = 0;
            while (parser.TryConsume<DocumentStart>(out var documentStart))
            {
                documents++;
                var anchors = new Dictionary<string, YamlTreeNode>(StringComparer.Ordinal);
                var node = ReadNode(parser, anchors, errors);
                parser.Consume<DocumentEnd>();
                if (documents == 1)
                {
                    root = node;
                }
                else
                {
                    errors.Add((ToLine(documentStart.Start), "the file must hold a single YAML document; another one starts here"));
                }
            }

            parser.Consume<StreamEnd>();
            return root;
        }
        catch (YamlException ex)
        {
            syntaxError = true;
            var line = ToLine(ex.Start);
            if (ex.Message.Contains("tab", StringComparison.OrdinalIgnoreCase))
            {
                line = FirstTabIndentedLine(text, line) ?? line;
            }

            errors.Add((line, $"YAML syntax error: {ex.Message}"));
            return null;
        }
    }

    /// <summary>
    /// YamlDotNet reports tab-indentation errors at the start of the enclosing mapping; the first line at or after
    /// it whose indentation holds a tab is where the user must look.
    /// </summary>
    private static int? FirstTabIndentedLine(string text, int fromLine)
    {
        var lines = text.Split('\n');
        for (var i = Math.Max(0, fromLine - 1); i < lines.Length; i++)
        {
            var indentation = lines[i].AsSpan()[..(lines[i].Length - lines[i].TrimStart(' ', '\t').Length)];
            if (indentation.Contains('\t'))
            {
                return i + 1;
            }
        }

        return null;
    }

    private static YamlTreeNode ReadNode(IParser parser, Dictionary<string, YamlTreeNode> anchors, List<(int Line, string Message)> errors)
    {
        var current = parser.Current ?? throw new YamlException("unexpected end of the YAML stream");
        var line = ToLine(current.Start);
        switch (current)
        {
            case AnchorAlias alias:
            {
                parser.MoveNext();
                if (anchors.TryGetValue(alias.Value.Value, out var target))
                {
                    return target;
                }

                errors.Add((line, $"unknown alias '*{alias.Value.Value}'"));
                return new YamlTreeScalar(string.Empty, ScalarStyle.Plain, line);
            }

            case Scalar scalar:
            {
                parser.MoveNext();
                var node = new YamlTreeScalar(scalar.Value, scalar.Style, line);
                Remember(scalar.Anchor, node, anchors);
                return node;
            }

            case SequenceStart sequenceStart:
            {
                parser.MoveNext();
                var node = new YamlTreeSequence(line);
                while (!parser.TryConsume<SequenceEnd>(out _))
                {
                    node.Items.Add(ReadNode(parser, anchors, errors));
                }

                Remember(sequenceStart.Anchor, node, anchors);
                return node;
            }

            case MappingStart mappingStart:
            {
                parser.MoveNext();
                var node = new YamlTreeMapping(line);
                while (!parser.TryConsume<MappingEnd>(out _))
                {
                    var key = ReadNode(parser, anchors, errors);
                    var value = ReadNode(parser, anchors, errors);
                    node.Pairs.Add(new(key, value));
                }

                Remember(mappingStart.Anchor, node, anchors);
                return node;
            }

            default:
                throw new YamlException(current.Start, current.End, $"unexpected YAML event {current.GetType().Name}");
        }
    }

    private static void Remember(AnchorName anchor, YamlTreeNode node, Dictionary<string, YamlTreeNode> anchors)
    {
        if (!anchor.IsEmpty)
        {
            anchors[anchor.Value] = node;
        }
    }

    private static int ToLine(Mark mark) => (int)Math.Max(1, mark.Line);
}
