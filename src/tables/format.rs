//! How values look in the CSV: numbers and records (times: `crate::time`).
//!
//! Every table and stream goes through these functions, so live rows, history rows and energy
//! rows are formatted identically (docs/design.md, "Formats").

use crate::time::Millis;

/// Significant digits kept: far beyond any meter's precision, short of float noise.
const SIGNIFICANT_DIGITS: usize = 10;

/// Plain decimal rounded to 10 significant digits, in its shortest form (`72.75`, not
/// `72.74999999999234`); empty for a missing, NaN or infinite value.
pub fn format_value(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let rounded = round_significant(x);
            if rounded == 0.0 {
                "0".to_string() // never "-0"
            } else {
                // Display never uses an exponent and prints the shortest round-trip form.
                format!("{rounded}")
            }
        }
        _ => String::new(),
    }
}

/// `x` rounded to `SIGNIFICANT_DIGITS` significant digits: the double nearest to that decimal,
/// so its shortest form prints at most that many digits.
fn round_significant(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let magnitude = x.abs().log10().floor() as i32;
    let scale = (SIGNIFICANT_DIGITS as i32 - 1).saturating_sub(magnitude);
    // Powers of ten up to 1e22 are exact doubles: one correctly rounded multiplication and one
    // division give the nearest double. Beyond that, the decimal formatter does it.
    match usize::try_from(scale.unsigned_abs())
        .ok()
        .and_then(|i| POW10.get(i))
    {
        Some(p) if scale >= 0 => (x * p).round() / p,
        Some(p) => (x / p).round() * p,
        None => format!("{:.*e}", SIGNIFICANT_DIGITS - 1, x)
            .parse()
            .unwrap_or(x),
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Seconds as a plain decimal with at most millisecond precision (`3600`, `90.5`), for the
/// `seconds` column and PromQL multipliers.
pub fn format_seconds(ms: Millis) -> String {
    let secs = ms / 1000;
    let frac = (ms % 1000).abs();
    if frac == 0 {
        format!("{secs}")
    } else {
        let text = format!("{secs}.{frac:03}");
        text.trim_end_matches('0').to_string()
    }
}

/// Renders CSV records (RFC 4180 quoting where needed), many with one writer (a writer
/// allocates and zeroes its buffer).
pub struct CsvLines {
    writer: csv::Writer<Vec<u8>>,
}

impl Default for CsvLines {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvLines {
    pub fn new() -> CsvLines {
        CsvLines {
            writer: csv::WriterBuilder::new()
                // Records of any length: a length check would fail a record silently here.
                .flexible(true)
                .terminator(csv::Terminator::Any(b'\n'))
                .buffer_capacity(1024)
                .from_writer(Vec::with_capacity(256)),
        }
    }

    /// The record of `fields`, ending in `\n` (the writer keeps every record: one per batch).
    pub fn push<S: AsRef<[u8]>>(&mut self, fields: &[S]) -> String {
        let start = self.writer.get_ref().len();
        // Writing to a Vec cannot fail.
        let _ = self.writer.write_record(fields);
        let _ = self.writer.flush();
        String::from_utf8_lossy(&self.writer.get_ref()[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_ten_significant_digits_in_shortest_form() {
        assert_eq!(format_value(Some(45.0)), "45");
        assert_eq!(format_value(Some(0.5625)), "0.5625");
        assert_eq!(format_value(Some(72.74999999999234)), "72.75");
        assert_eq!(format_value(Some(0.1 + 0.2)), "0.3");
        assert_eq!(format_value(Some(1234567890123.0)), "1234567890000");
        assert_eq!(format_value(Some(0.000123456789012)), "0.000123456789");
        assert_eq!(format_value(Some(-2.5)), "-2.5");
        assert_eq!(format_value(Some(-0.0)), "0");
        assert_eq!(format_value(Some(1e-320)).parse::<f64>().unwrap(), 1e-320);
        assert_eq!(format_value(Some(1e21)), "1000000000000000000000");
        assert_eq!(format_value(Some(1.5e-7)), "0.00000015");
        assert_eq!(format_value(Some(f64::NAN)), "");
        assert_eq!(format_value(Some(f64::INFINITY)), "");
        assert_eq!(format_value(Some(f64::NEG_INFINITY)), "");
        assert_eq!(format_value(None), "");
        // Ten digits survive the round trip.
        for x in [0.1, 123.456, 1e-12, 9876543210.0, 98765.4321e10, 1e-320] {
            assert_eq!(format_value(Some(x)).parse::<f64>().unwrap(), x);
        }
        // Around powers of ten, and against the decimal formatter's rounding.
        assert_eq!(format_value(Some(999.99999999999)), "1000");
        assert_eq!(format_value(Some(1000.0)), "1000");
        assert_eq!(format_value(Some(0.0009999999999994)), "0.001");
        let mut x = 1.234_567_890_123_456_7e-7;
        for _ in 0..40 {
            let decimal: f64 = format!("{x:.9e}").parse().unwrap();
            assert_eq!(
                format_value(Some(x)).parse::<f64>().unwrap(),
                decimal,
                "{x}"
            );
            x *= 3.7;
        }
    }

    #[test]
    fn seconds() {
        assert_eq!(format_seconds(3_600_000), "3600");
        assert_eq!(format_seconds(90_500), "90.5");
        assert_eq!(format_seconds(1), "0.001");
        assert_eq!(format_seconds(0), "0");
    }

    #[test]
    fn csv_quoting() {
        let mut lines = CsvLines::new();
        let mut csv_line = |fields: &[&str]| lines.push(fields);
        assert_eq!(
            csv_line(&["a", "", "b,c", "d\"e"]),
            "a,,\"b,c\",\"d\"\"e\"\n"
        );
        assert_eq!(csv_line(&["", ""]), ",\n");
        assert_eq!(csv_line(&["x\ny"]), "\"x\ny\"\n");
    }
}
