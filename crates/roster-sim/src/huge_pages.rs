//! Transparent huge pages for the simulator's own programs: a large run is a walk through 10,000 lists of
//! 10,000 entries, nearly every step a cache miss, and with 4 KiB pages a TLB miss too.
//!
//! The C library's allocator asks the kernel for huge pages (`madvise`) when the `glibc.malloc.hugetlb=1`
//! tunable is set, and tunables are read only when a process starts. So a program that wants them runs itself
//! again, once, with the tunable added to its environment, and exits with the child's status. A child, or a
//! run where the user already chose `glibc.malloc.hugetlb`, goes on as it is. Nothing changes in what the
//! simulation does: only where its memory comes from.
//!
//! Only the simulator's examples call this; the agent (`rosterd`) never does.

use std::process::{Command, ExitCode};

const VARIABLE: &str = "GLIBC_TUNABLES";
const TUNABLE: &str = "glibc.malloc.hugetlb";

/// Runs this program again with huge pages asked for, and returns its exit code; `None` when this process
/// should go on itself (it is the rerun, the user set the tunable, or the platform has no such tunable).
pub fn rerun_with_huge_pages() -> Option<ExitCode> {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return None;
    }
    let current = std::env::var(VARIABLE).unwrap_or_default();
    if current.contains(TUNABLE) {
        return None;
    }
    let tunables = match current.as_str() {
        "" => format!("{TUNABLE}=1"),
        other => format!("{other}:{TUNABLE}=1"),
    };
    let program = std::env::current_exe().ok()?;
    // A program that cannot be started again (removed since, say) simply runs without huge pages.
    let status = Command::new(program)
        .args(std::env::args_os().skip(1))
        .env(VARIABLE, tunables)
        .status()
        .ok()?;
    Some(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
