import Foundation
import VigilCore
import Yams

/// One mistake in a config or rule file, where it is.
public struct Diagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// Every mistake found in a set of files.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    /// Keeps the files in the order given and sorts each file's mistakes by position.
    public init(_ diagnostics: [Diagnostic]) {
        var order: [String: Int] = [:]
        for d in diagnostics where order[d.file] == nil { order[d.file] = order.count }
        self.diagnostics = diagnostics.enumerated().sorted { a, b in
            (order[a.element.file]!, a.element.line, a.element.column, a.offset)
                < (order[b.element.file]!, b.element.line, b.element.column, b.offset)
        }.map(\.element)
    }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Reads typed values out of a YAML document and records every mistake with its position,
/// so `vigil check` can list them all at once.
struct YAMLReader {
    let file: String
    var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    /// Parses a document; a syntax error becomes a diagnostic.
    mutating func load(_ text: String) -> Node? {
        do {
            return try Yams.compose(yaml: text)
        } catch let e as YamlError {
            switch e {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                .composer(_, let problem, let mark, _):
                diagnostics.append(Diagnostic(file: file, line: mark.line, column: mark.column, message: "YAML: \(problem)"))
            case .duplicatedKeysInMapping(let duplicates, let context):
                diagnostics.append(
                    Diagnostic(
                        file: file, line: context.mark.line, column: context.mark.column,
                        message: "duplicate key \(duplicates.joined(separator: ", "))"))
            case .reader(let problem, let offset, _, _):
                diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "YAML: \(problem) at byte \(offset ?? 0)"))
            default:
                diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "YAML: \(e)"))
            }
        } catch {
            diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "YAML: \(error)"))
        }
        return nil
    }

    mutating func error(_ node: Node?, _ message: String) {
        let mark = node?.mark
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message))
    }

    /// The pairs of a mapping, after checking its keys against `allowed`.
    mutating func mapping(_ node: Node, _ what: String, allowed: [String]) -> [String: (key: Node, value: Node)]? {
        guard case .mapping(let map) = node else {
            error(node, "\(what) must be a mapping of keys to values")
            return nil
        }
        var out: [String: (key: Node, value: Node)] = [:]
        for (k, v) in map {
            guard let key = k.string else {
                error(k, "keys in \(what) must be strings")
                continue
            }
            if !allowed.contains(key) {
                var message = "unknown key '\(key)' in \(what)"
                if let near = Self.nearest(key, in: allowed) { message += "; did you mean '\(near)'?" }
                error(k, message)
                continue
            }
            out[key] = (k, v)
        }
        return out
    }

    mutating func sequence(_ node: Node, _ what: String) -> [Node]? {
        guard case .sequence(let seq) = node else {
            error(node, "\(what) must be a list")
            return nil
        }
        return Array(seq)
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard case .scalar(let s) = node else {
            error(node, "\(what) must be a single value")
            return nil
        }
        return s.string
    }

    mutating func name(_ node: Node, _ what: String) -> String? {
        guard let s = string(node, what) else { return nil }
        guard Names.isValid(s) else {
            error(node, "\(what) '\(s)' must be 1 to 64 of A-Z a-z 0-9 _ . -")
            return nil
        }
        return s
    }

    mutating func int(_ node: Node, _ what: String, _ range: ClosedRange<Int>) -> Int? {
        guard let s = string(node, what) else { return nil }
        guard let v = Int(s), range.contains(v) else {
            error(node, "\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(s)'")
            return nil
        }
        return v
    }

    mutating func double(_ node: Node, _ what: String) -> Double? {
        guard let s = string(node, what) else { return nil }
        guard let v = Double(s), v.isFinite else {
            error(node, "\(what) must be a number, not '\(s)'")
            return nil
        }
        return v
    }

    mutating func bool(_ node: Node, _ what: String) -> Bool? {
        guard let s = string(node, what) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(node, "\(what) must be true or false, not '\(s)'")
            return nil
        }
    }

    mutating func duration(_ node: Node, _ what: String) -> TimeSpan? {
        guard let s = string(node, what) else { return nil }
        guard let d = TimeSpan(parsing: s) else {
            error(node, "\(what) must be a duration such as 30s, 5m, 2h or 7d, not '\(s)'")
            return nil
        }
        return d
    }

    mutating func size(_ node: Node, _ what: String) -> ByteSize? {
        guard let s = string(node, what) else { return nil }
        guard let v = ByteSize(parsing: s), v.bytes > 0 else {
            error(node, "\(what) must be a size such as 64KiB, 512MiB or 1GiB, not '\(s)'")
            return nil
        }
        return v
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ what: String, _ type: T.Type) -> T?
    where T.RawValue == String {
        guard let s = string(node, what) else { return nil }
        guard let v = T(rawValue: s) else {
            error(node, "\(what) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), not '\(s)'")
            return nil
        }
        return v
    }

    /// The allowed word closest to a misspelt one, if it is close.
    static func nearest(_ word: String, in words: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var prev = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var cur = [i] + Array(repeating: 0, count: b.count)
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                prev = cur
            }
            return prev[b.count]
        }
        let a = Array(word)
        let best = words.map { ($0, distance(a, Array($0))) }.min { $0.1 < $1.1 }
        guard let (w, d) = best, d <= max(2, word.count / 3) else { return nil }
        return w
    }
}
