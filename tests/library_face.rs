//! The library face's rule for public enums (ARCHITECTURE.md, "The library face"):
//! each is `#[non_exhaustive]` (variants may be added) or says in its documentation
//! that it is exhaustive on purpose. Read from the crates' sources, so that a new
//! enum cannot leave the choice unmade.

use std::fs;
use std::path::{Path, PathBuf};

/// Public enums outside the face, and why.
const OUTSIDE_THE_FACE: &[(&str, &str)] = &[
    // The binary's own command line, hidden from the documentation.
    ("crates/server/src/cli.rs", "Command"),
    ("crates/server/src/commands/client/mod.rs", "ClientCommand"),
    // In a crate-private module.
    (
        "crates/server/src/config/cert_validity.rs",
        "ValidityNotice",
    ),
];

/// The words an exhaustive enum's documentation says.
const ON_PURPOSE: &str = "Exhaustive on purpose";

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every `pub enum` of the crates' sources: (file from the workspace root, name,
/// the doc comments and attributes above it).
fn public_enums(root: &Path) -> Vec<(String, String, Vec<String>)> {
    let mut files = Vec::new();
    for krate in fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            sources(&src, &mut files);
        }
    }
    files.sort();
    let mut enums = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let Some(rest) = line.trim_start().strip_prefix("pub enum ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let above = lines[..at]
                .iter()
                .rev()
                .map(|l| l.trim())
                .take_while(|l| l.starts_with("//") || l.starts_with("#["))
                .map(str::to_owned)
                .collect();
            let relative = file.strip_prefix(root).unwrap().display().to_string();
            enums.push((relative, name, above));
        }
    }
    enums
}

#[test]
fn every_public_enum_is_non_exhaustive_or_exhaustive_on_purpose() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let enums = public_enums(root);
    assert!(enums.len() > 50, "found only {} enums", enums.len());
    let mut undecided = Vec::new();
    for (file, name, above) in &enums {
        let marked = above.iter().any(|l| l == "#[non_exhaustive]");
        let on_purpose = above.iter().any(|l| l.contains(ON_PURPOSE));
        let outside = OUTSIDE_THE_FACE.iter().any(|(f, n)| f == file && n == name);
        assert!(
            !(marked && on_purpose),
            "{file}: {name} is #[non_exhaustive] and says it is exhaustive"
        );
        if !marked && !on_purpose && !outside {
            undecided.push(format!("{file}: {name}"));
        }
    }
    assert!(
        undecided.is_empty(),
        "public enums neither #[non_exhaustive] nor documented as \"{ON_PURPOSE}\" \
         (see ARCHITECTURE.md, the library face): {undecided:#?}"
    );
    for (file, name) in OUTSIDE_THE_FACE {
        assert!(
            enums.iter().any(|(f, n, _)| f == file && n == name),
            "{file}: {name} is listed as outside the face but no longer exists"
        );
    }
}
