//! `dynamic_version` (or `presets.artifacts_dynamic_version`): as the
//! official CLI, each deploy uploads a copy of the wheel whose version has a
//! `+<unix time in ns>` local part, so clusters that cache a wheel by version
//! install the new code. The copy is written to
//! `.databricks/bundle/<target>/patched_wheels/<artifact>_<distribution>/`
//! with its `.dist-info` folder renamed, `METADATA`'s `Version:` changed and
//! `RECORD` rewritten with the new hashes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{0} is not a wheel file name (`<name>-<version>-<tags>.whl`)")]
    Name(String),
    #[error("cannot read the wheel {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot write the patched wheel {path}: {message}")]
    Write { path: String, message: String },
    #[error("the wheel {path} has no {dist_info}/METADATA")]
    NoMetadata { path: String, dist_info: String },
}

/// `(distribution, version, tags)` of `name-1.0-py3-none-any.whl`.
pub fn split_name(file_name: &str) -> Option<(&str, &str, &str)> {
    let stem = file_name.strip_suffix(".whl")?;
    let mut parts = stem.splitn(3, '-');
    let (dist, version, tags) = (parts.next()?, parts.next()?, parts.next()?);
    (!dist.is_empty() && !version.is_empty() && !tags.is_empty()).then_some((dist, version, tags))
}

/// The folder the patched copies of `artifact`'s wheel `file_name` go to.
pub fn patched_dir(root: &Path, target: &str, artifact: &str, file_name: &str) -> Option<PathBuf> {
    let (dist, _, _) = split_name(file_name)?;
    Some(
        root.join(".databricks/bundle")
            .join(target)
            .join("patched_wheels")
            .join(format!("{artifact}_{dist}")),
    )
}

/// The patched copy made by the last deploy for the original `file_name`
/// (the same version with a `+...` local part), if any.
pub fn existing_patch(
    root: &Path,
    target: &str,
    artifact: &str,
    file_name: &str,
) -> Option<PathBuf> {
    let (dist, version, tags) = split_name(file_name)?;
    let dir = patched_dir(root, target, artifact, file_name)?;
    let prefix = format!("{dist}-{}", with_local_part(version, ""));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&format!("-{tags}.whl")))
        })
        .collect();
    found.sort();
    found.pop()
}

/// `1.0` + `123` → `1.0+123`; a version that has a local part already gets
/// it extended (`1.0+dev` → `1.0+dev.123`).
fn with_local_part(version: &str, stamp: &str) -> String {
    if version.contains('+') {
        format!("{version}.{stamp}")
    } else {
        format!("{version}+{stamp}")
    }
}

fn record_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!(
        "sha256={},{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        bytes.len()
    )
}

/// Write the patched copy of `wheel` for `artifact` (clearing older copies)
/// and return its path.
pub fn patch(
    wheel: &Path,
    root: &Path,
    target: &str,
    artifact: &str,
    stamp: u128,
) -> Result<PathBuf, PatchError> {
    let shown = wheel.display().to_string();
    let file_name = wheel
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| PatchError::Name(shown.clone()))?;
    let (dist, version, tags) =
        split_name(file_name).ok_or_else(|| PatchError::Name(file_name.to_string()))?;
    let new_version = with_local_part(version, &stamp.to_string());
    let old_info = format!("{dist}-{version}.dist-info/");
    let new_info = format!("{dist}-{new_version}.dist-info/");
    let read_err = |e: &dyn std::fmt::Display| PatchError::Read {
        path: shown.clone(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(wheel).map_err(|e| read_err(&e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| read_err(&e))?;
    let mut entries: Vec<(String, Vec<u8>, Option<u32>)> = Vec::with_capacity(zip.len());
    let mut has_metadata = false;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| read_err(&e))?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().to_string();
        let mode = f.unix_mode();
        let mut bytes = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut bytes).map_err(|e| read_err(&e))?;
        let Some(rest) = name.strip_prefix(&old_info) else {
            entries.push((name, bytes, mode));
            continue;
        };
        if rest == "RECORD" {
            // Rewritten below, once every hash is known.
            continue;
        }
        if rest == "METADATA" {
            has_metadata = true;
            let text = String::from_utf8_lossy(&bytes);
            let patched: Vec<String> = text
                .split_inclusive('\n')
                .map(|line| match line.strip_prefix("Version:") {
                    Some(v) if v.trim() == version => {
                        let end = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
                        format!("Version: {new_version}{end}")
                    }
                    _ => line.to_string(),
                })
                .collect();
            bytes = patched.concat().into_bytes();
        }
        entries.push((format!("{new_info}{rest}"), bytes, mode));
    }
    if !has_metadata {
        return Err(PatchError::NoMetadata {
            path: shown,
            dist_info: old_info.trim_end_matches('/').to_string(),
        });
    }
    let mut record = String::new();
    for (name, bytes, _) in &entries {
        record.push_str(&format!("{name},{}\n", record_hash(bytes)));
    }
    record.push_str(&format!("{new_info}RECORD,,\n"));
    entries.push((format!("{new_info}RECORD"), record.into_bytes(), None));

    let dir = patched_dir(root, target, artifact, file_name)
        .ok_or_else(|| PatchError::Name(file_name.to_string()))?;
    let out_path = dir.join(format!("{dist}-{new_version}-{tags}.whl"));
    let write_err = |e: &dyn std::fmt::Display| PatchError::Write {
        path: out_path.display().to_string(),
        message: e.to_string(),
    };
    // Only the latest copy stays (the CLI keeps one per artifact too).
    if dir.is_dir() {
        std::fs::remove_dir_all(&dir).map_err(|e| write_err(&e))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| write_err(&e))?;
    let out = std::fs::File::create(&out_path).map_err(|e| write_err(&e))?;
    let mut w = zip::ZipWriter::new(out);
    for (name, bytes, mode) in entries {
        let mut opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        if let Some(m) = mode {
            opts = opts.unix_permissions(m);
        }
        w.start_file(name, opts).map_err(|e| write_err(&e))?;
        w.write_all(&bytes).map_err(|e| write_err(&e))?;
    }
    w.finish().map_err(|e| write_err(&e))?;
    Ok(out_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(dir: &Path) -> PathBuf {
        let path = dir.join("my_pkg-0.1.0-py3-none-any.whl");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("my_pkg/__init__.py", "def main():\n    pass\n"),
            (
                "my_pkg-0.1.0.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: my_pkg\nVersion: 0.1.0\n",
            ),
            ("my_pkg-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n"),
            ("my_pkg-0.1.0.dist-info/RECORD", "stale\n"),
        ] {
            w.start_file(name, o).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn the_copy_has_the_new_version_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let whl = wheel(dir.path());
        let out = patch(&whl, dir.path(), "dev", "art", 42).unwrap();
        assert_eq!(
            out,
            dir.path().join(
                ".databricks/bundle/dev/patched_wheels/art_my_pkg/my_pkg-0.1.0+42-py3-none-any.whl"
            )
        );
        let mut z = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
        let names: Vec<String> = z.file_names().map(str::to_string).collect();
        assert!(
            names.contains(&"my_pkg/__init__.py".to_string()),
            "{names:?}"
        );
        assert!(names.contains(&"my_pkg-0.1.0+42.dist-info/WHEEL".to_string()));
        assert!(!names
            .iter()
            .any(|n| n.starts_with("my_pkg-0.1.0.dist-info")));
        let mut meta = String::new();
        z.by_name("my_pkg-0.1.0+42.dist-info/METADATA")
            .unwrap()
            .read_to_string(&mut meta)
            .unwrap();
        assert!(meta.contains("Version: 0.1.0+42\n"), "{meta}");
        let mut record = String::new();
        z.by_name("my_pkg-0.1.0+42.dist-info/RECORD")
            .unwrap()
            .read_to_string(&mut record)
            .unwrap();
        let init = "def main():\n    pass\n".as_bytes();
        assert!(
            record.contains(&format!("my_pkg/__init__.py,{}", record_hash(init))),
            "{record}"
        );
        assert!(
            record.ends_with("my_pkg-0.1.0+42.dist-info/RECORD,,\n"),
            "{record}"
        );
        assert!(!record.contains("stale"));
        // The next deploy's copy replaces this one, and is what is found.
        let again = patch(&whl, dir.path(), "dev", "art", 43).unwrap();
        assert!(!out.exists());
        assert_eq!(
            existing_patch(dir.path(), "dev", "art", "my_pkg-0.1.0-py3-none-any.whl"),
            Some(again)
        );
    }

    #[test]
    fn names_and_versions() {
        assert_eq!(
            split_name("a_b-1.0-py3-none-any.whl"),
            Some(("a_b", "1.0", "py3-none-any"))
        );
        assert_eq!(split_name("nope.whl"), None);
        assert_eq!(with_local_part("1.0+dev", "9"), "1.0+dev.9");
    }
}
