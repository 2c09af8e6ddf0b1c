//! Faults switched on at known times on known nodes, pods and exporters: the data problems
//! the agent must find (docs: "Data quality"), each with where it is ([`Fault::is_on`],
//! [`Fault::samples`], [`Scenario::touched`]).
//!
//! Written `KIND:TARGET[:SOURCE][:FOR][@AT]`, e.g. `gap:worker-1:kepler:20s@+60s`; see
//! [`Fault::parse`].

use super::load::parse_duration_ms;
use super::{Convention, Meter, NAMESPACE, Scenario};

/// What a `jump` adds to one sample of a Kepler counter.
pub const JUMP_JOULES: f64 = 1e15;
/// How long a `jump` lasts unless told: one sample at a 1 s scrape interval.
pub const JUMP_MS: i64 = 1000;

/// The exporters of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    NodeExporter,
    Ipmi,
    Kepler,
    Scaphandre,
    Cadvisor,
    KubeStateMetrics,
}

impl Source {
    pub fn parse(text: &str) -> Option<Source> {
        Some(match text {
            "node-exporter" | "node" => Source::NodeExporter,
            "ipmi" => Source::Ipmi,
            "kepler" => Source::Kepler,
            "scaphandre" | "scaph" => Source::Scaphandre,
            "cadvisor" | "kubelet" => Source::Cadvisor,
            "kube-state-metrics" | "ksm" => Source::KubeStateMetrics,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Source::NodeExporter => "node-exporter",
            Source::Ipmi => "ipmi",
            Source::Kepler => "kepler",
            Source::Scaphandre => "scaphandre",
            Source::Cadvisor => "cadvisor",
            Source::KubeStateMetrics => "kube-state-metrics",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The series are not exposed during `[from, until)`.
    Gap,
    /// The series are not exposed from `from` on.
    Stop,
    /// The counters drop to 0 at `from`, then grow again.
    Reset,
    /// One Kepler package counter is [`JUMP_JOULES`] too high during `[from, until)`.
    Jump,
    /// Kepler counters stop growing during `[from, until)` (0 W) while the load goes on.
    Zero,
    /// The exporter is not installed on the node at all.
    Absent,
    /// Kepler ≤ 0.9 on the node estimates with its model (`kepler_node_info`).
    Estimated,
}

impl FaultKind {
    fn parse(text: &str) -> Option<FaultKind> {
        Some(match text {
            "gap" => FaultKind::Gap,
            "stop" => FaultKind::Stop,
            "reset" => FaultKind::Reset,
            "jump" => FaultKind::Jump,
            "zero" => FaultKind::Zero,
            "absent" => FaultKind::Absent,
            "estimated" => FaultKind::Estimated,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Gap => "gap",
            FaultKind::Stop => "stop",
            FaultKind::Reset => "reset",
            FaultKind::Jump => "jump",
            FaultKind::Zero => "zero",
            FaultKind::Absent => "absent",
            FaultKind::Estimated => "estimated",
        }
    }
}

/// One fault. Times are Unix milliseconds; `i64::MIN`/`i64::MAX` for always.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// A node or a pod of the scenario, or `*` for every node.
    pub target: String,
    /// The exporter whose series it touches; `None`: all of the target's.
    pub source: Option<Source>,
    pub from_ms: i64,
    pub until_ms: i64,
}

impl Fault {
    pub fn gap(target: &str, source: Option<Source>, from_ms: i64, for_ms: i64) -> Fault {
        Fault::new(FaultKind::Gap, target, source, from_ms, from_ms + for_ms)
    }

    pub fn stop(target: &str, source: Option<Source>, at_ms: i64) -> Fault {
        Fault::new(FaultKind::Stop, target, source, at_ms, i64::MAX)
    }

    pub fn reset(target: &str, source: Option<Source>, at_ms: i64) -> Fault {
        Fault::new(FaultKind::Reset, target, source, at_ms, i64::MAX)
    }

    /// A node's package counter, or a pod's (its first container's under Kepler ≤ 0.9).
    pub fn jump(target: &str, at_ms: i64) -> Fault {
        Fault::new(
            FaultKind::Jump,
            target,
            Some(Source::Kepler),
            at_ms,
            at_ms + JUMP_MS,
        )
    }

    /// A node's Kepler (every series it exposes) or a pod's Kepler series.
    pub fn zero(target: &str, from_ms: i64, until_ms: i64) -> Fault {
        Fault::new(
            FaultKind::Zero,
            target,
            Some(Source::Kepler),
            from_ms,
            until_ms,
        )
    }

    pub fn absent(node: &str, source: Source) -> Fault {
        Fault::new(FaultKind::Absent, node, Some(source), i64::MIN, i64::MAX)
    }

    pub fn estimated(node: &str) -> Fault {
        Fault::new(
            FaultKind::Estimated,
            node,
            Some(Source::Kepler),
            i64::MIN,
            i64::MAX,
        )
    }

    fn new(kind: FaultKind, target: &str, source: Option<Source>, from: i64, until: i64) -> Fault {
        Fault {
            kind,
            target: target.to_string(),
            source,
            from_ms: from,
            until_ms: until,
        }
    }

    /// `KIND:TARGET[:SOURCE][:FOR][@AT]`, AT being `+DURATION` after `origin_ms` or Unix
    /// seconds:
    ///
    /// | spec | |
    /// |---|---|
    /// | `gap:worker-1:kepler:20s@+60s` | worker-1's Kepler series missing for 20 s |
    /// | `stop:worker-2:scaphandre@+90s` | Scaphandre of worker-2 exposes nothing from then on |
    /// | `reset:worker-1:kepler@+45s` | Kepler's counters on worker-1 restart from 0 |
    /// | `jump:worker-1@+30s` | worker-1's Kepler package counter +1e15 J for 1 s (FOR) |
    /// | `zero:db-0:30s@+20s` | db-0's Kepler power 0 W for 30 s (no AT: from the start, no FOR: for ever) |
    /// | `absent:worker-3:node-exporter` | no node-exporter on worker-3 |
    /// | `estimated:worker-3` | worker-3's Kepler reports its estimator as power source |
    ///
    /// SOURCE: node-exporter, ipmi, kepler, scaphandre, cadvisor, kube-state-metrics; none:
    /// every series of the target. TARGET: a node, a pod, or `*` (every node).
    pub fn parse(spec: &str, origin_ms: i64) -> Result<Fault, String> {
        let fail = |why: &str| format!("fault {spec:?}: {why}");
        let (body, at) = match spec.rsplit_once('@') {
            Some((body, at)) => (body, Some(at)),
            None => (spec, None),
        };
        let mut parts = body.split(':');
        let kind = parts
            .next()
            .and_then(FaultKind::parse)
            .ok_or_else(|| fail("KIND is gap, stop, reset, jump, zero, absent or estimated"))?;
        let target = parts
            .next()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("no TARGET (a node, a pod or *)"))?;
        let (mut source, mut length) = (None, None);
        for part in parts {
            if part.starts_with(|c: char| c.is_ascii_digit()) {
                length = Some(parse_duration_ms(part).map_err(|e| fail(&e))?);
            } else {
                source = Some(Source::parse(part).ok_or_else(|| fail("unknown SOURCE"))?);
            }
        }
        let at = match at {
            None => None,
            Some(at) => Some(match at.strip_prefix('+') {
                Some(after) => origin_ms + parse_duration_ms(after).map_err(|e| fail(&e))?,
                None => {
                    let secs: f64 = at
                        .parse()
                        .map_err(|_| fail("AT is +DURATION or Unix seconds"))?;
                    (secs * 1000.0).round() as i64
                }
            }),
        };
        let kepler_only = |source: Option<Source>| match source {
            None | Some(Source::Kepler) => Ok(()),
            Some(_) => Err(fail("only Kepler")),
        };
        let fault = match kind {
            FaultKind::Gap => {
                let (Some(at), Some(length)) = (at, length) else {
                    return Err(fail("a gap needs FOR and @AT"));
                };
                Fault::gap(target, source, at, length)
            }
            FaultKind::Stop | FaultKind::Reset => {
                let Some(at) = at.filter(|_| length.is_none()) else {
                    return Err(fail("needs @AT and no FOR"));
                };
                Fault::new(kind, target, source, at, i64::MAX)
            }
            FaultKind::Jump => {
                kepler_only(source)?;
                let at = at.ok_or_else(|| fail("a jump needs @AT"))?;
                Fault::new(
                    kind,
                    target,
                    Some(Source::Kepler),
                    at,
                    at + length.unwrap_or(JUMP_MS),
                )
            }
            FaultKind::Zero => {
                kepler_only(source)?;
                let from = at.unwrap_or(i64::MIN);
                let until = match (at, length) {
                    (_, None) => i64::MAX,
                    (Some(at), Some(length)) => at + length,
                    (None, Some(_)) => return Err(fail("FOR needs @AT")),
                };
                Fault::zero(target, from, until)
            }
            FaultKind::Absent | FaultKind::Estimated => {
                if at.is_some() || length.is_some() {
                    return Err(fail("lasts the whole run: no FOR, no @AT"));
                }
                if kind == FaultKind::Estimated {
                    kepler_only(source)?;
                    Fault::estimated(target)
                } else {
                    let source = source.ok_or_else(|| fail("absent needs a SOURCE"))?;
                    Fault::absent(target, source)
                }
            }
        };
        Ok(fault)
    }

    pub fn is_on(&self, t_ms: i64) -> bool {
        self.from_ms <= t_ms && t_ms < self.until_ms
    }

    /// The scrape times, of `scrape_times`, whose samples carry the fault.
    pub fn samples(&self, scrape_times: &[i64]) -> Vec<i64> {
        scrape_times
            .iter()
            .copied()
            .filter(|t| self.is_on(*t))
            .collect()
    }

    /// `gap of worker-1's kepler series from 12:01:00.000Z to 12:01:20.000Z`.
    pub fn describe(&self) -> String {
        let series = match self.source {
            Some(source) => format!("{}'s {} series", self.target, source.name()),
            None => format!("every series of {}", self.target),
        };
        let time = |ms: i64| rfc3339(ms);
        let source = self.source.map_or("every exporter", Source::name);
        match (self.kind, self.from_ms, self.until_ms) {
            (FaultKind::Absent, ..) => format!("absent: no {source} on {}", self.target),
            (FaultKind::Estimated, ..) => {
                format!("estimated: {}'s Kepler reports its estimator", self.target)
            }
            (FaultKind::Reset, from, _) => {
                format!(
                    "reset of {}'s {source} counters at {}",
                    self.target,
                    time(from)
                )
            }
            (FaultKind::Stop, from, _) => format!("stop of {series} at {}", time(from)),
            (kind, i64::MIN, i64::MAX) => format!("{} of {series} all along", kind.name()),
            (kind, from, i64::MAX) => format!("{} of {series} from {}", kind.name(), time(from)),
            (kind, from, until) => format!(
                "{} of {series} from {} to {}",
                kind.name(),
                time(from),
                time(until)
            ),
        }
    }
}

/// One cell of the agent's tables that a fault touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touched {
    /// `nodes` or `pods`.
    pub table: &'static str,
    /// The node (`instance`) or pod (`name`) of the row.
    pub row: String,
    pub column: &'static str,
}

/// Where a series comes from, for matching it against faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Origin {
    pub node: Option<usize>,
    pub pod: Option<usize>,
    pub source: Source,
}

/// A fault with its target resolved to indices of the scenario.
#[derive(Clone, Debug)]
pub(super) struct Resolved {
    pub kind: FaultKind,
    /// `None`: every node.
    pub node: Option<usize>,
    pub pod: Option<usize>,
    pub source: Option<Source>,
    pub from_ms: i64,
    pub until_ms: i64,
}

impl Resolved {
    /// Whether the fault applies to a sample of `origin`; `jumpable` marks the one
    /// package counter per node and per pod that a jump hits.
    pub fn applies(&self, origin: Origin, jumpable: bool) -> bool {
        let target = match (self.node, self.pod) {
            (_, Some(pod)) => origin.pod == Some(pod),
            (Some(node), None) => origin.node == Some(node),
            (None, None) => origin.node.is_some(),
        };
        let source = self.source.is_none_or(|s| s == origin.source);
        let kind = match self.kind {
            FaultKind::Jump => jumpable && (self.pod.is_some() || origin.pod.is_none()),
            _ => true,
        };
        target && source && kind
    }

    pub fn is_on(&self, t_ms: i64) -> bool {
        self.from_ms <= t_ms && t_ms < self.until_ms
    }
}

impl Scenario {
    /// The scenario with `fault`: checked against the cluster (the target exists and runs
    /// that source). `absent` and `estimated` change the cluster itself, and so the truth.
    pub fn with_fault(mut self, fault: Fault) -> Result<Scenario, String> {
        let resolved = self.resolve(&fault)?;
        let nodes: Vec<usize> = match resolved.node {
            Some(node) => vec![node],
            None => (0..self.nodes.len()).collect(),
        };
        match fault.kind {
            FaultKind::Absent => {
                for i in nodes {
                    self.remove_source(i, fault.source.unwrap_or(Source::NodeExporter))?;
                }
            }
            FaultKind::Estimated => {
                if self.convention != Convention::A {
                    return Err("Kepler >= 0.10 (convention B) has no estimator".into());
                }
                for i in nodes {
                    if let Some(kepler) = &mut self.nodes[i].kepler {
                        kepler.estimated = true;
                    }
                }
            }
            _ => self.faults.push(fault),
        }
        Ok(self)
    }

    fn remove_source(&mut self, i: usize, source: Source) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let gone = match source {
            Source::NodeExporter => {
                node.node_exporter = false;
                None
            }
            Source::Ipmi => {
                node.meter = Meter::Absent;
                None
            }
            Source::Kepler => node.kepler.take().map(|k| k.pod),
            Source::Scaphandre => node.scaphandre.take().map(|s| s.pod),
            _ => {
                return Err(format!(
                    "absent takes node-exporter, ipmi, kepler or scaphandre, not {}",
                    source.name()
                ));
            }
        };
        if let Some(pod) = gone {
            self.infra_pods.retain(|p| p.name != pod);
        }
        Ok(())
    }

    /// The fault's target as indices, once checked.
    pub(super) fn resolve(&self, fault: &Fault) -> Result<Resolved, String> {
        let fail = |why: String| format!("fault {}: {why}", fault.describe());
        let (node, pod) = if fault.target == "*" {
            (None, None)
        } else if let Some(n) = self.nodes.iter().position(|n| n.name == fault.target) {
            (Some(n), None)
        } else if let Some(p) = self.pods.iter().position(|p| p.name == fault.target) {
            let node = self.nodes.iter().position(|n| n.name == self.pods[p].node);
            (node, Some(p))
        } else {
            return Err(fail(format!("no node or pod {:?}", fault.target)));
        };
        if pod.is_some() && matches!(fault.kind, FaultKind::Absent | FaultKind::Estimated) {
            return Err(fail("takes a node".into()));
        }
        if let (Some(source), Some(n)) = (fault.source, node) {
            let node = &self.nodes[n];
            let runs = match source {
                Source::NodeExporter => node.node_exporter && pod.is_none(),
                Source::Ipmi => matches!(node.meter, Meter::Ipmi(_)) && pod.is_none(),
                Source::Kepler => node.kepler.is_some(),
                Source::Scaphandre => node.scaphandre.is_some(),
                Source::Cadvisor => true,
                Source::KubeStateMetrics => pod.is_some() || self.ksm_node() == Some(n),
            };
            if !runs {
                return Err(fail(format!(
                    "{} has no {} series",
                    fault.target,
                    source.name()
                )));
            }
        }
        Ok(Resolved {
            kind: fault.kind,
            node,
            pod,
            source: fault.source,
            from_ms: fault.from_ms,
            until_ms: fault.until_ms,
        })
    }

    /// The node kube-state-metrics runs on: its series count as that node's.
    pub(super) fn ksm_node(&self) -> Option<usize> {
        let ksm = self.infra_pods.first()?;
        self.nodes.iter().position(|n| n.name == ksm.node)
    }

    /// The cells of the agent's tables whose figures come from what `fault` touches (node
    /// addresses mapped through kube-state-metrics aside).
    pub fn touched(&self, fault: &Fault) -> Vec<Touched> {
        let Ok(resolved) = self.resolve(fault) else {
            return Vec::new();
        };
        let nodes: Vec<usize> = match resolved.node {
            Some(node) => vec![node],
            None => (0..self.nodes.len()).collect(),
        };
        let sources = match fault.source {
            Some(source) => vec![source],
            None => vec![
                Source::NodeExporter,
                Source::Ipmi,
                Source::Kepler,
                Source::Scaphandre,
                Source::Cadvisor,
            ],
        };
        let mut cells = Vec::new();
        let mut cell = |table, row: &str, column| {
            cells.push(Touched {
                table,
                row: row.to_string(),
                column,
            })
        };
        for &n in &nodes {
            let node = &self.nodes[n];
            let pods = self.pods.iter().enumerate().filter(|(p, pod)| {
                pod.node == node.name
                    && pod.namespace == NAMESPACE
                    && resolved.pod.is_none_or(|only| only == *p)
            });
            let whole_node = resolved.pod.is_none();
            for &source in &sources {
                match source {
                    Source::NodeExporter if whole_node && node.node_exporter => {
                        for column in [
                            "cpu_usage",
                            "memory_usage",
                            "network_usage",
                            "num_processes",
                        ] {
                            cell("nodes", node.name, column);
                        }
                    }
                    Source::Ipmi if whole_node && matches!(node.meter, Meter::Ipmi(_)) => {
                        cell("nodes", node.name, "wattage")
                    }
                    Source::Kepler if node.kepler.is_some() => {
                        if whole_node {
                            cell("nodes", node.name, "kepler_wattage");
                            let platform = matches!(node.meter, Meter::KeplerPlatform(_));
                            if platform && fault.kind != FaultKind::Jump {
                                cell("nodes", node.name, "wattage");
                            }
                        }
                        if fault.kind != FaultKind::Jump || !whole_node {
                            for (_, pod) in pods.clone() {
                                cell("pods", pod.name, "wattage_kepler");
                            }
                        }
                    }
                    Source::Scaphandre if node.scaphandre.is_some() => {
                        if whole_node {
                            cell("nodes", node.name, "scaph_wattage");
                            cell("nodes", node.name, "wattage_auxilary");
                        }
                        for (_, pod) in pods.clone() {
                            if pod.containers.iter().any(|c| !c.processes.is_empty()) {
                                cell("pods", pod.name, "wattage_scaph");
                            }
                        }
                    }
                    Source::Cadvisor => {
                        for (_, pod) in pods.clone() {
                            for column in ["cpu_usage", "memory_usage", "network_usage"] {
                                cell("pods", pod.name, column);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        cells
    }
}

/// `2026-01-31T12:00:05.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}
