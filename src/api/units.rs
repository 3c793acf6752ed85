//! Units that appear in the spec: Elasticsearch durations, byte sizes and slice counts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::{fmt, time::Duration};

/// A duration in Elasticsearch units (`500ms`, `30s`, `5m`, `1h`, `2d`), kept as written so it can
/// be passed to the search cluster verbatim (scroll keep-alive) and shown back to the user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(schema_with = "super::schema::duration")]
pub struct EsDuration(pub String);

impl EsDuration {
    /// Parses the duration, or explains why it is not one.
    pub fn parse(&self) -> Result<Duration, String> {
        parse_duration(&self.0)
    }
}

impl fmt::Display for EsDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EsDuration {
    fn from(s: &str) -> Self {
        EsDuration(s.to_string())
    }
}

/// Parses `<digits><unit>` with the units Elasticsearch accepts for time values.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (expected e.g. 30s, 5m, 1h)"))?;
    let d = match unit {
        "nanos" => Duration::from_nanos(n),
        "micros" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86400)),
        _ => {
            return Err(format!(
                "`{text}` has no valid time unit (use one of nanos, micros, ms, s, m, h, d)"
            ));
        }
    };
    Ok(d)
}

/// A byte size: a plain integer or a number with a binary (`Ki`, `Mi`, `Gi`) or Elasticsearch
/// (`kb`, `mb`, `gb`, all powers of 1024) unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(schema_with = "super::schema::byte_size")]
pub enum ByteSize {
    /// A number of bytes.
    Bytes(u64),
    /// A number with a unit, e.g. `5Mi`.
    Text(String),
}

impl ByteSize {
    /// The size in bytes, or why the text is not a size.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            ByteSize::Bytes(n) => Ok(*n),
            ByteSize::Text(t) => parse_byte_size(t),
        }
    }
}

/// Parses `5Mi`, `5MiB`, `5mb`, `512kb`, `1048576`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a byte size (expected e.g. 5Mi or 5mb)"))?;
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "Ki" | "KiB" => 1 << 10,
        "m" | "mb" | "Mi" | "MiB" => 1 << 20,
        "g" | "gb" | "Gi" | "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}` has an unknown size unit (use Ki, Mi, Gi or kb, mb, gb)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// How many parallel sliced reads read the source: a count (used as given), or `auto` (one
/// per primary shard, at most 16). Unset or `auto`, the copier may add slices to hide the
/// source's round trip (reads within a slice wait for each other), chosen once before any
/// slice reads from the round trip and one timed page: about (page time + round trip) / page
/// time, never below 1 (unset) or one per shard (`auto`), at most 16, the policy's
/// `maxSlices`, a memory bound (each slice holds about a page and its bulks) and, read by
/// scroll, max(shards, 4). A round trip under 2 ms (loopback, one data centre) adds none. The
/// Copying message says how many and why; a resumed copy keeps the count its checkpoints
/// (`status.slices`) were written with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(schema_with = "super::schema::slices")]
pub enum Slices {
    /// A fixed number of slices.
    Count(u32),
    /// `auto`.
    Auto(AutoSlices),
}

/// The literal `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AutoSlices {
    /// One slice per primary shard of the source, at most 16, or more across a slow round trip.
    #[serde(rename = "auto")]
    Auto,
}

impl Default for Slices {
    fn default() -> Self {
        Slices::Count(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_elasticsearch_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(
            parse_duration("5 minutes")
                .unwrap_err()
                .contains("5 minutes")
        );
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn byte_sizes_parse_binary_and_es_units() {
        assert_eq!(parse_byte_size("5Mi").unwrap(), 5 << 20);
        assert_eq!(parse_byte_size("5mb").unwrap(), 5 << 20);
        assert_eq!(parse_byte_size("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_byte_size("100").unwrap(), 100);
        assert!(parse_byte_size("5 MB").is_err());
        assert!(parse_byte_size("99999999999999999999Gi").is_err());
    }

    #[test]
    fn slices_accept_count_or_auto() {
        let s: Slices = serde_json::from_str("4").unwrap();
        assert_eq!(s, Slices::Count(4));
        let s: Slices = serde_json::from_str("\"auto\"").unwrap();
        assert_eq!(s, Slices::Auto(AutoSlices::Auto));
        assert!(serde_json::from_str::<Slices>("\"many\"").is_err());
    }
}
