//! `cargo xtask vendor-console [--check]`: fetches the pinned xterm.js packages from
//! the npm registry, checks each tarball's SHA-512 against both the pin below and the
//! registry's `dist.integrity`, and writes the files the console serves (with their
//! licence) under `crates/server/console/vendor/`. `--check` writes nothing and fails
//! when the committed files differ from the tarballs'.
//!
//! To move to a new version: change `version` and `integrity` below (the integrity is
//! `npm view <name>@<version> dist.integrity`), run the command, update the paths in
//! `crates/server/src/console/assets.rs` and `crates/server/console/terminal.js`, and
//! commit the new directory (and remove the old one).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha512};

/// One npm package the console vendors.
struct Package {
    name: &'static str,
    version: &'static str,
    /// The registry's `dist.integrity` for this version, pinned.
    integrity: &'static str,
    /// Where its files go, under the vendor directory (versioned: the server marks
    /// everything under a versioned directory immutable).
    dir: &'static str,
    /// Files to copy, relative to the tarball's `package/` directory.
    files: &'static [&'static str],
}

const PACKAGES: &[Package] = &[
    Package {
        name: "@xterm/xterm",
        version: "6.0.0",
        integrity: "sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg==",
        dir: "xterm-6.0.0",
        files: &["lib/xterm.mjs", "css/xterm.css", "LICENSE"],
    },
    Package {
        name: "@xterm/addon-fit",
        version: "0.11.0",
        integrity: "sha512-jYcgT6xtVYhnhgxh3QgYDnnNMYTcf8ElbxxFzX0IZo+vabQqSPAjC3c1wJrKB5E19VwQei89QCiZZP86DCPF7g==",
        dir: "addon-fit-0.11.0",
        files: &["lib/addon-fit.mjs", "LICENSE"],
    },
];

/// Runs the command.
pub fn vendor_console(args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("usage: cargo xtask vendor-console [--check]".into()),
    };
    let root = super::workspace_root();
    let vendor = root.join("crates/server/console/vendor");
    let scratch = std::env::temp_dir().join(format!("switchyard-vendor-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let result = PACKAGES
        .iter()
        .try_for_each(|package| vendor_one(package, &vendor, &scratch, check));
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    if check {
        eprintln!("xtask: the vendored console files match the pinned, verified tarballs");
    } else {
        write_manifest(&vendor)?;
        eprintln!("xtask: vendored into {}", vendor.display());
    }
    Ok(())
}

fn vendor_one(package: &Package, vendor: &Path, scratch: &Path, check: bool) -> Result<(), String> {
    let spec = format!("{}@{}", package.name, package.version);
    let registry_integrity = registry_integrity(&spec)?;
    if registry_integrity != package.integrity {
        return Err(format!(
            "{spec}: the registry's integrity {registry_integrity} is not the pinned {}",
            package.integrity
        ));
    }
    let tarball = npm_pack(&spec, scratch)?;
    let bytes =
        std::fs::read(&tarball).map_err(|e| format!("reading {}: {e}", tarball.display()))?;
    let actual = sha512_integrity(&bytes);
    if actual != package.integrity {
        return Err(format!(
            "{spec}: the downloaded tarball's integrity {actual} is not the pinned {}",
            package.integrity
        ));
    }
    let unpacked = scratch.join(package.dir);
    std::fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
    super::run(
        "tar",
        &[
            "-xzf",
            &tarball.display().to_string(),
            "-C",
            &unpacked.display().to_string(),
        ],
    )?;
    let target = vendor.join(package.dir);
    if !check {
        std::fs::create_dir_all(&target)
            .map_err(|e| format!("creating {}: {e}", target.display()))?;
    }
    for file in package.files {
        let from = unpacked.join("package").join(file);
        let name = Path::new(file).file_name().ok_or("a file name")?;
        let to = target.join(name);
        let content = std::fs::read(&from).map_err(|e| format!("{spec}: {file}: {e}"))?;
        if check {
            let committed = std::fs::read(&to).map_err(|e| format!("{}: {e}", to.display()))?;
            if committed != content {
                return Err(format!("{} differs from {spec}'s {file}", to.display()));
            }
        } else {
            std::fs::write(&to, content).map_err(|e| format!("writing {}: {e}", to.display()))?;
        }
    }
    eprintln!("xtask: {spec} verified ({})", package.integrity);
    Ok(())
}

/// `dist.integrity` as the registry states it for `spec`.
fn registry_integrity(spec: &str) -> Result<String, String> {
    let output = Command::new("npm")
        .args(["view", spec, "dist.integrity", "--json"])
        .output()
        .map_err(|e| format!("npm view {spec} ({e}); is npm installed?"))?;
    if !output.status.success() {
        return Err(format!(
            "npm view {spec} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice::<String>(&output.stdout)
        .map_err(|e| format!("npm view {spec}: unexpected answer ({e})"))
}

/// Downloads `spec`'s tarball into `dir` and returns its path.
fn npm_pack(spec: &str, dir: &Path) -> Result<PathBuf, String> {
    let output = Command::new("npm")
        .args(["pack", spec, "--json", "--pack-destination"])
        .arg(dir)
        .output()
        .map_err(|e| format!("npm pack {spec} ({e})"))?;
    if !output.status.success() {
        return Err(format!(
            "npm pack {spec} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let packed: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("npm pack {spec}: unexpected answer ({e})"))?;
    let filename = packed[0]["filename"]
        .as_str()
        .ok_or_else(|| format!("npm pack {spec}: no file name in its answer"))?;
    Ok(dir.join(filename))
}

/// The `sha512-<base64>` form npm uses for `dist.integrity`.
fn sha512_integrity(bytes: &[u8]) -> String {
    let digest = Sha512::digest(bytes);
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `vendor/README.md`: what is there, from where, and how it was checked.
fn write_manifest(vendor: &Path) -> Result<(), String> {
    let mut text = String::from(
        "# Vendored front-end code\n\n\
         Written by `cargo xtask vendor-console` from the npm registry; do not edit by\n\
         hand. Each tarball's SHA-512 was checked against the pin in\n\
         `xtask/src/vendor.rs` and the registry's `dist.integrity`;\n\
         `cargo xtask vendor-console --check` verifies these files again.\n\n\
         | package | version | licence | integrity | files |\n|---|---|---|---|---|\n",
    );
    for p in PACKAGES {
        let files: Vec<String> = p
            .files
            .iter()
            .map(|f| {
                let name = Path::new(f).file_name().unwrap_or_default();
                format!("`{}/{}`", p.dir, name.to_string_lossy())
            })
            .collect();
        text.push_str(&format!(
            "| `{}` | {} | MIT (`{}/LICENSE`) | `{}` | {} |\n",
            p.name,
            p.version,
            p.dir,
            p.integrity,
            files.join(", ")
        ));
    }
    let path = vendor.join("README.md");
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_npm_sha512_form() {
        // sha512("") in npm's `dist.integrity` notation.
        assert_eq!(
            sha512_integrity(b""),
            "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
        );
    }

    #[test]
    fn pins_are_versioned_and_carry_a_licence() {
        for p in PACKAGES {
            assert!(p.dir.ends_with(p.version), "{} is versioned", p.dir);
            assert!(p.files.contains(&"LICENSE"), "{} ships its licence", p.name);
            assert!(p.integrity.starts_with("sha512-"));
        }
    }
}
