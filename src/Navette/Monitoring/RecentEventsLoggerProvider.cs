using Microsoft.Extensions.Logging;

namespace Navette.Monitoring;

/// <summary>
/// Copies the daemon's warnings and errors into <see cref="RecentEvents"/> for the dashboard, so every failure a
/// worker logs is shown there without a second reporting path. Categories <c>navette.SUBSCRIPTION</c> name the
/// subscription.
/// </summary>
internal sealed class RecentEventsLoggerProvider(RecentEvents events, IReadOnlySet<string> subscriptions) : ILoggerProvider
{
    private volatile Target _target = new(events, subscriptions);

    private sealed record Target(RecentEvents Events, IReadOnlySet<string> Subscriptions);

    /// <summary>Sends what is logged from now on to another monitor (the daemon restarted its workers for a changed file).</summary>
    public void Retarget(RecentEvents events, IReadOnlySet<string> subscriptions) => _target = new Target(events, subscriptions);

    public ILogger CreateLogger(string categoryName)
    {
        var sub = categoryName.StartsWith("navette.", StringComparison.Ordinal) ? categoryName["navette.".Length..] : null;
        return new EventLogger(this, sub, categoryName.StartsWith("navette", StringComparison.Ordinal));
    }

    public void Dispose() { }

    private sealed class EventLogger(RecentEventsLoggerProvider provider, string? category, bool ours) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => ours && logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var (events, subscriptions) = provider._target;
            events.Add(logLevel >= LogLevel.Error ? RecentEvents.Error : RecentEvents.Warning,
                category is not null && subscriptions.Contains(category) ? category : null, formatter(state, exception));
        }
    }
}
