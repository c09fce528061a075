/// An MQTT topic filter (`energy/+/+/#`), used for subscriptions, rule matches and exports.
public struct TopicFilter: Hashable, Sendable, CustomStringConvertible {
    public enum Level: Hashable, Sendable {
        case literal(String)
        case single  // +
        case multi  // #, last level only
    }

    public let text: String
    public let levels: [Level]

    /// Parses a filter; returns nil with a reason for the malformed ones.
    public static func parse(_ text: String) -> Result<TopicFilter, FilterError> {
        guard !text.isEmpty else { return .failure(FilterError("the filter is empty")) }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        var levels: [Level] = []
        for (i, part) in parts.enumerated() {
            switch part {
            case "+": levels.append(.single)
            case "#":
                guard i == parts.count - 1 else {
                    return .failure(FilterError("'#' must be the last level"))
                }
                levels.append(.multi)
            default:
                if part.contains("+") || part.contains("#") {
                    return .failure(FilterError("'+' and '#' must fill a whole level, as in a/+/c"))
                }
                levels.append(.literal(String(part)))
            }
        }
        return .success(TopicFilter(text: text, levels: levels))
    }

    public init(_ text: String) throws(FilterError) {
        switch TopicFilter.parse(text) {
        case .success(let f): self = f
        case .failure(let e): throw e
        }
    }

    private init(text: String, levels: [Level]) {
        self.text = text
        self.levels = levels
    }

    public var description: String { text }

    /// Whether the topic (or series path), split into levels, matches.
    public func matches<S: StringProtocol>(levels topic: [S]) -> Bool {
        var i = 0
        for level in levels {
            switch level {
            case .multi:
                return true
            case .single:
                guard i < topic.count else { return false }
            case .literal(let l):
                guard i < topic.count, topic[i] == l else { return false }
            }
            i += 1
        }
        return i == topic.count
    }

    public func matches(_ topic: String) -> Bool {
        matches(levels: topic.split(separator: "/", omittingEmptySubsequences: false))
    }

    /// How specific the filter is: literal levels count more than wildcards. Used to order overrides.
    public var specificity: Int {
        levels.reduce(0) { acc, l in
            switch l {
            case .literal: return acc + 2
            case .single: return acc + 1
            case .multi: return acc
            }
        }
    }

    public struct FilterError: Error, Sendable, CustomStringConvertible {
        public let description: String
        public init(_ d: String) { description = d }
    }
}

/// Where the parts of a series sit in a topic: `energy/{site}/{device}/{metric}`.
///
/// Each level is a literal, a placeholder (`{site}`, `{device}`, `{metric}`), `+` (any
/// value, ignored) or a final `#` (any remaining levels, ignored).
public struct TopicLayout: Hashable, Sendable, CustomStringConvertible {
    public enum Level: Hashable, Sendable {
        case literal(String)
        case site, device, metric
        case any
        case rest
    }

    public let text: String
    public let levels: [Level]
    public var hasMetric: Bool { levels.contains(.metric) }

    public var description: String { text }

    public init(_ text: String) throws(TopicFilter.FilterError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        var levels: [Level] = []
        var seen: Set<String> = []
        for (i, part) in parts.enumerated() {
            if part.hasPrefix("{") && part.hasSuffix("}") {
                let name = String(part.dropFirst().dropLast())
                guard !seen.contains(name) else {
                    throw TopicFilter.FilterError("{\(name)} appears twice in the layout")
                }
                seen.insert(name)
                switch name {
                case "site": levels.append(.site)
                case "device": levels.append(.device)
                case "metric": levels.append(.metric)
                default:
                    throw TopicFilter.FilterError(
                        "unknown placeholder {\(name)}; a layout has {site}, {device} and optionally {metric}")
                }
            } else if part == "+" {
                levels.append(.any)
            } else if part == "#" {
                guard i == parts.count - 1 else { throw TopicFilter.FilterError("'#' must be the last level") }
                levels.append(.rest)
            } else {
                if part.contains("{") || part.contains("}") || part.contains("+") || part.contains("#") {
                    throw TopicFilter.FilterError("a placeholder must fill a whole level, as in water/{site}/{device}")
                }
                levels.append(.literal(String(part)))
            }
        }
        guard seen.contains("site"), seen.contains("device") else {
            throw TopicFilter.FilterError("a layout needs {site} and {device}")
        }
        self.text = text
        self.levels = levels
    }

    /// The site, device and (if the layout names one) metric in a topic, or nil when the
    /// topic does not have the layout's shape.
    public func extract<S: StringProtocol>(levels topic: [S]) -> (site: S, device: S, metric: S?)? {
        var site: S?
        var device: S?
        var metric: S?
        var i = 0
        for level in levels {
            if level == .rest { return site.flatMap { s in device.map { (s, $0, metric) } } }
            guard i < topic.count else { return nil }
            switch level {
            case .literal(let l): guard topic[i] == l else { return nil }
            case .site: site = topic[i]
            case .device: device = topic[i]
            case .metric: metric = topic[i]
            case .any, .rest: break
            }
            i += 1
        }
        guard i == topic.count, let s = site, let d = device else { return nil }
        return (s, d, metric)
    }
}
