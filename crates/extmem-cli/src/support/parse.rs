//! Option parsers shared by subcommands (clap `value_parser`s: a bad value is a usage error,
//! exit status 2, naming the value, before anything runs).

use std::path::PathBuf;

/// A size in bytes: a number with an optional K, M or G suffix, 1 byte to 1 TiB.
pub fn size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    match num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
        Some(n) if (1..=1 << 40).contains(&n) => Ok(n),
        _ => Err(format!("size {s:?} is not a number of 1 or more bytes with an optional K, M or G (at most 1T)")),
    }
}

/// A file to write at the end of a run: its folder must exist now (checked before the run,
/// not after it).
pub fn output_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    if s.is_empty() || path.is_dir() {
        return Err(format!("{s:?} is not a file name"));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        return Err(format!("the folder {} does not exist (create it first)", folder.display()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_are_refused() {
        assert_eq!(size("4K"), Ok(4096));
        assert_eq!(size("1g"), Ok(1 << 30));
        assert_eq!(size("12"), Ok(12));
        for bad in ["3X", "0", "", "K", "-1", "99999999999G", "2000G"] {
            assert!(size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_output_file_in_a_missing_folder_is_refused() {
        assert!(output_file("/nonexistent-folder/x.png").unwrap_err().contains("/nonexistent-folder"));
        assert!(output_file("/tmp").is_err());
        assert_eq!(output_file("x.png"), Ok(PathBuf::from("x.png")));
        assert_eq!(output_file("/tmp/x.png"), Ok(PathBuf::from("/tmp/x.png")));
    }
}
