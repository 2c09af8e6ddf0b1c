//! The evaluation times of one evaluation: one instant (a live cycle, an energy window) or a
//! range of steps (a history chunk).

use crate::prometheus::Eval;
use crate::time::Millis;

/// The evaluation times of a cycle (one) or a history chunk (`first + k·step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    first: Millis,
    step: Millis,
    count: usize,
    range: bool,
}

impl Steps {
    /// One instant query at `t`.
    pub fn at(t: Millis) -> Steps {
        Steps {
            first: t,
            step: 1,
            count: 1,
            range: false,
        }
    }

    /// `count` range steps from `first`, `step` apart (`step` > 0, `count` ≥ 1).
    pub fn range(first: Millis, step: Millis, count: usize) -> Steps {
        Steps {
            first,
            step: step.max(1),
            count: count.max(1),
            range: true,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The evaluation time of step `i`.
    pub fn time(&self, i: usize) -> Millis {
        self.first + self.step * i as Millis
    }

    pub fn last(&self) -> Millis {
        self.time(self.count - 1)
    }

    /// How Prometheus is asked.
    pub fn eval(&self) -> Eval {
        if self.range {
            Eval::Range {
                start: self.first,
                end: self.last(),
                step: self.step,
            }
        } else {
            Eval::At(self.first)
        }
    }

    /// The step a point at `t` belongs to: any point of an instant query, and only points
    /// exactly on a step of a range query.
    pub fn index(&self, t: Millis) -> Option<usize> {
        if !self.range {
            return Some(0);
        }
        let offset = t - self.first;
        let i = offset / self.step;
        (offset >= 0 && offset % self.step == 0 && (i as usize) < self.count).then_some(i as usize)
    }
}
