//! A load that changes on a fixed, repeating schedule (idle 30 s, load 30 s, ...).
//!
//! Each phase has a factor that scales every load-dependent figure of the scenario (busy CPU
//! modes, traffic, power); 1 is the scenario as declared. Rates are constant within a phase
//! and counters are their exact integral, so `rate()` over a window inside one phase is
//! exact, and the truth of any window is computable ([`Schedule::mean`]).

use super::Scenario;

/// Factors of the phases named without one.
pub const IDLE: f64 = 0.25;
pub const LOAD: f64 = 1.0;

/// One phase: its name, length and factor (0 to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub name: String,
    pub ms: i64,
    pub factor: f64,
}

/// Phases repeated for ever, before and after `origin_ms`, where the first one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub phases: Vec<Phase>,
    pub origin_ms: i64,
}

/// One occurrence of a phase on the clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Span<'a> {
    pub phase: &'a Phase,
    pub from_ms: i64,
    pub until_ms: i64,
}

impl Schedule {
    /// `idle=30s,load=30s` (factors 0.25 and 1) or `NAME=DURATION*FACTOR` for any other
    /// level, e.g. `idle=20s,half=10s*0.5,load=20s`; the first phase starts at `origin_ms`.
    pub fn parse(text: &str, origin_ms: i64) -> Result<Schedule, String> {
        let mut phases = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rest) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: a phase is NAME=DURATION[*FACTOR]"))?;
            let (length, factor) = match rest.split_once('*') {
                Some((length, factor)) => {
                    let factor = factor
                        .parse::<f64>()
                        .map_err(|_| format!("{part:?}: the factor is a number from 0 to 1"))?;
                    (length, factor)
                }
                None => match name {
                    "idle" => (rest, IDLE),
                    "load" => (rest, LOAD),
                    _ => {
                        return Err(format!(
                            "{part:?}: only idle and load have a default factor"
                        ));
                    }
                },
            };
            let ms = parse_duration_ms(length).map_err(|e| format!("{part:?}: {e}"))?;
            phases.push(Phase {
                name: name.to_string(),
                ms,
                factor,
            });
        }
        Schedule::new(phases, origin_ms)
    }

    pub fn new(phases: Vec<Phase>, origin_ms: i64) -> Result<Schedule, String> {
        if phases.is_empty() {
            return Err("a schedule needs at least one phase".into());
        }
        for phase in &phases {
            if phase.ms < 1 {
                return Err(format!("phase {} lasts no time", phase.name));
            }
            // Above 1 the busy CPU modes of a node could exceed its CPUs.
            if !(0.0..=1.0).contains(&phase.factor) {
                return Err(format!(
                    "phase {}: factor {} not in 0..1",
                    phase.name, phase.factor
                ));
            }
        }
        Ok(Schedule { phases, origin_ms })
    }

    /// One turn of all phases, in milliseconds.
    pub fn period_ms(&self) -> i64 {
        self.phases.iter().map(|p| p.ms).sum()
    }

    /// The phase occurrence that `t_ms` lies in.
    pub fn span_at(&self, t_ms: i64) -> Span<'_> {
        let period = self.period_ms();
        let turn = (t_ms - self.origin_ms).div_euclid(period);
        let mut from = self.origin_ms + turn * period;
        for phase in &self.phases {
            if t_ms < from + phase.ms {
                return Span {
                    phase,
                    from_ms: from,
                    until_ms: from + phase.ms,
                };
            }
            from += phase.ms;
        }
        unreachable!("t lies within one period")
    }

    pub fn factor_at(&self, t_ms: i64) -> f64 {
        self.span_at(t_ms).phase.factor
    }

    /// The phase occurrences overlapping `[from_ms, until_ms)`, in order.
    pub fn spans(&self, from_ms: i64, until_ms: i64) -> Vec<Span<'_>> {
        let mut spans = Vec::new();
        let mut t = from_ms;
        while t < until_ms {
            let span = self.span_at(t);
            t = span.until_ms;
            spans.push(span);
        }
        spans
    }

    /// The load integrated from `from_ms` to `to_ms`, in factor × seconds (negative when
    /// `to_ms` is earlier): what a counter of rate 1 grows by.
    pub fn integral(&self, from_ms: i64, to_ms: i64) -> f64 {
        self.cumulative(to_ms) - self.cumulative(from_ms)
    }

    /// The mean factor over `[from_ms, to_ms]`: a window's exact average rate over the
    /// declared one.
    pub fn mean(&self, from_ms: i64, to_ms: i64) -> f64 {
        if to_ms == from_ms {
            return self.factor_at(to_ms);
        }
        self.integral(from_ms, to_ms) / ((to_ms - from_ms) as f64 / 1000.0)
    }

    /// `∫ factor` from the origin to `t_ms`, in factor × seconds.
    fn cumulative(&self, t_ms: i64) -> f64 {
        let period = self.period_ms();
        let per_turn: f64 = self
            .phases
            .iter()
            .map(|p| p.factor * p.ms as f64 / 1000.0)
            .sum();
        let turns = (t_ms - self.origin_ms).div_euclid(period);
        let mut into = (t_ms - self.origin_ms).rem_euclid(period);
        let mut sum = turns as f64 * per_turn;
        for phase in &self.phases {
            let part = into.min(phase.ms);
            sum += phase.factor * part as f64 / 1000.0;
            into -= part;
            if into == 0 {
                break;
            }
        }
        sum
    }

    /// `idle 30s (×0.25), load 30s (×1), repeating every 60s`.
    pub fn describe(&self) -> String {
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|p| format!("{} {} (×{})", p.name, seconds(p.ms), p.factor))
            .collect();
        format!(
            "{}, repeating every {}",
            phases.join(", "),
            seconds(self.period_ms())
        )
    }
}

fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}ms", ms)
    }
}

/// `30s`, `1m30s`, `500ms` (humantime), or bare seconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| format!("bad duration {text:?} ({e})"))
}

impl Scenario {
    /// The scenario under a load schedule.
    pub fn with_load(mut self, schedule: Schedule) -> Scenario {
        self.load = Some(schedule);
        self
    }

    /// The scenario with every load-dependent figure scaled by `factor`: what the exporter
    /// shows during a phase of that factor, and so the truth of a window inside it. A CPU's
    /// idle mode takes up what its busy modes leave.
    pub fn at_level(&self, factor: f64) -> Scenario {
        let mut scenario = self.clone();
        scenario.load = None;
        for node in &mut scenario.nodes {
            let busy: Vec<(u32, f64)> = node
                .cpu
                .iter()
                .filter(|(_, mode, _)| *mode != "idle")
                .map(|(cpu, _, rate)| (*cpu, *rate))
                .collect();
            for (cpu, mode, rate) in &mut node.cpu {
                if *mode == "idle" {
                    let spared: f64 = busy.iter().filter(|(c, _)| c == cpu).map(|(_, r)| r).sum();
                    *rate += spared * (1.0 - factor);
                } else {
                    *rate *= factor;
                }
            }
            for (_, rx, tx) in &mut node.net {
                *rx *= factor;
                *tx *= factor;
            }
            node.meter = node.meter.scaled(factor);
            if let Some(kepler) = &mut node.kepler {
                kepler.zones = kepler.zones.scaled(factor);
            }
            if let Some(scaph) = &mut node.scaphandre {
                scaph.host_watts *= factor;
                scaph.own_process.watts *= factor;
                for process in &mut scaph.system_processes {
                    process.watts *= factor;
                }
            }
        }
        for pod in &mut scenario.pods {
            for container in &mut pod.containers {
                container.cpu *= factor;
                container.kepler = container.kepler.scaled(factor);
                for process in &mut container.processes {
                    process.watts *= factor;
                }
            }
            pod.pause_cpu *= factor;
            pod.rx *= factor;
            pod.tx *= factor;
        }
        scenario
    }
}
