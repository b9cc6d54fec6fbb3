//! The host as Judge0's `GET /system_info` describes it: `lscpu`'s "Key: value" lines and
//! the memory and swap totals, every value a string. Read from `/proc` (no program run).

use serde_json::{Map, Value};

/// What the host says of its CPUs and memory.
pub fn info() -> Map<String, Value> {
    let mut out = Map::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let first = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    out.insert(
        "Architecture".into(),
        Value::String(std::env::consts::ARCH.to_owned()),
    );
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    out.insert("CPU(s)".into(), Value::String(cpus.max(1).to_string()));
    for (key, name) in [
        ("model name", "Model name"),
        ("vendor_id", "Vendor ID"),
        ("cpu MHz", "CPU MHz"),
        ("cache size", "L2 cache"),
    ] {
        if let Some(v) = first(key) {
            out.insert(name.into(), Value::String(v));
        }
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    for (key, name) in [("MemTotal", "Mem"), ("SwapTotal", "Swap")] {
        if let Some(k) = kib(key) {
            out.insert(name.into(), Value::String(human(k)));
        }
    }
    out
}

/// KiB as `free -h` writes them: `7.7G`, `512M`, `0B`.
fn human(kib: u64) -> String {
    let units = [("T", 1u64 << 30), ("G", 1 << 20), ("M", 1 << 10)];
    for (unit, size) in units {
        if kib >= size {
            return format!("{:.1}{unit}", kib as f64 / size as f64);
        }
    }
    if kib == 0 {
        "0B".to_owned()
    } else {
        format!("{kib}K")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_as_free_writes_it() {
        assert_eq!(human(8_074_000), "7.7G");
        assert_eq!(human(524_288), "512.0M");
        assert_eq!(human(0), "0B");
        let info = info();
        assert!(info.values().all(Value::is_string));
        assert!(info.contains_key("CPU(s)") && info.contains_key("Mem"));
    }
}
