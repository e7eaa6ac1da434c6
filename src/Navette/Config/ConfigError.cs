namespace Navette.Config;

/// <summary>One problem found in a configuration file, located by file and 1-based line.</summary>
/// <remarks>A <see cref="Line"/> of 0 means "the file as a whole" (e.g. the file does not exist).</remarks>
internal sealed record ConfigError(string File, int Line, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}: {Message}" : $"{File}: {Message}";
}

/// <summary>
/// Thrown when a configuration file cannot be loaded. Carries every error found, not just the first;
/// <see cref="Exception.Message"/> lists them one per line as <c>FILE:LINE: message</c>.
/// </summary>
internal sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(FormatMessage(errors))
    {
        Errors = errors;
    }

    public ConfigException(ConfigError error)
        : this([error])
    {
    }

    public IReadOnlyList<ConfigError> Errors { get; }

    private static string FormatMessage(IReadOnlyList<ConfigError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        if (errors.Count == 0)
        {
            throw new ArgumentException("a ConfigException needs at least one error", nameof(errors));
        }

        return string.Join('\n', errors.Select(e => e.ToString()));
    }
}
