using Microsoft.Extensions.Logging;

namespace Navette.Monitoring;

/// <summary>
/// Copies the daemon's warnings and errors into <see cref="RecentEvents"/> for the dashboard, so every failure a
/// worker logs is shown there without a second reporting path. Categories <c>navette.SUBSCRIPTION</c> name the
/// subscription.
/// </summary>
internal sealed class RecentEventsLoggerProvider(RecentEvents events, IReadOnlySet<string> subscriptions) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName)
    {
        var sub = categoryName.StartsWith("navette.", StringComparison.Ordinal) ? categoryName["navette.".Length..] : null;
        return new EventLogger(events, sub is not null && subscriptions.Contains(sub) ? sub : null, categoryName.StartsWith("navette", StringComparison.Ordinal));
    }

    public void Dispose() { }

    private sealed class EventLogger(RecentEvents events, string? subscription, bool ours) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => ours && logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            events.Add(logLevel >= LogLevel.Error ? RecentEvents.Error : RecentEvents.Warning, subscription, formatter(state, exception));
        }
    }
}
