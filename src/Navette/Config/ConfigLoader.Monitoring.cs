namespace Navette.Config;

internal static partial class ConfigLoader
{
    private static readonly string[] MonitoringKeys = ["http", "http_token", "lag_threshold", "wal_retention"];
    private static readonly string[] WalRetentionKeys = ["warn", "limit"];

    private sealed partial class Validator
    {
        private MonitoringConfig ValidateMonitoring(YamlTreeScalar sectionKey, YamlTreeNode section)
        {
            if (section is YamlTreeScalar { IsNull: true })
            {
                return MonitoringConfig.Default with { Line = sectionKey.Line };
            }

            if (section is not YamlTreeMapping mapping)
            {
                Error(section.Line, $"'monitoring' must be a mapping with the keys {string.Join(", ", MonitoringKeys)}");
                return MonitoringConfig.Default;
            }

            const string owner = "monitoring";
            var fields = ReadFields(mapping, MonitoringKeys, owner);
            string? http = null;
            if (fields.TryGetValue("http", out var httpField))
            {
                if (httpField.Value is not YamlTreeScalar { IsNull: false } scalar)
                    Error(LineOf(httpField), $"{owner}: 'http' must be an address and port such as 127.0.0.1:9540");
                else if (!HttpEndpoint.TryParse(scalar.Value, out _, out var problem))
                    Error(scalar.Line, $"{owner}: 'http' must be an address and port such as 127.0.0.1:9540, not '{scalar.Value}': {problem}");
                else
                    http = scalar.Value;
            }

            string? token = null;
            if (fields.TryGetValue("http_token", out var tokenField))
            {
                // The value itself is never repeated in a message.
                if (tokenField.Value is YamlTreeScalar { IsNull: false } scalar && scalar.Value.Trim().Length >= HttpEndpoint.MinTokenLength)
                    token = scalar.Value.Trim();
                else
                    Error(LineOf(tokenField), $"{owner}: 'http_token' must be a string of at least {HttpEndpoint.MinTokenLength} characters");
            }

            var limits = Limits(fields, owner, SubscriptionLimits.Default);
            return new MonitoringConfig(http, token, limits, sectionKey.Line);
        }

        /// <summary>lag_threshold and wal_retention of a subscription or of the monitoring section, over the given defaults.</summary>
        private SubscriptionLimits Limits(Dictionary<string, KeyValuePair<YamlTreeScalar, YamlTreeNode>> fields, string owner, SubscriptionLimits defaults)
        {
            var lag = defaults.LagThreshold;
            if (fields.TryGetValue("lag_threshold", out var lagField))
            {
                if (lagField.Value is YamlTreeScalar { IsNull: false } scalar && ConfigUnits.TryParseDuration(scalar.Value, out var d))
                    lag = d;
                else
                    Error(LineOf(lagField), $"{owner}: 'lag_threshold' must be {ConfigUnits.DurationHint}"
                        + (lagField.Value is YamlTreeScalar { IsNull: false } s ? $", not '{s.Value}'" : ""));
            }

            var retention = defaults.WalRetention;
            if (fields.TryGetValue("wal_retention", out var walField))
                retention = WalRetentionOf(walField, owner, defaults.WalRetention);
            return new SubscriptionLimits(lag, retention);
        }

        private WalRetention WalRetentionOf(KeyValuePair<YamlTreeScalar, YamlTreeNode> field, string owner, WalRetention defaults)
        {
            if (field.Value is not YamlTreeMapping mapping)
            {
                Error(LineOf(field), $"{owner}: 'wal_retention' must be a mapping such as {{ warn: 1GB, limit: 10GB }}");
                return defaults;
            }

            var where = $"{owner}: wal_retention";
            var fields = ReadFields(mapping, WalRetentionKeys, where);
            var warn = defaults.WarnBytes;
            var limit = defaults.LimitBytes;
            int? warnLine = null, limitLine = null;
            var unreadable = false;
            if (fields.TryGetValue("warn", out var warnField))
            {
                warnLine = LineOf(warnField);
                if (Size(warnField, where, "warn") is { } w) warn = w;
                else unreadable = true;
            }

            if (fields.TryGetValue("limit", out var limitField))
            {
                limitLine = LineOf(limitField);
                if (Size(limitField, where, "limit") is { } l) limit = l;
                else unreadable = true;
            }

            // Compared only when both sizes were read, and once: not again in every subscription inheriting them.
            if (!unreadable && (warnLine is not null || limitLine is not null) && limit is { } hard && hard <= warn)
            {
                Error(limitLine ?? warnLine ?? mapping.Line,
                    $"{where}: 'limit' ({ConfigUnits.FormatSize(hard)}) must be larger than 'warn' ({ConfigUnits.FormatSize(warn)}): "
                    + "the warning is what gives time to act before the slot is dropped");
            }

            return new WalRetention(warn, limit);
        }

        private long? Size(KeyValuePair<YamlTreeScalar, YamlTreeNode> field, string where, string key)
        {
            if (field.Value is YamlTreeScalar { IsNull: false } scalar && ConfigUnits.TryParseSize(scalar.Value, out var bytes))
                return bytes;
            Error(LineOf(field), $"{where}: '{key}' must be {ConfigUnits.SizeHint}"
                + (field.Value is YamlTreeScalar { IsNull: false } s ? $", not '{s.Value}'" : ""));
            return null;
        }
    }
}
