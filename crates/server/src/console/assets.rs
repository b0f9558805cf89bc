//! The console's files, compiled into the binary: each with its URL path, content
//! type and caching rule.

use std::collections::HashMap;
use std::sync::LazyLock;

/// How long a browser may keep a file without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Caching {
    /// Ask every time (`no-cache`), answered with `304` while the ETag matches: the
    /// page and the console's own scripts, whose paths do not change between releases.
    Revalidate,
    /// Keep for a year (`immutable`): vendored files under a versioned directory.
    Immutable,
}

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its bytes.
    pub body: &'static [u8],
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its caching rule.
    pub caching: Caching,
    /// A strong validator: a hash of the bytes, quoted.
    pub etag: String,
}

/// A file under `crates/server/console/`, by its path there.
macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)) as &[u8])),*]
    };
}

/// Every file the console serves, by its path under `crates/server/console/`.
/// `index.html` is served at `/`, everything else at `/assets/<path>`.
pub(super) const FILES: &[(&str, &[u8])] = embedded![
    "index.html",
    "ansi.js",
    "api.js",
    "app.js",
    "dom.js",
    "format.js",
    "notices.js",
    "runtimes.js",
    "session.js",
    "store.js",
    "stream.js",
    "terminal.js",
    "transcript.js",
    "worker_view.js",
    "workers.js",
    "style.css",
    "favicon.svg",
    "vendor/xterm-6.0.0/xterm.mjs",
    "vendor/xterm-6.0.0/xterm.css",
    "vendor/xterm-6.0.0/LICENSE",
    "vendor/addon-fit-0.11.0/addon-fit.mjs",
    "vendor/addon-fit-0.11.0/LICENSE",
];

/// URL path → asset, built on first use.
static BY_URL: LazyLock<HashMap<String, Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, body)| {
            let url = if path == "index.html" {
                "/".to_owned()
            } else {
                format!("/assets/{path}")
            };
            let asset = Asset {
                body,
                content_type: content_type(path),
                caching: if path.starts_with("vendor/") {
                    Caching::Immutable
                } else {
                    Caching::Revalidate
                },
                etag: format!("\"{:016x}\"", fnv1a(body)),
            };
            (url, asset)
        })
        .collect()
});

/// The asset served at `url_path`, if any.
pub fn find(url_path: &str) -> Option<&'static Asset> {
    BY_URL.get(url_path)
}

/// The `Content-Type` for a file name.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// 64-bit FNV-1a: a cheap, stable content hash for ETags (not a security check).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn content_types_and_caching_follow_the_path() {
        let check = |url: &str, content_type: &str, caching: Caching| {
            let asset = find(url).unwrap_or_else(|| panic!("{url} is served"));
            assert_eq!(asset.content_type, content_type, "{url}");
            assert_eq!(asset.caching, caching, "{url}");
        };
        check("/", "text/html; charset=utf-8", Caching::Revalidate);
        check(
            "/assets/app.js",
            "text/javascript; charset=utf-8",
            Caching::Revalidate,
        );
        check(
            "/assets/style.css",
            "text/css; charset=utf-8",
            Caching::Revalidate,
        );
        check("/assets/favicon.svg", "image/svg+xml", Caching::Revalidate);
        check(
            "/assets/vendor/xterm-6.0.0/xterm.mjs",
            "text/javascript; charset=utf-8",
            Caching::Immutable,
        );
        check(
            "/assets/vendor/xterm-6.0.0/LICENSE",
            "text/plain; charset=utf-8",
            Caching::Immutable,
        );
        for missing in [
            "/index.html",
            "/assets/",
            "/assets/nope.js",
            "/assets/../Cargo.toml",
        ] {
            assert!(find(missing).is_none(), "{missing} is not served");
        }
    }

    #[test]
    fn etags_differ_with_content() {
        assert_ne!(
            find("/").unwrap().etag,
            find("/assets/app.js").unwrap().etag
        );
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    /// Every file in `console/` is served (none forgotten in [`FILES`]), and the
    /// vendor manifest is the only file left out.
    #[test]
    fn every_console_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk = Vec::new();
        collect(&root, &root, &mut on_disk);
        on_disk.retain(|p| p != "vendor/README.md");
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }

    /// The page must work under a CSP without inline script: no `<script>` without
    /// `src`, no event-handler attributes, no `javascript:` URLs, and no inline
    /// `style` attributes in our own markup.
    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(find("/").unwrap().body).unwrap();
        let lower = html.to_ascii_lowercase();
        for (i, _) in lower.match_indices("<script") {
            let tag = &lower[i..i + lower[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "inline script: {tag}");
        }
        for forbidden in [
            " onload=",
            " onclick=",
            " onerror=",
            "javascript:",
            " style=",
            "<style",
        ] {
            assert!(
                !lower.contains(forbidden),
                "index.html contains {forbidden}"
            );
        }
    }
}
