namespace Navette;

/// <summary>An error meant for the operator: its message says what is wrong and what to change.</summary>
internal class NavetteException(string message, Exception? inner = null) : Exception(message, inner);
