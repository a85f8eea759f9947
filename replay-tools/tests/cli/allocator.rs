//! Every command runs with the allocator's lean settings (ADR 0033, ADR
//! 0037, ADR 0038), and a setting the operator gave is kept.

use std::process::Command;

/// The value mimalloc last reported for `option` (with `MIMALLOC_VERBOSE`
/// it prints every option at start; a re-run process prints them again).
fn last_reported(stderr: &str, option: &str) -> Option<String> {
    let prefix = format!("option '{option}': ");
    stderr
        .lines()
        .rev()
        .find_map(|line| line.split_once(&prefix).map(|(_, v)| v.trim().to_owned()))
}

/// Runs `oms-replay ARGS` on an empty directory with mimalloc's verbose
/// output and `env` as the only mimalloc settings; returns stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_oms-replay"));
    command.arg("--data-dir").arg(dir.path()).args(args);
    for (name, _) in replay_tools::allocator::LEAN_SETTINGS {
        command.env_remove(name);
    }
    let output = command
        .env("MIMALLOC_VERBOSE", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_command_runs_without_huge_pages_and_returns_freed_memory_at_once() {
    for walk in [
        &["verify"][..],
        &["dump"],
        &["export", "--output", "-"],
        &["stats"],
        &["import", "-"],
        &["rebuild", "--all"],
        &["consumers"],
    ] {
        let stderr = run(walk, &[]);
        assert_eq!(
            last_reported(&stderr, "allow_thp").as_deref(),
            Some("0"),
            "{walk:?}: {stderr}"
        );
        assert_eq!(
            last_reported(&stderr, "purge_delay").as_deref(),
            Some("0"),
            "{walk:?}: {stderr}"
        );
    }
}

#[test]
fn an_operator_setting_is_kept() {
    let stderr = run(&["verify"], &[("MIMALLOC_PURGE_DELAY", "7")]);
    assert_eq!(
        last_reported(&stderr, "purge_delay").as_deref(),
        Some("7"),
        "{stderr}"
    );
    assert_eq!(
        last_reported(&stderr, "allow_thp").as_deref(),
        Some("0"),
        "{stderr}"
    );
}
