//! Running system commands (`ip`, `nft`, `haproxy`, `apt-get`): blocking for set-up
//! and clean-up, async for what happens while traffic flows.

use std::process::{Command, Output, Stdio};

use crate::error::ClusterError;

/// Runs `program args` to completion (blocking); `Ok(stdout)` on success.
pub fn run(program: &str, args: &[&str]) -> Result<String, ClusterError> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output();
    finish(program, args, output)
}

/// Runs `program args` with `input` on its standard input (blocking).
pub fn run_with_input(program: &str, args: &[&str], input: &str) -> Result<String, ClusterError> {
    use std::io::Write as _;
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let output = spawned.and_then(|mut child| {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes())?;
        }
        child.wait_with_output()
    });
    finish(program, args, output)
}

/// Runs `program args` to completion without blocking the runtime thread.
pub async fn run_async(program: &str, args: &[&str]) -> Result<String, ClusterError> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await;
    finish(program, args, output)
}

/// Like [`run_with_input`], without blocking the runtime thread.
pub async fn run_with_input_async(
    program: &str,
    args: &[&str],
    input: &str,
) -> Result<String, ClusterError> {
    let (program, input) = (program.to_owned(), input.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_with_input(&program, &args, &input)
    })
    .await
    .unwrap_or_else(|e| {
        Err(ClusterError::Start {
            what: "a command".into(),
            detail: e.to_string(),
        })
    })
}

fn finish(
    program: &str,
    args: &[&str],
    output: std::io::Result<Output>,
) -> Result<String, ClusterError> {
    let line = || format!("{program} {}", args.join(" "));
    match output {
        Ok(output) if output.status.success() => {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        Ok(output) => Err(ClusterError::Command {
            line: line(),
            status: output.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&output.stderr)),
        }),
        Err(error) => Err(ClusterError::Command {
            line: line(),
            status: "did not run".into(),
            stderr: error.to_string(),
        }),
    }
}

/// The last few lines of `text`, trimmed.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// True when `program` runs (`program -v`, `-V` or `--version` exits 0).
pub fn has_program(program: &str) -> bool {
    ["-v", "-V", "--version"].iter().any(|flag| {
        Command::new(program)
            .arg(flag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Installs Debian `packages` with apt-get when `program` is missing and this
/// process runs as root; otherwise a [`ClusterError::MissingTool`] with `hint`.
pub fn ensure_program(
    program: &'static str,
    package: &str,
    hint: &'static str,
) -> Result<(), ClusterError> {
    if has_program(program) {
        return Ok(());
    }
    if !is_root() {
        return Err(ClusterError::MissingTool { program, hint });
    }
    eprintln!("cluster: {program} is missing; installing Debian's {package} package");
    run("apt-get", &["update", "-qq"])?;
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() && has_program(program) => Ok(()),
        _ => Err(ClusterError::MissingTool { program, hint }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_command_and_its_stderr() {
        let err = run("sh", &["-c", "echo one >&2; echo two >&2; exit 3"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("one | two"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        let err = run("/nonexistent/program", &[]).unwrap_err();
        assert!(err.to_string().contains("did not run"), "{err}");
        assert_eq!(run("sh", &["-c", "printf ok"]).unwrap(), "ok");
        assert_eq!(run_with_input("cat", &[], "piped").unwrap(), "piped");
    }

    #[tokio::test]
    async fn async_runs_agree() {
        assert_eq!(run_async("sh", &["-c", "printf ok"]).await.unwrap(), "ok");
        assert!(run_async("sh", &["-c", "exit 1"]).await.is_err());
        assert_eq!(run_with_input_async("cat", &[], "in").await.unwrap(), "in");
        assert!(has_program("sh") || has_program("cat"));
        assert!(!has_program("/nonexistent/program"));
    }
}
