namespace Navette.Setup;

internal sealed record TableColumn(string Name, string Type, bool NotNull, bool HasDefault, bool Generated);
