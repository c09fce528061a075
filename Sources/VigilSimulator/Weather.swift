import Foundation

/// Weather and water shared by the devices of one site, on the simulation's hydrological
/// clock (`SimulationOptions.speedUp` times the wall clock): rain that comes as events, a
/// catchment that turns rain into river stage over hours, and a road that floods when the
/// rain is more than its drains take.
///
/// Rain events (south-east China, about 1,400 mm a year): dry spells of about four days
/// on average; three events in four light (0.5 to 4 mm/h for 2 to 10 hours), one in five
/// moderate (4 to 15 mm/h for 1 to 5 hours), one in twenty a storm (30 to 80 mm/h for half
/// an hour to two hours). Intensities wander within an event.
struct SiteWeather: Sendable {
    var raining = false
    /// mm per hour now.
    var intensity = 0.0
    /// The event's own level, which the intensity wanders around.
    var level = 0.0
    var nextChange = 0.0
    /// Rain held in the catchment (mm), draining with a time constant of 6 hours, and what
    /// of it has reached the river's channel (3 hours behind): what lifts the stage.
    var catchment = 0.0
    var channel = 0.0
    var lastTime = 0.0

    /// How much a road's drains take, mm/h of rain (a design storm of a 2 to 3 year return
    /// period, GB 50014); above it a low point fills.
    static let drainage = 36.0
    /// A low point collects the rain of about eight times its own area.
    static let catchmentFactor = 8.0

    mutating func advance(to t: Double, _ rng: inout SeededRandom) {
        if lastTime == 0 {
            lastTime = t
            nextChange = t + rng.uniform(0...1) * 96 * 3600
        }
        let dt = max(0, t - lastTime)
        lastTime = t
        if t >= nextChange {
            raining.toggle()
            if raining {
                let kind = rng.uniform(0...1)
                let (intensity, hours): (ClosedRange<Double>, ClosedRange<Double>) =
                    kind < 0.75 ? (0.5...4, 2...10) : kind < 0.95 ? (4...15, 1...5) : (30...80, 0.5...2)
                level = rng.uniform(intensity)
                nextChange = t + rng.uniform(hours) * 3600
            } else {
                level = 0
                // Exponential dry spells, four days on average.
                nextChange = t + -log(max(1e-9, rng.uniform(0...1))) * 96 * 3600
            }
            intensity = level
        }
        if raining {
            intensity = max(0.2, min(level * 1.6, intensity + rng.gaussian() * 0.15 * level * (dt / 600).squareRoot()))
        } else {
            intensity = 0
        }
        let k = exp(-dt / (6 * 3600))
        catchment = catchment * k + intensity * 6 * (1 - k)
        channel += (catchment - channel) * (1 - exp(-dt / (3 * 3600)))
    }

    /// The river stage above its base, m: 3 cm per mm in the channel, so a day of light rain
    /// lifts it some tens of centimetres over hours, a storm a metre or so, hours after it.
    var riverRise: Double { 0.03 * channel }

    /// Water on a road after `dt` seconds at depth `depth` (cm): it rises with the rain the
    /// drains cannot take and falls with their spare capacity.
    func roadDepth(_ depth: Double, dt: Double) -> Double {
        let rate = (intensity - Self.drainage) * Self.catchmentFactor / 10  // cm per hour
        return max(0, depth + rate * dt / 3600)
    }
}
